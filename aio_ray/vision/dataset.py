"""The multimodal chart dataset: one row per bar window, image + text + labels, as Parquet.

Stable public API::

    build_dataset(bars_df, *, timeframe, instrument="EURUSD", window=64, stride=16,
                  horizons=(1, 4, 12, 48), size=(448, 448), overlays=("sma_20", "bb_20"),
                  volume=False, trend_threshold=3.0, out_dir=None) -> pyarrow.Table
    build_dataset_ray(bars_df, *, ..., windows_per_task=256) -> pyarrow.Table   # same rows
    write_dataset(table, path) -> Path         # Parquet, zstd, images as binary PNG
    read_dataset(path) -> pyarrow.Table
    decode_image(png) -> (H, W) uint8 palette indices
    trend_label(high, low, close, threshold=3.0) -> (label, score)
    forward_labels(close, last, horizons) -> dict
    dataset_info(table) -> dict               # build settings and null counts (schema metadata)

A row describes the window of ``window`` bars starting at bar ``i`` (``i = 0, stride, ...``
while the window fits); ``t = i + window - 1`` is its last bar.

What comes from the window (bars ``i..t`` only, so nothing after the chart leaks into it):
``image`` (PNG of :func:`aio_ray.charts.raster.rasterize_batch` on the ``mid`` prices, with
the overlays of :mod:`aio_ray.charts.overlays` computed on the whole series, exactly as at
inference: indicators look back only, so a window's lines use its bars and earlier ones, and
the first windows of a series show the warm-up as a gap), ``summary``
(:func:`aio_ray.vision.summary.indicator_summary`), ``trend``/``trend_score`` (the rule
below), ``patterns``/``pattern_hot`` (:func:`aio_ray.patterns.detectors.window_patterns`).

What comes from after the window (bars ``t..t+h``; the window's bars other than its last close
never enter): for each horizon ``h`` (bars), ``fwd_ret_{h}`` = ``log(close[t+h] / close[t])``
in basis points, ``fwd_sign_{h}`` its sign (-1, 0, 1, int8), and ``fwd_vol_{h}`` the realized
volatility ``sqrt(sum of squared close-to-close log returns over t..t+h)`` in basis points
(not annualized). Horizons count bars of the bar series, so they step over weekends and other
gaps without bars. Where ``t + h`` is past the last bar the three are null; those windows are
kept and counted (``dataset_info(table)["null_forward"]``, and a log line).

Trend rule (:func:`trend_label`): the least-squares slope of the closes against the bar index,
times ``window - 1``, is the move of the fitted line across the window; divided by the
window's mean true range (``ta.tr(true)``, the ATR over the window) it is ``trend_score``, in
ATR units. ``up`` when ``trend_score >= threshold``, ``down`` when ``<= -threshold``, else
``sideways``. With the default threshold of 3 ATR, 64-bar windows of the synthetic demo month
(``data/demo/bars``, 1m and 5m) split about 30/30/40 between up, down and sideways.
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from aio_ray.charts import overlays as chart_overlays
from aio_ray.charts.raster import encode_png, rasterize_batch
from aio_ray.errors import AioError
from aio_ray.patterns.detectors import window_patterns
from aio_ray.patterns.vocabulary import PATTERNS, TRENDS
from aio_ray.schema import TS_TYPE
from aio_ray.vision.summary import indicator_summary

__all__ = [
    "DATASET_METADATA_KEY",
    "DatasetError",
    "DatasetSpec",
    "build_dataset",
    "build_dataset_ray",
    "dataset_info",
    "dataset_schema",
    "decode_image",
    "forward_labels",
    "overlay_lines",
    "read_dataset",
    "trend_label",
    "write_dataset",
]

log = logging.getLogger(__name__)

DATASET_METADATA_KEY = b"aio.vision.dataset"
"""Schema metadata key holding the build settings and counts as JSON."""
_BPS = 1e4
_CHUNK = 256  # windows rendered at once (bounds memory: 256 x 448 x 448 bytes = 51 MB)
_ROW_GROUP_BYTES = 32 << 20


class DatasetError(AioError, ValueError):
    """The dataset cannot be built or read (bad argument, too few bars, bad file); says which."""


# --------------------------------------------------------------------------- labels


def trend_label(high: Any, low: Any, close: Any, threshold: float = 3.0) -> tuple[str, float]:
    """The trend a chart of this window shows: ``("up" | "down" | "sideways", score)``.

    Parameters
    ----------
    high, low, close : 1-D float arrays of one window (>= 2 bars), quote currency.
    threshold : ATR units; ``|score| >= threshold`` is a trend.

    Returns
    -------
    (label, score) : score is the fitted regression line's move across the window divided by
    the window's mean true range (ATR units; 0 for a flat window).
    """
    h = np.asarray(high, dtype=np.float64)
    lo = np.asarray(low, dtype=np.float64)
    c = np.asarray(close, dtype=np.float64)
    n = len(c)
    if n < 2:
        raise DatasetError(f"trend_label: a window needs >= 2 bars, got {n}")
    x = np.arange(n, dtype=np.float64)
    xm = x - x.mean()
    slope = float(np.dot(xm, c - c.mean()) / np.dot(xm, xm))
    tr = np.empty(n)
    tr[0] = h[0] - lo[0]
    prev = c[:-1]
    tr[1:] = np.maximum(h[1:] - lo[1:], np.maximum(np.abs(h[1:] - prev), np.abs(lo[1:] - prev)))
    atr_w = float(tr.mean())
    score = slope * (n - 1) / atr_w if atr_w > 0 else 0.0
    label = "up" if score >= threshold else "down" if score <= -threshold else "sideways"
    return label, score


def forward_labels(
    close: Any, last: int, horizons: Sequence[int]
) -> dict[int, tuple[float, int, float] | None]:
    """Forward labels of the window whose last bar is ``last``, from ``close[last:]`` only.

    Returns ``{h: (log return bps, sign, realized vol bps)}``, ``None`` where ``last + h``
    is past the end of ``close``.
    """
    c = np.asarray(close, dtype=np.float64)
    out: dict[int, tuple[float, int, float] | None] = {}
    for h in horizons:
        if last + h >= len(c):
            out[h] = None
            continue
        seg = np.log(c[last : last + h + 1])
        ret = float((seg[-1] - seg[0]) * _BPS)
        vol = float(math.sqrt(float(np.sum(np.diff(seg) ** 2))) * _BPS)
        out[h] = (ret, int(np.sign(ret)), vol)
    return out


def overlay_lines(close: np.ndarray, spec: Sequence[str]) -> dict[str, np.ndarray]:
    """Overlay lines of closes ``(N,)`` or ``(B, N)`` (the grammar and its semantics:
    :mod:`aio_ray.charts.overlays`). Raises DatasetError on a bad spec."""
    try:
        return chart_overlays.overlay_lines(close, spec)
    except chart_overlays.OverlayError as exc:
        raise DatasetError(f"overlays: {exc}") from exc


# --------------------------------------------------------------------------- schema


@dataclass(frozen=True)
class DatasetSpec:
    """How windows are cut, drawn and labelled (recorded in the table's metadata).

    Attributes
    ----------
    instrument : symbol, e.g. "EURUSD".
    timeframe : bar timeframe name, e.g. "1h".
    window : bars per chart (>= 2).
    stride : bars between consecutive window starts (>= 1).
    horizons : forward horizons, bars (each >= 1).
    size : (height, width) of the chart, pixels.
    overlays : overlay specs (see :func:`overlay_lines`).
    volume : draw the tick-count volume pane.
    trend_threshold : ATR units (see :func:`trend_label`).
    pip_size : price of one pip, for the summary's ATR.
    """

    instrument: str
    timeframe: str
    window: int = 64
    stride: int = 16
    horizons: tuple[int, ...] = (1, 4, 12, 48)
    size: tuple[int, int] = (448, 448)
    overlays: tuple[str, ...] = chart_overlays.DEFAULT_OVERLAYS
    volume: bool = False
    trend_threshold: float = 3.0
    pip_size: float = 1e-4

    def __post_init__(self) -> None:
        def bad(name: str, why: str) -> DatasetError:
            return DatasetError(f"build_dataset: {name} {why}, got {getattr(self, name)!r}")

        for name in ("window", "stride"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < (2 if name == "window" else 1):
                raise bad(
                    name, "must be an int >= " + ("2 (bars)" if name == "window" else "1 (bars)")
                )
        hs = self.horizons
        if not hs or any(isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in hs):
            raise bad("horizons", "must be a non-empty tuple of ints >= 1 (bars)")
        if len(set(hs)) != len(hs):
            raise bad("horizons", "must not repeat")
        if not (math.isfinite(self.trend_threshold) and self.trend_threshold > 0):
            raise bad("trend_threshold", "must be a positive number of ATR")
        try:  # canonical names in the spec and the metadata ("bb" -> "bb_20")
            specs = chart_overlays.canonical_overlays(self.overlays)
            object.__setattr__(self, "overlays", specs)
        except chart_overlays.OverlayError as exc:
            raise DatasetError(f"build_dataset: overlays: {exc}") from exc

    def metadata(self) -> dict[str, Any]:
        d = asdict(self)
        d["horizons"], d["size"], d["overlays"] = (
            list(self.horizons),
            list(self.size),
            list(self.overlays),
        )
        return d


def dataset_schema(horizons: Sequence[int]) -> pa.Schema:
    """The table schema for the given horizons (without the metadata)."""
    fields = [
        pa.field("instrument", pa.string(), nullable=False),
        pa.field("timeframe", pa.string(), nullable=False),
        pa.field("window_start", TS_TYPE, nullable=False),
        pa.field("window_end", TS_TYPE, nullable=False),
        pa.field("image", pa.binary(), nullable=False),
        pa.field("summary", pa.string(), nullable=False),
        pa.field("last_close", pa.float64(), nullable=False),
        pa.field("trend", pa.string(), nullable=False),
        pa.field("trend_score", pa.float64(), nullable=False),
        pa.field("patterns", pa.list_(pa.string()), nullable=False),
        pa.field("pattern_hot", pa.list_(pa.int8(), len(PATTERNS)), nullable=False),
    ]
    for h in horizons:
        fields += [
            pa.field(f"fwd_ret_{h}", pa.float64()),
            pa.field(f"fwd_sign_{h}", pa.int8()),
            pa.field(f"fwd_vol_{h}", pa.float64()),
        ]
    return pa.schema(fields)


# --------------------------------------------------------------------------- core


@dataclass(frozen=True)
class _Bars:
    ts: np.ndarray  # int64 ms
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    ticks: np.ndarray  # float64, the activity drawn in the volume pane


def _bars_arrays(bars_df: Any) -> _Bars:
    df = bars_df if isinstance(bars_df, pl.DataFrame) else pl.from_arrow(bars_df)
    if not isinstance(df, pl.DataFrame):
        raise DatasetError("build_dataset: bars_df must be a polars DataFrame or a pyarrow Table")
    need = ["ts", "mid_open", "mid_high", "mid_low", "mid_close", "ticks"]
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise DatasetError(f"build_dataset: bars lack column(s) {missing}; have {df.columns}")
    ts_col = df["ts"]
    if ts_col.dtype.is_temporal():
        ts = ts_col.dt.epoch("ms").to_numpy().astype(np.int64)
    else:
        ts = ts_col.cast(pl.Int64).to_numpy()
    if ts.size > 1 and not bool(np.all(np.diff(ts) > 0)):
        raise DatasetError("build_dataset: bars must be sorted by ts with no duplicates")
    arr = {c: df[c].cast(pl.Float64).to_numpy().copy() for c in need[1:]}
    return _Bars(
        ts, arr["mid_open"], arr["mid_high"], arr["mid_low"], arr["mid_close"], arr["ticks"]
    )


def _window_starts(n: int, spec: DatasetSpec) -> list[int]:
    return list(range(0, n - spec.window + 1, spec.stride))


def _rows(bars: _Bars, starts: Sequence[int], spec: DatasetSpec) -> pa.Table:
    """Rows of the windows starting at ``starts`` (the pure core both builders map)."""
    schema = dataset_schema(spec.horizons)
    cols: dict[str, list[Any]] = {f.name: [] for f in schema}
    w = spec.window
    end = int(max(starts, default=-w)) + w  # the lines need no bar after the last window
    all_lines = overlay_lines(bars.close[:end], spec.overlays) if spec.overlays and end > 0 else {}
    for lo in range(0, len(starts), _CHUNK):
        chunk = np.asarray(starts[lo : lo + _CHUNK], dtype=np.int64)
        idx = chunk[:, None] + np.arange(w)[None, :]
        o, h, l, c = bars.open[idx], bars.high[idx], bars.low[idx], bars.close[idx]
        ohlc = np.stack([o, h, l, c], axis=2)
        lines = {k: v[idx] for k, v in all_lines.items()} if all_lines else None
        vol = bars.ticks[idx] if spec.volume else None
        images = rasterize_batch(ohlc, size=spec.size, volume=vol, overlays=lines)
        for k, s in enumerate(chunk):
            t = int(s) + w - 1
            cols["instrument"].append(spec.instrument)
            cols["timeframe"].append(spec.timeframe)
            cols["window_start"].append(int(bars.ts[s]))
            cols["window_end"].append(int(bars.ts[t]))
            cols["image"].append(encode_png(images[k]))
            cols["summary"].append(
                indicator_summary(o[k], h[k], l[k], c[k], pip_size=spec.pip_size)
            )
            cols["last_close"].append(float(c[k, -1]))
            label, score = trend_label(h[k], l[k], c[k], spec.trend_threshold)
            cols["trend"].append(label)
            cols["trend_score"].append(score)
            names = [p for p in PATTERNS if p in set(window_patterns(o[k], h[k], l[k], c[k]))]
            cols["patterns"].append(names)
            cols["pattern_hot"].append([1 if p in names else 0 for p in PATTERNS])
            for hz, v in forward_labels(bars.close, t, spec.horizons).items():
                cols[f"fwd_ret_{hz}"].append(None if v is None else v[0])
                cols[f"fwd_sign_{hz}"].append(None if v is None else v[1])
                cols[f"fwd_vol_{hz}"].append(None if v is None else v[2])
    arrays = []
    for f in schema:
        if f.name in ("window_start", "window_end"):
            arrays.append(pa.array(cols[f.name], pa.int64()).cast(TS_TYPE))
        else:
            arrays.append(pa.array(cols[f.name], f.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def _finish(table: pa.Table, spec: DatasetSpec, n_bars: int) -> pa.Table:
    nulls = {str(h): table.column(f"fwd_ret_{h}").null_count for h in spec.horizons}
    info = {
        "spec": spec.metadata(),
        "bars": n_bars,
        "windows": table.num_rows,
        "null_forward": nulls,
        "patterns": list(PATTERNS),
        "trends": list(TRENDS),
    }
    for h, k in nulls.items():
        if k:
            log.info(
                "%s %s: %d of %d windows have no %s-bar forward labels (too close to the end)",
                spec.instrument,
                spec.timeframe,
                k,
                table.num_rows,
                h,
            )
    meta = {DATASET_METADATA_KEY: json.dumps(info, sort_keys=True).encode()}
    return table.replace_schema_metadata(meta)


def _spec(instrument: str, timeframe: str, **kw: Any) -> DatasetSpec:
    kw["horizons"] = tuple(kw["horizons"])
    kw["size"] = tuple(kw["size"])
    ov = kw["overlays"]
    kw["overlays"] = ov if isinstance(ov, str) else tuple(ov or ())  # a str: refused by the spec
    return DatasetSpec(instrument=instrument.upper(), timeframe=timeframe, **kw)


def _out_path(out_dir: str | Path, spec: DatasetSpec) -> Path:
    return Path(out_dir) / f"{spec.instrument}_{spec.timeframe}.parquet"


def build_dataset(
    bars_df: Any,
    *,
    timeframe: str,
    instrument: str = "EURUSD",
    window: int = 64,
    stride: int = 16,
    horizons: Sequence[int] = (1, 4, 12, 48),
    size: tuple[int, int] = (448, 448),
    overlays: Sequence[str] | None = chart_overlays.DEFAULT_OVERLAYS,
    volume: bool = False,
    trend_threshold: float = 3.0,
    pip_size: float = 1e-4,
    out_dir: str | Path | None = None,
) -> pa.Table:
    """Chart windows of one instrument's bars with their summaries and labels.

    Parameters
    ----------
    bars_df : polars DataFrame or Arrow table with BAR_SCHEMA columns (at least ``ts``,
        ``mid_open/high/low/close``, ``ticks``), one timeframe, sorted by ``ts``.
    timeframe, instrument : written into every row.
    window : bars per chart.  stride : bars between window starts.
    horizons : forward horizons in bars.  size : chart (height, width), pixels.
    overlays : specs of :mod:`aio_ray.charts.overlays` (``"sma_N"``, ``"ema_N"``, ``"bb_N"``,
        ``"bb_N_MULT"``); None or () for plain candles.
    volume : add the volume pane (tick counts: FX has no traded volume).
    trend_threshold : ATR units for the trend label.  pip_size : for the summary's ATR.
    out_dir : when given, also write ``{out_dir}/{INSTRUMENT}_{timeframe}.parquet``.

    Returns
    -------
    pyarrow.Table with :func:`dataset_schema` columns, one row per window in time order;
    build settings and null counts in :func:`dataset_info`.

    Raises
    ------
    DatasetError : bad argument or fewer bars than one window.
    """
    spec = _spec(
        instrument,
        timeframe,
        window=window,
        stride=stride,
        horizons=horizons,
        size=size,
        overlays=overlays,
        volume=volume,
        trend_threshold=trend_threshold,
        pip_size=pip_size,
    )
    bars = _bars_arrays(bars_df)
    if len(bars.ts) < spec.window:
        raise DatasetError(
            f"build_dataset: {spec.instrument} {timeframe} has {len(bars.ts)} bars, fewer than "
            f"one window of {spec.window}"
        )
    table = _finish(_rows(bars, _window_starts(len(bars.ts), spec), spec), spec, len(bars.ts))
    if out_dir is not None:
        write_dataset(table, _out_path(out_dir, spec))
    return table


def _ray_chunk_fn(spec: DatasetSpec, bars_ref: Any) -> Callable[[dict[str, np.ndarray]], pa.Table]:
    def fn(batch: dict[str, np.ndarray]) -> pa.Table:
        import ray  # Ray worker code: runs inside a map_batches task

        bars = ray.get(bars_ref)  # zero-copy numpy views from the object store
        return _rows(bars, [int(s) for s in batch["start"]], spec)

    return fn


def build_dataset_ray(
    bars_df: Any,
    *,
    timeframe: str,
    instrument: str = "EURUSD",
    window: int = 64,
    stride: int = 16,
    horizons: Sequence[int] = (1, 4, 12, 48),
    size: tuple[int, int] = (448, 448),
    overlays: Sequence[str] | None = chart_overlays.DEFAULT_OVERLAYS,
    volume: bool = False,
    trend_threshold: float = 3.0,
    pip_size: float = 1e-4,
    out_dir: str | Path | None = None,
    windows_per_task: int = 256,
) -> pa.Table:
    """:func:`build_dataset` with the windows rendered by Ray Data tasks on the cluster.

    The window starts become a Ray dataset; ``map_batches`` runs the same pure core on each
    batch of ``windows_per_task`` windows (the bars travel once through the object store), and
    the driver concatenates the rows in time order. The result equals :func:`build_dataset`'s.
    Needs a running Ray (``ray.init``) or starts a local one.
    """
    import ray.data  # heavy: Ray Data only for the cluster path (binds ``ray`` too)

    spec = _spec(
        instrument,
        timeframe,
        window=window,
        stride=stride,
        horizons=horizons,
        size=size,
        overlays=overlays,
        volume=volume,
        trend_threshold=trend_threshold,
        pip_size=pip_size,
    )
    if (
        isinstance(windows_per_task, bool)
        or not isinstance(windows_per_task, int)
        or windows_per_task < 1
    ):
        raise DatasetError(
            f"build_dataset_ray: windows_per_task must be an int >= 1, got {windows_per_task!r}"
        )
    bars = _bars_arrays(bars_df)
    if len(bars.ts) < spec.window:
        raise DatasetError(
            f"build_dataset_ray: {spec.instrument} {timeframe} has {len(bars.ts)} bars, fewer "
            f"than one window of {spec.window}"
        )
    if not ray.is_initialized():
        ray.init()  # joins RAY_ADDRESS when set, else starts a local head
    starts = _window_starts(len(bars.ts), spec)
    n_blocks = max(1, math.ceil(len(starts) / windows_per_task))
    items = ray.data.from_items([{"start": s} for s in starts], override_num_blocks=n_blocks)
    ds = items.map_batches(
        _ray_chunk_fn(spec, ray.put(bars)),
        batch_size=windows_per_task,
        batch_format="numpy",
    )
    parts = [t for t in ray.get(list(ds.to_arrow_refs())) if t.num_rows]
    schema = dataset_schema(spec.horizons)
    table = pa.concat_tables([t.select(schema.names).cast(schema) for t in parts])
    table = table.sort_by("window_start")
    table = _finish(table, spec, len(bars.ts))
    if out_dir is not None:
        write_dataset(table, _out_path(out_dir, spec))
    return table


# --------------------------------------------------------------------------- files


def dataset_info(table: pa.Table) -> dict[str, Any]:
    """Build settings and counts stored with a dataset table (or read back from Parquet).

    Keys: ``spec`` (the :class:`DatasetSpec` fields), ``bars``, ``windows``,
    ``null_forward`` (horizon -> windows without forward labels), ``patterns``, ``trends``.
    """
    meta = table.schema.metadata or {}
    if DATASET_METADATA_KEY not in meta:
        raise DatasetError("table has no vision dataset metadata (not built by build_dataset)")
    return dict(json.loads(meta[DATASET_METADATA_KEY]))


def write_dataset(
    table: pa.Table, path: str | Path, *, row_group_bytes: int = _ROW_GROUP_BYTES
) -> Path:
    """Write a dataset table to Parquet atomically (zstd; temp file + rename); return the path.

    Row groups hold about ``row_group_bytes`` of data (at least 64 rows), so a reader can
    stream a large dataset; the PNG column is neither dictionary-encoded nor given min/max
    statistics (meaningless for images).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    per_row = max(1, table.nbytes // max(1, table.num_rows))
    rows = max(64, int(row_group_bytes // per_row))
    others = [n for n in table.column_names if n != "image"]
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
    try:
        pq.write_table(
            table,
            tmp,
            compression="zstd",
            row_group_size=rows,
            use_dictionary=["instrument", "timeframe", "trend"],
            write_statistics=others,
        )
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read_dataset(path: str | Path) -> pa.Table:
    """Read a dataset file written by :func:`write_dataset` (with its metadata)."""
    p = Path(path)
    try:
        table = pq.read_table(p)
    except (OSError, pa.ArrowInvalid) as exc:
        raise DatasetError(f"{p}: cannot read vision dataset: {exc}") from exc
    if DATASET_METADATA_KEY not in (table.schema.metadata or {}):
        raise DatasetError(
            f"{p}: not a vision dataset (no {DATASET_METADATA_KEY.decode()} metadata)"
        )
    return table


def decode_image(png: bytes) -> np.ndarray:
    """A dataset image (palette PNG bytes) back to (H, W) uint8 palette indices."""
    # optional dependency (vision extra): pillow
    from PIL import Image

    with Image.open(io.BytesIO(png)) as im:
        if im.mode != "P":
            raise DatasetError(f"dataset image is not a palette PNG (mode {im.mode})")
        return np.asarray(im, dtype=np.uint8).copy()
