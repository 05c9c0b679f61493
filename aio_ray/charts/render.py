"""Chart rendering over bar windows: a plain function, and the same function mapped with Ray Data.

Stable public API::

    window_starts(n_bars, window, stride)            # int64 start indices of full windows
    overlay_lines(close, specs)                      # "sma_20", "ema_50", "bb_20" -> price lines
                                                     # (the grammar: aio_ray.charts.overlays)
    render_windows(bars, *, window=64, stride=None, size=(448, 448), overlays=DEFAULT_OVERLAYS,
                   volume=True, as_png=True, price="mid") -> pyarrow.Table
    render_windows_ray(bars, *, timeframe=None, symbol=None, ..., windows_per_task=512,
                       num_cpus_per_task=1) -> ray.data.Dataset
    RENDER_SCHEMA                                    # window_start, window_end, image

A window is ``window`` consecutive bars of the frame; ``window_start`` is the open time of its
first bar and ``window_end`` the open time of its last bar (UTC, ms). Overlays are computed on
the whole series first (indicators only look back, so a window's lines use only its own bars and
earlier ones) and then cut per window; their warm-up shows as a gap. With ``as_png=False`` the
``image`` column holds the raw ``H * W`` palette indices (row-major), ``np.frombuffer(...,
np.uint8).reshape(H, W)``; the table's schema metadata records ``format``, ``height`` and
``width``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import polars as pl
import pyarrow as pa

from aio_ray.bars.store import read_bars
from aio_ray.charts import overlays as chart_overlays
from aio_ray.charts.raster import encode_png, rasterize_batch
from aio_ray.errors import AioError
from aio_ray.raycluster import ensure_ray
from aio_ray.schema import TS_TYPE

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_OVERLAYS",
    "RENDER_SCHEMA",
    "RenderError",
    "overlay_lines",
    "render_windows",
    "render_windows_ray",
    "window_starts",
]

DEFAULT_OVERLAYS = chart_overlays.DEFAULT_OVERLAYS

RENDER_SCHEMA = pa.schema(
    [
        pa.field("window_start", TS_TYPE, nullable=False),
        pa.field("window_end", TS_TYPE, nullable=False),
        pa.field("image", pa.binary(), nullable=False),
    ]
)
"""One rendered window: first and last bar's open time (UTC ms) and the image bytes."""

_RENDER_BATCH = 64  # charts rasterized per call: bounds the temporaries (64 x 448 x 448 bytes)


class RenderError(AioError, ValueError):
    """Chart rendering got bad arguments or bars (names the argument or column)."""


def window_starts(n_bars: int, window: int, stride: int) -> np.ndarray:
    """Start indices (int64) of the full windows of ``window`` bars, every ``stride`` bars.

    ``[0, stride, 2 * stride, ...]`` up to ``n_bars - window``; empty when ``n_bars < window``.
    Raises RenderError when ``window`` or ``stride`` is < 1 or ``n_bars`` < 0.
    """
    if int(window) < 1:
        raise RenderError(f"window must be >= 1 bar, got {window}")
    if int(stride) < 1:
        raise RenderError(f"stride must be >= 1 bar, got {stride}")
    if int(n_bars) < 0:
        raise RenderError(f"n_bars must be >= 0, got {n_bars}")
    return np.arange(0, max(int(n_bars) - int(window) + 1, 0), int(stride), dtype=np.int64)


def overlay_lines(close: np.ndarray, specs: Sequence[str]) -> dict[str, np.ndarray]:
    """Lines of the overlay ``specs`` on the whole ``close`` series (the grammar and its
    semantics: :mod:`aio_ray.charts.overlays`). Raises RenderError on a bad spec."""
    try:
        return chart_overlays.overlay_lines(close, specs)
    except chart_overlays.OverlayError as exc:
        raise RenderError(str(exc)) from exc


def _frame(bars: Any) -> pl.DataFrame:
    if isinstance(bars, pl.DataFrame):
        return bars
    if isinstance(bars, pa.Table):
        frame = pl.from_arrow(bars)
        assert isinstance(frame, pl.DataFrame)
        return frame
    raise RenderError(
        f"bars must be a polars DataFrame or a pyarrow Table, got {type(bars).__name__}"
    )


