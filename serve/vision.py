"""Chart analysis over HTTP: ``POST /analyze`` (a PNG or a window of bars), ``GET /analyses``
(the analysis log), ``GET /patterns`` (mined pattern statistics).

The backend is the one the served pipeline config names (``vision.model``; none: the CPU
backend, which runs anywhere). It is built on the first request and kept for the replica's
life. Analyses run off the request path, on one worker thread per replica (the model is not
re-entrant), behind a bounded queue (``analyze_queue``: a full queue answers 503 with
``Retry-After``) and a per-request time limit (``analyze_timeout_s``: 504), so a slow analysis
never holds up the ``GET`` endpoints, whose handlers run on their own threads.

An analysis is logged only once it succeeded and its answer was built: records are buffered
and appended to the analysis log in batches (every ``log_flush_rows`` records or
``log_flush_s`` seconds), and the log is compacted into one file once it holds more than
``log_max_files`` files, keeping at most ``log_max_rows`` records and none older than
``log_max_age_days``. ``GET /analyses`` answers from a cache of the log that reads only the
files added since the last request, merged with this replica's unflushed records; a record
that cannot be read (a bad file, a window outside 1970..2100) is skipped and counted
(``X-Analyses-Skipped``), never a server error.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import io
import itertools
import logging
import math
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import polars as pl
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from aio_ray.bars.timeframes import SUPPORTED_TIMEFRAMES
from aio_ray.charts.raster import PALETTE, rasterize
from aio_ray.library.patterns import load_pattern_stats
from aio_ray.schema import TS_TYPE
from aio_ray.vision.analysis import AnalysisRecord, records_to_table
from aio_ray.vision.analyze import VisionConfig, record_json
from aio_ray.vision.backends import AnalysisRequest, VisionError, make_backend
from aio_ray.vision.log import (
    LOG_SCHEMA,
    AnalysisLog,
    LogError,
    compact_log,
    log_files,
    read_log_tolerant,
)
from aio_ray.vision.summary import indicator_summary

log = logging.getLogger(__name__)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
INSTRUMENT = r"^[A-Z]{6}$"
Timeframe = Literal[SUPPORTED_TIMEFRAMES]  # type: ignore[valid-type]
"""A bar timeframe the project builds (``1m`` .. ``1d``); anything else is refused (422)."""

TS_MAX_MS = 4_102_444_800_000
"""Bar times are accepted from the epoch up to 2100-01-01 00:00 UTC (ms)."""
PRICE_MAX = 1e9
"""Prices are accepted in (0, 1e9] quote currency, finite."""
MAX_BARS = 448
"""At most this many bars per posted window: one pixel column per bar of the 448-px chart."""


class BarIn(BaseModel):
    """One bar of a posted window: open time (UTC ms, 1970..2100) and mid OHLC in quote
    currency (finite, in (0, 1e9]; flat bars, open = high = low = close, are fine)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ts: int = Field(..., ge=0, le=TS_MAX_MS, description="bar open time, UTC ms (1970..2100)")
    open: float = Field(..., gt=0, le=PRICE_MAX, allow_inf_nan=False)
    high: float = Field(..., gt=0, le=PRICE_MAX, allow_inf_nan=False)
    low: float = Field(..., gt=0, le=PRICE_MAX, allow_inf_nan=False)
    close: float = Field(..., gt=0, le=PRICE_MAX, allow_inf_nan=False)
    volume: float | None = Field(None, ge=0, le=1e15, allow_inf_nan=False)

    @model_validator(mode="after")
    def _consistent(self) -> BarIn:
        if self.high < max(self.open, self.close) or self.low > min(self.open, self.close):
            raise ValueError(f"bar at {self.ts}: high/low do not contain open and close")
        return self


