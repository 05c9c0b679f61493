"""Ingest bar files: validate rows, quarantine bad ones with a reason, write the bars layout.

``aio ingest bars`` reads each file with :func:`aio_ray.data.bar_files.read_bar_file`, checks
every row, keeps the good bars of the given timeframe, rolls higher timeframes up from them
(:func:`aio_ray.bars.resample.rollup`, the tick path's roll-up) and writes
``OUT/timeframe=TF/symbol=SYM/part-0.parquet`` (:data:`~aio_ray.schema.BAR_SCHEMA`), the
manifest, ``OUT/_quarantine/timeframe=TF/symbol=SYM/part-0.parquet`` and
``OUT/_ingest_report_SYM.json``. Nothing is written unless every file could be read.

The row rules and their reasons are in :mod:`aio_ray.data.bar_checks`.

Prices (quote currency). A single price series is the bid (MetaTrader, HistData), the mid
(everything else), or what ``price`` says. Its spread ``s`` (price units) comes from
``--spread`` (wins), else the spread column (MetaTrader: points times ``point``), and must be
given one way or the other: bars without a spread would let the backtest's bid/ask fills trade
for free. With ``s``: a bid series gives ``ask = bid + s``; an ask series ``bid = ask - s``; a
mid series ``bid = mid - s/2``, ``ask = mid + s/2``; ``mid = (bid + ask) / 2`` and
``spread_mean = spread_max = s`` on every bar. ``--spread 0`` asks for bid = ask = mid. With
bid/ask columns, ``mid_x = (bid_x + ask_x) / 2`` for each of O/H/L/C (a mid high/low
approximation: the true one lies between the mid of the extremes and them), ``spread_mean`` is
the mean of the open and close spreads, ``spread_max`` their max. ``ticks`` is the file's
tick count (MetaTrader ``<TICKVOL>``, a ``ticks`` column) or 0 when unknown; ``volume`` is
split equally into ``bid_volume``/``ask_volume``. Rolled-up bars weight ``spread_mean`` by
ticks (by bars when ticks are unknown).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from aio_ray.bars import _nb as k
from aio_ray.bars import store
from aio_ray.bars.resample import nests, rollup
from aio_ray.bars.timeframes import (
    DailyClose,
    bar_labels,
    check_daily_close,
    parse_timeframe,
    parse_timeframes,
)
from aio_ray.data.bar_checks import (
    QUARANTINE_BARS_SCHEMA,
    REASONS,
    Checked,
    Spec,
    check_rows,
    iso_utc,
    kept_bars,
    quarantine_table,
    validate_bars,
)
from aio_ray.data.bar_files import PriceSide, read_bar_file
from aio_ray.errors import AioError, BarsError, ConfigError, SchemaError, SourceError
from aio_ray.schema import BAR_SCHEMA, TS_TYPE

__all__ = [
    "QUARANTINE_BARS_SCHEMA",
    "REASONS",
    "BarIngestReport",
    "ingest_bar_files",
    "validate_bars",
]


def _fixed(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Non-negative values as kernel fixed-point pairs (hi * 2**32 + lo) * 2**-40."""
    scaled = x * 2.0**8  # hi units are 2**-8
    hi = np.floor(scaled)
    lo = np.floor((scaled - hi) * 2.0**32)
    return hi.astype(np.int64), lo.astype(np.int64)


def rolled_up(
    bars: pa.Table, ticks: np.ndarray, tfs: Sequence[str], daily_close: DailyClose
) -> dict[str, pa.Table]:
    """Higher-timeframe bars rolled up from sorted bars (the tick path's :func:`rollup`)."""
    n = bars.num_rows
    ts = bars.column("ts").cast(pa.int64()).to_numpy()
    weight = np.maximum(ticks, 1) if ticks.any() else np.ones(n, np.int64)
    ints = np.zeros((k.N_INT, n), dtype=np.int64)
    ints[k.I_LABEL] = ints[k.I_FIRST] = ints[k.I_LAST] = ts
    ints[k.I_TICKS] = weight
    sm = bars.column("spread_mean").to_numpy()
    for (h, lo), x in zip(
        k.SUM_PAIRS,
        (sm * weight, bars.column("bid_volume").to_numpy(), bars.column("ask_volume").to_numpy()),
        strict=True,
    ):
        ints[h], ints[lo] = _fixed(x)
    flts = np.empty((k.N_FLT, n), dtype=np.float64)
    for i, name in enumerate(BAR_SCHEMA.names[1:13]):
        flts[i] = bars.column(name).to_numpy()
    flts[k.F_SPREAD_MAX] = bars.column("spread_max").to_numpy()
    out = {}
    for tf_name in tfs:
        tf = parse_timeframe(tf_name)
        oi, of = rollup(ints, flts, tf, daily_close)
        keys = bar_labels(ts, tf, daily_close)
        starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]) if n else np.zeros(0, np.int64)
        real = np.add.reduceat(ticks, starts) if n else np.zeros(0, np.int64)
        arrays = [pa.array(oi[k.I_LABEL]).cast(TS_TYPE)]
        arrays += [pa.array(np.ascontiguousarray(of[i])) for i in range(12)]
        arrays.append(
            pa.array(k.fixed_to_float(oi[k.I_SPREAD_HI], oi[k.I_SPREAD_LO]) / oi[k.I_TICKS])
        )
        arrays.append(pa.array(np.ascontiguousarray(of[k.F_SPREAD_MAX])))
        arrays.append(pa.array(real.astype(np.int64)))
        arrays.append(pa.array(k.fixed_to_float(oi[k.I_BIDV_HI], oi[k.I_BIDV_LO])))
        arrays.append(pa.array(k.fixed_to_float(oi[k.I_ASKV_HI], oi[k.I_ASKV_LO])))
        out[tf.name] = pa.Table.from_arrays(arrays, schema=BAR_SCHEMA)
    return out