def _series(
    frame: pl.DataFrame, price: str, specs: Sequence[str], volume: bool
) -> dict[str, np.ndarray]:
    """ts (int64 ms), o/h/l/c (float64), volume and overlay lines of the whole frame."""
    if price not in ("mid", "bid", "ask"):
        raise RenderError(f"price must be 'mid', 'bid' or 'ask', got {price!r}")
    cols = ["ts"] + [f"{price}_{f}" for f in ("open", "high", "low", "close")]
    if volume:
        cols += ["bid_volume", "ask_volume"]
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise RenderError(f"bars lack column(s) {missing}; have {frame.columns}")
    ts = frame["ts"]
    if isinstance(ts.dtype, pl.Datetime):
        ts = ts.dt.epoch("ms")
    out: dict[str, np.ndarray] = {"ts": np.ascontiguousarray(ts.cast(pl.Int64).to_numpy())}
    if out["ts"].size > 1 and not bool(np.all(np.diff(out["ts"]) > 0)):
        raise RenderError("bars ts must be strictly increasing (sort the bars by ts)")
    for k, c in zip(("open", "high", "low", "close"), cols[1:5]):
        out[k] = np.ascontiguousarray(frame[c].cast(pl.Float64).to_numpy(), dtype=np.float64)
    if volume:
        out["volume"] = (
            frame["bid_volume"].cast(pl.Float64) + frame["ask_volume"].cast(pl.Float64)
        ).to_numpy()
    for name, line in overlay_lines(out["close"], specs).items():
        out[f"overlay:{name}"] = line
    return out


def _render_arrays(
    series: Mapping[str, np.ndarray],
    starts: np.ndarray,
    *,
    window: int,
    size: tuple[int, int],
    as_png: bool,
) -> pa.Table:
    """Render the windows starting at ``starts`` (indices into ``series``): the shared kernel."""
    names = [k for k in series if k.startswith("overlay:")]
    images: list[bytes] = []
    idx = np.arange(window)
    for a in range(0, len(starts), _RENDER_BATCH):
        rows = starts[a : a + _RENDER_BATCH, None] + idx  # (b, window) bar indices
        ohlc = np.stack([series[k][rows] for k in ("open", "high", "low", "close")], axis=2)
        vol = series["volume"][rows] if "volume" in series else None
        lines = {k.split(":", 1)[1]: series[k][rows] for k in names}
        try:
            imgs = rasterize_batch(ohlc, size=size, volume=vol, overlays=lines or None)
        except ValueError as exc:
            raise RenderError(
                f"windows starting at bars {int(rows[0, 0])}..{int(rows[-1, 0])}: {exc}"
            ) from exc
        images.extend(encode_png(im) if as_png else im.tobytes() for im in imgs)
    ts = series["ts"]
    return pa.table(
        [
            pa.array(ts[starts], type=pa.int64()).cast(TS_TYPE),
            pa.array(ts[starts + window - 1], type=pa.int64()).cast(TS_TYPE),
            pa.array(images, type=pa.binary()),
        ],
        schema=_schema(size, as_png),
    )


def _schema(size: tuple[int, int], as_png: bool) -> pa.Schema:
    return RENDER_SCHEMA.with_metadata(
        {
            "format": "png" if as_png else "raw",
            "height": str(int(size[0])),
            "width": str(int(size[1])),
        }
    )


def _check_args(window: int, stride: int | None, size: tuple[int, int]) -> tuple[int, int]:
    if int(window) < 1:
        raise RenderError(f"window must be >= 1 bar, got {window}")
    if int(size[1]) < int(window):
        raise RenderError(f"size width {size[1]} px cannot hold a window of {window} bars")
    return int(window), int(window if stride is None else stride)


def render_windows(
    bars: pl.DataFrame | pa.Table,
    *,
    window: int = 64,
    stride: int | None = None,
    size: tuple[int, int] = (448, 448),
    overlays: Sequence[str] = DEFAULT_OVERLAYS,
    volume: bool = True,
    as_png: bool = True,
    price: Literal["mid", "bid", "ask"] = "mid",
) -> pa.Table:
    """Render every full window of ``window`` bars, every ``stride`` bars, as one chart.

    Parameters
    ----------
    bars
        Bars of one timeframe and symbol (:data:`~aio_ray.schema.BAR_SCHEMA` columns; at least
        ``ts``, ``{price}_open/high/low/close`` and, with ``volume``, the two volume columns),
        sorted by ``ts``.
    window
        Bars per chart.
    stride
        Bars between the starts of consecutive windows; None: ``window`` (no overlap).
    size
        (height, width) in pixels.
    overlays
        Overlay specs (see :func:`overlay_lines`); ``()`` for bare candles.
    volume
        Draw the volume pane (bid + ask volume).
    as_png
        PNG bytes (default) or raw palette indices in ``image``.
    price
        Which price side to draw.

    Returns
    -------
    pyarrow.Table
        :data:`RENDER_SCHEMA`, one row per window in time order.
    """
    window, stride = _check_args(window, stride, size)
    t0 = time.perf_counter()
    series = _series(_frame(bars), price, overlays, volume)
    starts = window_starts(len(series["ts"]), window, stride)
    table = _render_arrays(series, starts, window=window, size=size, as_png=as_png)
    log.info(
        "charts: %d bars -> %d windows in %.2f s",
        len(series["ts"]),
        len(starts),
        time.perf_counter() - t0,
    )
    return table