class AnalyzeBars(BaseModel):
    """A window of bars to chart and analyse (8 to 448 bars, oldest first, strictly
    increasing times)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    instrument: Annotated[str, Field(pattern=INSTRUMENT)] = "EURUSD"
    timeframe: Timeframe = "1h"
    bars: list[BarIn] = Field(..., min_length=8, max_length=MAX_BARS)

    @field_validator("bars")
    @classmethod
    def _increasing(cls, v: list[BarIn]) -> list[BarIn]:
        for a, b in itertools.pairwise(v):
            if b.ts <= a.ts:
                raise ValueError(f"bar times must strictly increase: {b.ts} follows {a.ts}")
        return v


class AnalysisRefused(Exception):
    """An analysis request that is refused with an HTTP status (message safe to show)."""

    def __init__(self, status: int, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


@dataclass
class _Job:
    cancelled: threading.Event = field(default_factory=threading.Event)


class VisionService:
    """The replica's analysis backend, worker, log writer and readers."""

    def __init__(self, resolved: Any) -> None:
        # a Core (its settings follow config reloads) or fixed Resolved settings
        self._source = resolved
        self._backend: Any = None
        self._backend_lock = threading.Lock()
        self._worker = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="aio-analyze")
        self._pending = 0
        self._pending_lock = threading.Lock()
        # log: unflushed records of this replica and the reader's cache
        self._log_lock = threading.Lock()
        self._unflushed: list[tuple[Any, int]] = []
        self._last_flush = time.monotonic()
        self._flusher: threading.Timer | None = None
        self._read_lock = threading.Lock()
        self._files: dict[Path, tuple[int, int]] = {}
        self._table: Any = None
        self._sorted: Any = None
        self._problems: list[str] = []

    @property
    def cfg(self) -> Any:
        src = self._source
        return src.cfg if hasattr(src, "cfg") else src

    @property
    def settings(self) -> Any:
        return self.cfg.settings

    def _model_settings(self) -> Any:
        return (self.cfg.vision or VisionConfig()).model

    def backend(self) -> Any:
        """The backend, built once (raises BackendUnavailableError when it cannot run here)."""
        with self._backend_lock:
            if self._backend is None:
                self._backend = make_backend(settings=self._model_settings())
                # the model and the modules it loaded (torch, ...) live as long as the
                # replica: out of the collector's reach, as the app's start-up objects are,
                # so that a full collection on the request path stays short (the log writer's
                # modules were imported with this module: an import holds the interpreter lock)
                gc.collect()
                gc.freeze()
            return self._backend

    # ------------------------------------------------------------------ the worker

    async def submit(self, fn: Any, *args: Any) -> dict[str, Any]:
        """Run ``fn(job, *args)`` on the analysis worker; AnalysisRefused for a full queue
        (503), a run past ``analyze_timeout_s`` (504)."""
        s = self.settings
        with self._pending_lock:
            if self._pending >= s.analyze_queue:
                raise AnalysisRefused(
                    503,
                    f"analysis queue full ({s.analyze_queue} waiting); retry later",
                    retry_after=max(1, math.ceil(s.analyze_timeout_s / 4)),
                )
            self._pending += 1
        job = _Job()

        def run() -> dict[str, Any]:
            try:
                if job.cancelled.is_set():  # timed out while waiting: do not start
                    raise AnalysisRefused(504, "timed out in the queue")
                out: dict[str, Any] = fn(job, *args)
                return out
            finally:
                with self._pending_lock:
                    self._pending -= 1

        fut = asyncio.wrap_future(self._worker.submit(run))
        try:
            return await asyncio.wait_for(asyncio.shield(fut), s.analyze_timeout_s)
        except TimeoutError:
            job.cancelled.set()
            fut.add_done_callback(lambda f: f.cancelled() or f.exception())  # no "never retrieved"
            raise AnalysisRefused(
                504, f"analysis did not finish within {s.analyze_timeout_s:g} s; not logged"
            ) from None

    def _run(self, job: _Job, request: Any) -> dict[str, Any]:
        rec = self.backend().analyze([request])[0]
        out = record_json(rec)  # the answer first: a record that cannot be shown is not logged
        if not job.cancelled.is_set():
            self._log(rec)
        return out

    # ------------------------------------------------------------------ PNG uploads

    def analyze_png(self, job: _Job, png: bytes, instrument: str, timeframe: str) -> dict[str, Any]:
        """Analyse an uploaded chart image (PNG): at most ``max_image_pixels`` pixels, decoded
        within ``decode_budget_s``; the window times are unknown (null in the answer)."""
        image: bytes | np.ndarray = png
        palette = self._decode_png(png)
        if self.backend().name == "cpu":
            image = palette  # decoded once, here; other backends take the PNG as sent
        return self._run(
            job,
            AnalysisRequest(
                image=image,
                instrument=instrument,
                timeframe=timeframe,
                window_start=0,
                window_end=0,
            ),
        )

    def _decode_png(self, png: bytes) -> np.ndarray:
        # optional dependency (vision extra): pillow
        from PIL import Image

        budget = self.settings.max_image_pixels
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(io.BytesIO(png)) as im:
                    if im.format != "PNG":
                        raise VisionError("the body is not a PNG image")
                    w, h = im.size  # from the header: refuse a pixel bomb before decoding it
                    if not (16 <= w <= 8192 and 16 <= h <= 8192):
                        raise VisionError(
                            f"image is {w}x{h} pixels; accepted 16..8192 on each side"
                        )
                    if w * h > budget:
                        raise VisionError(
                            f"image is {w}x{h} = {w * h} pixels; at most {budget} accepted"
                        )
                    t0 = time.perf_counter()
                    im.load()
                    spent = time.perf_counter() - t0
                    if spent > self.settings.decode_budget_s:
                        raise VisionError(
                            f"decoding the PNG took {spent:.1f} s, over the "
                            f"{self.settings.decode_budget_s:g} s budget"
                        )
                    return to_palette(im)
        except VisionError:
            raise
        except Exception as exc:  # noqa: BLE001 - any decoder failure is the upload's fault
            raise VisionError(
                f"the uploaded PNG cannot be decoded ({type(exc).__name__})"
            ) from None

    # ------------------------------------------------------------------ bar windows

    def analyze_bars(self, job: _Job, body: AnalyzeBars) -> dict[str, Any]:
        """Chart the posted bars as the pipeline does (same rasterizer and size) and analyse."""
        vc = self.cfg.vision or VisionConfig()
        width = int(vc.size[1])
        if len(body.bars) > width:
            raise VisionError(
                f"{len(body.bars)} bars do not fit the {width}-pixel-wide chart; "
                f"send at most {width}"
            )
        o, h, lo, c = (
            np.array([getattr(b, k) for b in body.bars], dtype=np.float64)
            for k in ("open", "high", "low", "close")
        )
        vol = [b.volume for b in body.bars]
        volume = np.array(vol, dtype=np.float64) if all(v is not None for v in vol) else None
        try:
            img = rasterize(o, h, lo, c, size=vc.size, volume=volume)
            summary = indicator_summary(o, h, lo, c)
        except (ValueError, ArithmeticError) as exc:
            raise VisionError(f"these bars cannot be charted: {str(exc)[:200]}") from None
        return self._run(
            job,
            AnalysisRequest(
                image=img,
                instrument=body.instrument,
                timeframe=body.timeframe,
                window_start=body.bars[0].ts,
                window_end=body.bars[-1].ts,
                summary=summary,
                ohlc=np.column_stack([o, h, lo, c]),
            ),
        )

    # ------------------------------------------------------------------ the log (writes)

    def _log(self, rec: Any) -> None:
        if self.cfg.analyses_dir is None:
            return
        with self._log_lock:
            self._unflushed.append((rec, time.time_ns() // 1_000_000))
            due = (
                len(self._unflushed) >= self.settings.log_flush_rows
                or time.monotonic() - self._last_flush >= self.settings.log_flush_s
            )
            if not due and self._flusher is None:
                self._flusher = threading.Timer(self.settings.log_flush_s, self.flush_log)
                self._flusher.daemon = True
                self._flusher.start()
        if due:
            self.flush_log()

    def flush_log(self) -> None:
        """Append the buffered records to the log as one file; compact when it has too many."""
        d = self.cfg.analyses_dir
        with self._log_lock:
            batch, self._unflushed = self._unflushed, []
            self._last_flush = time.monotonic()
            if self._flusher is not None:
                self._flusher.cancel()
                self._flusher = None
        if not batch or d is None:
            return
        try:
            sink = AnalysisLog(d, flush_rows=len(batch) + 1, flush_bytes=1 << 40)
            st = sink._state  # keep each record's own log time
            st.records, st.logged_at = [r for r, _ in batch], [t for _, t in batch]
            sink.close()
            s = self.settings
            if len(log_files(d)) > s.log_max_files:
                age = None if s.log_max_age_days is None else int(s.log_max_age_days * 86_400_000)
                rep = compact_log(d, max_rows=s.log_max_rows, max_age_ms=age)
                for p in rep.problems:
                    log.warning("analysis log: %s", p)
        except LogError as exc:
            log.error("analysis log not written (%d records lost): %s", len(batch), exc)

    # ------------------------------------------------------------------ the log (reads)

    def _log_frame(self) -> Any:
        """The log's records (files + this replica's unflushed ones), newest window first."""
        d = self.cfg.analyses_dir
        with self._read_lock:
            listing: dict[Path, tuple[int, int]] = {}
            for f in log_files(d) if d is not None else []:
                try:
                    st = f.stat()
                except OSError:
                    continue
                listing[f] = (st.st_mtime_ns, st.st_size)
            changed = listing != self._files
            if changed:
                added = [f for f in listing if self._files.get(f) != listing[f]]
                if self._table is not None and all(f in listing for f in self._files):
                    new, problems = read_log_tolerant(d, added)  # only what is new
                    self._table = pl.concat([self._table, _frame(new)], how="vertical_relaxed")
                    self._problems = [*self._problems, *problems]
                else:  # first read, or files went away (a compaction): read everything
                    table, problems = read_log_tolerant(d, list(listing))
                    self._table, self._problems = _frame(table), problems
                for p in problems:
                    log.warning("analysis log: skipped %s", p)
                self._files = listing
            with self._log_lock:
                pending = list(self._unflushed)
            if pending or changed or self._sorted is None:
                frame = self._table if self._table is not None else _frame(LOG_SCHEMA.empty_table())
                if pending:
                    t = records_to_table([r for r, _ in pending])
                    t = t.append_column(LOG_SCHEMA.field("logged_at"), _ts([x for _, x in pending]))
                    frame = pl.concat([frame, _frame(t)], how="vertical_relaxed")
                self._sorted = frame.unique(maintain_order=True).sort(
                    ["window_end", "logged_at"], descending=True, nulls_last=True
                )
            return self._sorted, len(self._problems)

    def analyses(self, limit: int, timeframe: str | None) -> tuple[list[dict[str, Any]], int]:
        """The newest ``limit`` analyses (latest window end first, then latest logged) and
        how many records were skipped as unreadable."""
        frame, skipped = self._log_frame()
        if timeframe is not None:
            frame = frame.filter(pl.col("timeframe") == timeframe)
        out: list[dict[str, Any]] = []
        start = 0
        while len(out) < limit and start < frame.height:
            chunk = frame.slice(start, 2 * (limit - len(out)))
            start += chunk.height
            for row in chunk.iter_rows(named=True):
                try:
                    ws, we = _ms(row["window_start"]), _ms(row["window_end"])
                    if not (0 <= ws <= TS_MAX_MS and 0 <= we <= TS_MAX_MS):
                        raise ValueError("window outside 1970..2100")
                    row = {**row, "window_start": ws, "window_end": we}
                    out.append(record_json(AnalysisRecord.from_row(row)))
                except Exception as exc:  # noqa: BLE001 - one bad record must not sink the list
                    skipped += 1
                    log.warning("analysis log: unreadable record skipped: %s", str(exc)[:200])
                    continue
                if len(out) == limit:
                    break
        return out, skipped

    # ------------------------------------------------------------------ patterns

    def patterns(
        self, lib: Any, timeframe: str | None, validated_only: bool
    ) -> list[dict[str, Any]]:
        """Stored pattern statistics (see :func:`aio_ray.library.patterns.load_pattern_stats`)."""
        rows = load_pattern_stats(lib, timeframe=timeframe, validated_only=validated_only)
        return [
            {
                k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                for k, v in r.items()
            }
            for r in rows
        ]


def _ts(values: list[int]) -> Any:
    return pa.array(values, type=pa.int64()).cast(TS_TYPE)


def _frame(table: Any) -> Any:
    """A log table as polars with times as plain int64 ms (no calendar conversion, so a
    record with an absurd time stays a number until it is skipped)."""
    cols = {}
    for name in table.column_names:
        col = table.column(name)
        if pa.types.is_timestamp(col.type):
            col = col.cast(pa.int64())
        cols[name] = col
    return pl.from_arrow(pa.table(cols))


def _ms(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError(f"window time is not epoch ms: {type(v).__name__}")
    return v


def to_palette(im: Any) -> np.ndarray:
    """A decoded PIL image as (H, W) uint8 indices of the nearest chart palette colour,
    vectorized: each distinct colour is matched once (colours packed into one integer)."""
    pal = np.asarray(PALETTE, dtype=np.int32)
    if im.mode == "P":
        idx = np.asarray(im, dtype=np.uint8)
        own = np.zeros((256, 3), dtype=np.int32)
        raw = np.asarray(im.getpalette() or [], dtype=np.int32)[:768].reshape(-1, 3)
        own[: len(raw)] = raw
        d = ((own[:, None, :] - pal[None, :, :]) ** 2).sum(axis=2)
        lut = d.argmin(axis=1).astype(np.uint8)
        mapped: np.ndarray = lut[idx]
        return mapped
    rgb = np.asarray(im.convert("RGB"), dtype=np.uint8)
    key = (rgb[..., 0].astype(np.uint32) << 16) | (rgb[..., 1].astype(np.uint32) << 8) | rgb[..., 2]
    colours, inverse = np.unique(key.ravel(), return_inverse=True)
    c = np.stack([(colours >> 16) & 255, (colours >> 8) & 255, colours & 255], axis=1).astype(
        np.int32
    )
    d = ((c[:, None, :] - pal[None, :, :]) ** 2).sum(axis=2)
    nearest = d.argmin(axis=1).astype(np.uint8)
    out: np.ndarray = nearest[inverse.reshape(-1)].reshape(rgb.shape[:2])
    return out


__all__ = [
    "MAX_BARS",
    "AnalysisRefused",
    "AnalyzeBars",
    "BarIn",
    "Timeframe",
    "VisionService",
    "to_palette",
]
