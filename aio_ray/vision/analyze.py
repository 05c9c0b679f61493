"""The vision stage: bar windows -> chart images -> a backend's :class:`ChartAnalysis` per window.

Plain functions first (:func:`window_requests`, :func:`analyze_windows`), the Ray actor pool
at the edge (``use_ray=True`` maps the backend over a Ray Data dataset of requests with one
model per actor, see :mod:`aio_ray.vision.pool`). Every record is appended to the analysis
log (Parquet, zstd) when a log directory is given.

Windows are the last ``windows`` full windows of ``window`` bars, ``stride`` bars apart, the
last one ending on the last bar. ``window_start``/``window_end`` are the open times of the
first and last bar (UTC ms). The chart, the indicator summary and the levels use only the
window's bars (overlays also use earlier bars, never later ones).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from aio_ray.charts.overlays import DEFAULT_OVERLAYS, history_bars
from aio_ray.charts.render import RenderError, render_windows
from aio_ray.vision.analysis import AnalysisRecord
from aio_ray.vision.backends import AnalysisRequest, VisionSettings, make_backend
from aio_ray.vision.config import VisionConfig
from aio_ray.vision.log import AnalysisLog
from aio_ray.vision.pool import analyze_dataset, analyze_requests, records_of, requests_dataset
from aio_ray.vision.summary import indicator_summary

# VisionConfig lives in aio_ray.vision.config; re-exported from here, its former home.
__all__ = ["OVERLAY_WARMUP", "VisionConfig", "analyze_windows", "record_json", "window_requests"]

log = logging.getLogger(__name__)

OVERLAY_WARMUP = 60
"""Fewest extra bars read before the first window, so its overlay lines are drawn across it
(more when the overlays need more: :func:`aio_ray.charts.overlays.history_bars`)."""


def window_requests(
    bars: pl.DataFrame,
    *,
    instrument: str,
    timeframe: str,
    window: int = 64,
    stride: int = 16,
    windows: int | None = None,
    overlays: Sequence[str] = DEFAULT_OVERLAYS,
    size: tuple[int, int] = (448, 448),
) -> list[AnalysisRequest]:
    """Chart the latest ``windows`` windows of ``bars`` (BAR_SCHEMA, sorted) as requests.

    Images are palette-index arrays (:mod:`aio_ray.charts.raster`); the summary is
    :func:`aio_ray.vision.summary.indicator_summary` of the window; ``ohlc`` its mid prices.
    Raises :class:`aio_ray.charts.render.RenderError` when there are fewer bars than one window.
    """
    n = bars.height
    if n < window:
        raise RenderError(f"{instrument} {timeframe}: {n} bars, fewer than one window of {window}")
    fit = 1 + (n - window) // stride  # windows that fit when the last one ends on the last bar
    count = fit if windows is None else min(windows, fit)
    history = max(OVERLAY_WARMUP, history_bars(overlays))
    warm = min((n - window - (count - 1) * stride) // stride, -(-history // stride)) * stride
    tail = bars.tail(window + (count - 1) * stride + warm)
    table = render_windows(
        tail, window=window, stride=stride, size=size, overlays=overlays, as_png=False
    )
    table = table.slice(table.num_rows - count)
    o, h, lo, c = (tail[f"mid_{k}"].to_numpy() for k in ("open", "high", "low", "close"))
    ts = tail["ts"].dt.epoch("ms").to_numpy()
    index = {int(t): i for i, t in enumerate(ts)}
    starts = table.column("window_start").cast("int64").to_numpy()
    ends = table.column("window_end").cast("int64").to_numpy()
    images = table.column("image").to_pylist()
    out = []
    for s, e, img in zip(starts, ends, images, strict=True):
        a, b = index[int(s)], index[int(e)] + 1
        out.append(
            AnalysisRequest(
                image=np.frombuffer(img, dtype=np.uint8).reshape(size),
                instrument=instrument,
                timeframe=timeframe,
                window_start=int(s),
                window_end=int(e),
                summary=indicator_summary(o[a:b], h[a:b], lo[a:b], c[a:b]),
                ohlc=np.column_stack([o[a:b], h[a:b], lo[a:b], c[a:b]]),
            )
        )
    return out


def analyze_windows(
    requests: Sequence[AnalysisRequest],
    settings: VisionSettings,
    *,
    use_ray: bool = False,
    log_dir: Path | None = None,
) -> list[AnalysisRecord]:
    """Analyse ``requests`` with the backend ``settings`` chooses; records in request order.

    ``use_ray``: a Ray actor pool (``settings.concurrency`` actors, ``settings.num_cpus`` /
    ``gpus_per_actor`` each, ``settings.batch_size`` windows per batch), else this process.
    Failed windows are records with ``status="failed"`` and the raw text; nothing is dropped.
    """
    t0 = time.perf_counter()
    sink = AnalysisLog(log_dir) if log_dir is not None else None
    try:
        if use_ray:
            records = records_of(analyze_dataset(requests_dataset(list(requests)), settings))
            order = {(r.window_start, r.timeframe, r.instrument): i for i, r in enumerate(requests)}
            records.sort(key=lambda r: order.get((r.window_start, r.timeframe, r.instrument), 0))
            if sink is not None:
                sink.extend(records)
        else:
            backend = make_backend(settings=settings)
            records = analyze_requests(
                backend, list(requests), batch_size=settings.batch_size, log=sink
            )
    finally:
        if sink is not None:
            sink.close()
    log.info(
        "vision: %d windows analysed by %s in %.2f s",
        len(records),
        settings.backend,
        time.perf_counter() - t0,
    )
    return records


def record_json(rec: AnalysisRecord) -> dict[str, Any]:
    """One analysed window as the ``aio analyze --json`` contract prints it: the ChartAnalysis
    fields (``trend``, ``patterns``, ``levels``, ``confidence``, ``rationale``; null when the
    analysis failed), ``model``, ``window_start``/``window_end`` (ISO-8601 UTC; null for an uploaded image, whose
    window is unknown), plus
    ``status``, ``backend``, ``latency_ms`` and, for a failure, ``error`` and ``raw_text``."""

    def iso(ms: int) -> str:
        return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    a = rec.analysis
    unknown = rec.window_start == 0 and rec.window_end == 0  # an uploaded image: no bars
    out: dict[str, Any] = {
        "trend": a.trend if a else None,
        "patterns": list(a.patterns) if a else None,
        "levels": list(a.levels) if a else None,
        "confidence": a.confidence if a else None,
        "rationale": a.rationale if a else None,
        "model": rec.model,
        "window_start": None if unknown else iso(rec.window_start),
        "window_end": None if unknown else iso(rec.window_end),
        "instrument": rec.instrument,
        "timeframe": rec.timeframe,
        "status": rec.status,
        "backend": rec.backend,
        "latency_ms": rec.latency_ms,
    }
    if rec.status != "ok":
        out["error"] = rec.error
        out["raw_text"] = rec.raw_text
    return out