def _chunk_table(series: Mapping[str, np.ndarray], starts: np.ndarray, window: int) -> pa.Table:
    """One row: the bars a chunk of windows needs, and the windows' starts relative to them."""
    lo = int(starts[0])
    hi = int(starts[-1]) + window
    cols: dict[str, Any] = {"starts": pa.array([starts - lo], type=pa.list_(pa.int64()))}
    for k, v in series.items():
        typ = pa.int64() if k == "ts" else pa.float64()
        cols[k] = pa.array([v[lo:hi]], type=pa.list_(typ))
    return pa.table(cols)


def _render_chunks(
    batch: pa.Table, *, window: int, size: tuple[int, int], as_png: bool
) -> pa.Table:
    """Ray ``map_batches`` function: chunks of bars (see :func:`_chunk_table`) -> rendered windows."""
    out = []
    for i in range(batch.num_rows):
        row = {
            name: batch.column(name)[i].values.to_numpy(zero_copy_only=False)
            for name in batch.column_names
        }
        starts = row.pop("starts").astype(np.int64)
        out.append(_render_arrays(row, starts, window=window, size=size, as_png=as_png))
    return pa.concat_tables(out) if out else _schema(size, as_png).empty_table()


def render_windows_ray(
    bars: pl.DataFrame | pa.Table | str | Path,
    *,
    timeframe: str | None = None,
    symbol: str | None = None,
    window: int = 64,
    stride: int | None = None,
    size: tuple[int, int] = (448, 448),
    overlays: Sequence[str] = DEFAULT_OVERLAYS,
    volume: bool = True,
    as_png: bool = True,
    price: Literal["mid", "bid", "ask"] = "mid",
    windows_per_task: int = 512,
    num_cpus_per_task: float = 1,
) -> Any:
    """:func:`render_windows` mapped over Ray Data: chunks of windows rendered on CPU workers.

    ``bars`` is a frame, or a bars directory with ``timeframe`` (and ``symbol`` when several are
    present; see :func:`aio_ray.bars.store.read_bars`). The driver computes the overlays on the
    whole series (so every chunk draws exactly what :func:`render_windows` draws), cuts the
    windows into chunks of ``windows_per_task`` with the bars they span, and ``map_batches``
    renders one chunk per task with ``num_cpus_per_task`` CPUs. Starts Ray if needed.

    Returns
    -------
    ray.data.Dataset
        Lazy, :data:`RENDER_SCHEMA` rows; the row order is not guaranteed (sort by
        ``window_start``).
    """
    import ray.data  # heavy optional path: only render_windows_ray needs Ray Data

    if isinstance(bars, (str, Path)):
        if timeframe is None:
            raise RenderError("render_windows_ray: a bars directory needs timeframe= (e.g. '1h')")
        frame = read_bars(bars, timeframe, symbol)
    else:
        frame = _frame(bars)
    window, stride = _check_args(window, stride, size)
    if int(windows_per_task) < 1:
        raise RenderError(f"windows_per_task must be >= 1, got {windows_per_task}")
    series = _series(frame, price, overlays, volume)
    starts = window_starts(len(series["ts"]), window, stride)
    if not ray.is_initialized():
        ensure_ray()
    if len(starts) == 0:
        return ray.data.from_arrow(_schema(size, as_png).empty_table())
    chunks = [
        _chunk_table(series, starts[a : a + windows_per_task], window)
        for a in range(0, len(starts), int(windows_per_task))
    ]
    log.info("charts: %d windows in %d chunk(s) for Ray Data", len(starts), len(chunks))
    return ray.data.from_arrow(chunks).map_batches(
        cast(Any, _render_chunks),
        batch_size=1,
        batch_format="pyarrow",
        num_cpus=num_cpus_per_task,
        fn_kwargs={"window": window, "size": (int(size[0]), int(size[1])), "as_png": as_png},
    )