def gap_stats(ts: np.ndarray, tf_name: str) -> dict[str, Any]:
    """Gaps between consecutive sorted bar times: count, weekend ones, missing bars, longest."""
    tf = parse_timeframe(tf_name)
    step = tf.ms + (3_600_000 if tf.is_daily else 0)  # a New York day may last 25 h
    if ts.size < 2:
        return {"count": 0, "weekend": 0, "missing_bars": 0, "longest": None}
    d = np.diff(ts)
    at = np.flatnonzero(d > step)
    missing = np.rint(d[at] / tf.ms).astype(np.int64) - 1
    day = (ts[at] // 86_400_000 + 4) % 7  # 0 = Monday
    weekend = int(
        np.count_nonzero((d[at] >= 86_400_000) & ((day >= 4) | (day + d[at] // 86_400_000 >= 5)))
    )
    longest = None
    if at.size:
        j = int(np.argmax(d[at]))
        i = int(at[j])
        longest = {
            "after": iso_utc(int(ts[i])),
            "before": iso_utc(int(ts[i + 1])),
            "missing_bars": int(missing[j]),
        }
    return {
        "count": int(at.size),
        "weekend": weekend,
        "missing_bars": int(missing.sum()),
        "longest": longest,
    }


# ------------------------------------------------------------------------------ report


@dataclass
class BarIngestReport:
    """What ``aio ingest bars`` did: files, counts per reason, order, gaps, rows written."""

    symbol: str
    timeframe: str
    out: str
    files: list[dict[str, Any]] = field(default_factory=list)
    totals: dict[str, int] = field(default_factory=dict)
    out_of_order: int = 0
    gaps: dict[str, Any] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    first: str | None = None
    last: str | None = None
    conventions: dict[str, Any] = field(default_factory=dict)
    quarantine: str = ""
    report: str = ""
    seconds: float = 0.0
    errors: list[dict[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": "bar files",
            "symbol": self.symbol,
            "timeframe": self.timeframe,
            "out": self.out,
            "seconds": round(self.seconds, 3),
            "totals": self.totals,
            "out_of_order": self.out_of_order,
            "gaps": self.gaps,
            "rows": self.rows,
            "first": self.first,
            "last": self.last,
            "conventions": self.conventions,
            "files": self.files,
            "quarantine": self.quarantine,
            "report": self.report,
            "errors": self.errors,
        }


def _atomic_parquet(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
    try:
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def target_timeframes(
    tf_name: str, wanted: Sequence[str], daily_close: DailyClose, explicit: bool
) -> list[str]:
    """The input timeframe and the wanted ones that roll up from it (explicit: others are errors)."""
    tf = parse_timeframe(tf_name)
    out = [tf.name]
    for t in parse_timeframes(wanted):
        if t == tf:
            continue
        if t > tf and nests(tf, t, daily_close):
            out.append(t.name)
        elif explicit:
            raise BarsError(
                f"cannot make {t.name} bars from {tf.name} bars (only longer timeframes that "
                f"{tf.name} bars fill exactly, with daily close {daily_close})"
            )
    return out


def ingest_bar_files(
    paths: Sequence[str | Path],
    timeframe: str,
    symbol: str,
    out: str | Path,
    *,
    columns: dict[str, str] | None = None,
    fmt: Literal["auto", "parquet", "csv"] = "auto",
    tz: str | None = None,
    ts_unit: Any = None,
    ts_format: str | None = None,
    price: PriceSide | None = None,
    spread: float | None = None,
    point: float | None = None,
    timeframes: Sequence[str] = (),
    explicit_timeframes: bool = False,
    daily_close: str = "utc",
) -> BarIngestReport:
    """Read, validate and write bar files as ``symbol``'s ``timeframe`` bars plus roll-ups.

    Raises an :class:`~aio_ray.errors.AioError` naming the file (and row, column) for a file
    that cannot be read, and writes nothing then; quarantined rows are reported, not errors.
    """
    t0 = time.perf_counter()
    mode = check_daily_close(daily_close)
    tf = parse_timeframe(timeframe).name
    symbol = symbol.upper()
    if spread is not None and not (np.isfinite(spread) and spread >= 0):
        raise ConfigError(f"--spread must be a finite price difference >= 0, got {spread}")
    tfs = target_timeframes(tf, list(timeframes) or [tf], mode, explicit_timeframes)
    if not paths:
        raise ConfigError("no bar files given")
    pt = point if point is not None else (1e-3 if "JPY" in symbol else 1e-5)
    spec = Spec(price=price, spread=spread, point=pt)
    parts: list[Checked] = []
    failures: list[AioError] = []
    for p in paths:
        try:
            parts.append(
                check_rows(
                    read_bar_file(p, columns, fmt=fmt, tz=tz, ts_unit=ts_unit, ts_format=ts_format),
                    spec,
                )
            )
        except AioError as exc:
            failures.append(exc)
    if failures:
        if len(failures) == 1:
            raise failures[0]
        raise SourceError(
            f"{len(failures)} of {len(paths)} bar files", "; ".join(str(e) for e in failures)
        )
    _check_spacing(parts, tf)
    val = validate_bars(parts, tf, mode)
    bars, ticks = kept_bars(val)
    outp = Path(out)
    rep = BarIngestReport(symbol=symbol, timeframe=tf, out=str(outp))
    counts = {r: int(np.count_nonzero(val.reason == r)) for r in REASONS}
    rep.totals = {"input": int(val.reason.size), "kept": bars.num_rows, **counts}
    start = 0
    for c in parts:
        r = val.reason[start : start + len(c.raw)]
        start += len(c.raw)
        rep.files.append(
            {
                "path": c.raw.source,
                "format": c.raw.fmt.name,
                "rows": len(c.raw),
                "kept": int(np.count_nonzero(r == "")),
                "tz": c.raw.tz,
                "price": c.price,
                "spread": c.spread_note,
                "columns": c.raw.fmt.mapping.columns if c.raw.fmt.header else {},
                "quarantined": {
                    q: int(np.count_nonzero(r == q)) for q in REASONS if np.any(r == q)
                },
            }
        )
    rep.out_of_order = val.out_of_order
    ts_kept = bars.column("ts").cast(pa.int64()).to_numpy()
    rep.gaps = gap_stats(ts_kept, tf)
    if ts_kept.size:
        rep.first, rep.last = iso_utc(int(ts_kept[0])), iso_utc(int(ts_kept[-1]))
    rep.conventions = {
        "times": "UTC, bar labelled by its open time",
        "daily_close": mode,
        "ticks": "from the file" if ticks.any() else "unknown: 0",
        "prices": "quote currency",
        "spread_units": "price",
    }
    qpath = outp / "_quarantine" / f"timeframe={tf}" / f"symbol={symbol}" / store.PART_NAME
    rep.quarantine = str(qpath)
    rep.report = str(outp / f"_ingest_report_{symbol}.json")
    if bars.num_rows == 0:
        _atomic_parquet(quarantine_table(val), qpath)
        rep.seconds = time.perf_counter() - t0
        _write_report(rep)
        raise BarsError(
            f"no valid bars in {', '.join(str(p) for p in paths)}: all {val.reason.size} rows quarantined "
            f"({', '.join(f'{r} {n}' for r, n in counts.items() if n)}); see {qpath}"
        )
    out_bars = {tf: bars, **rolled_up(bars, ticks, tfs[1:], mode)}
    for name, table in out_bars.items():
        store.write_bars(outp, name, symbol, table)
        rep.rows[name] = table.num_rows
    store.remove_other_timeframes(outp, symbol, list(out_bars))
    _atomic_parquet(quarantine_table(val), qpath)
    source = {
        "kind": "bar files",
        "files": [str(Path(p).resolve()) for p in paths],
        "input_timeframe": tf,
        "price": sorted({c.price for c in parts}),
        "spread": sorted({c.spread_note for c in parts}),
    }
    store.write_manifest(
        outp,
        store.updated_manifest(
            outp,
            symbols={symbol: {"ticks": int(ticks.sum()), "rows": rep.rows}},
            daily_close=mode,
            source_ticks_dir=None,
            source=source,
        ),
    )
    rep.seconds = time.perf_counter() - t0
    _write_report(rep)
    return rep


def _check_spacing(parts: Sequence[Checked], tf: str) -> None:
    """SchemaError when a file's bars are closer together than ``tf`` (wrong --timeframe)."""
    ms = parse_timeframe(tf).ms
    for c in parts:
        d = np.diff(np.sort(c.raw.ts[c.raw.reason == ""]))
        d = d[d > 0]
        if d.size >= 2:
            med = float(np.median(d))
            if med < ms:
                raise SchemaError(
                    c.raw.source,
                    f"bars are {med / 60_000:g} min apart (median), shorter than "
                    f"--timeframe {tf}; pass the file's own timeframe",
                )


def _write_report(rep: BarIngestReport) -> None:
    path = Path(rep.report)
    path.parent.mkdir(parents=True, exist_ok=True)
    store._atomic_write_bytes(
        path, (json.dumps(rep.to_dict(), indent=2, default=str) + "\n").encode()
    )
