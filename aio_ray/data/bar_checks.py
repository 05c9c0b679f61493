"""Bar-file rows checked: each row kept or given a quarantine reason, then the kept bars.

:func:`check_rows` applies the per-row rules to one file read by
:func:`aio_ray.data.bar_files.read_bar_file`, :func:`validate_bars` the rules across files
(grid, duplicates, conflicts); :func:`kept_bars` and :func:`quarantine_table` are what
:mod:`aio_ray.data.bar_ingest` writes. Times are UTC epoch milliseconds (bars labelled by
open time), prices in quote currency.

Rules, in order (a row gets the first reason that applies; every input row is either kept or
quarantined, and the counts per reason add up):

``empty_row``       no value in any mapped column (a blank line).
``bad_time``        the time is empty, not a time, or does not exist in ``--tz`` (DST gap).
``missing_value``   an empty price (or spread/volume/ticks) cell.
``not_a_number``    text in a number column (the detail names column and value).
``bad_price``       a price is NaN, infinite, zero or negative.
``bad_value``       spread, volume or ticks negative or not finite (ticks not a whole number),
                    or a bid that the spread would push to zero or below.
``inverted``        high < max(open, close) or low > min(open, close) (on bid and ask sides).
``crossed``         bid above ask in any of open, high, low, close.
``misaligned``      the time is not a bar open of the timeframe (``ts`` not a multiple of its
                    length since the epoch; daily bars: 00:00 UTC or 17:00 New York).
``duplicate``       same time and values as an earlier row (the first is kept).
``conflict``        same time as an earlier row, other values (the first in file order, files
                    in the order given, is kept).

Rows out of time order are not errors for bars (each carries its own time): they are counted
(``out_of_order``) and the bars sorted. Gaps (more than one bar length between kept bars) are
counted, with the missing bars, the longest gap and how many span a weekend.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from aio_ray.bars.timeframes import DailyClose, bar_labels, parse_timeframe
from aio_ray.data.bar_files import BIDASK_FIELDS, PRICE_FIELDS, PriceSide, RawBars
from aio_ray.errors import ConfigError, SchemaError
from aio_ray.schema import BAR_SCHEMA, TS_TYPE

__all__ = [
    "MISALIGNED_HINT",
    "QUARANTINE_BARS_SCHEMA",
    "REASONS",
    "Checked",
    "Spec",
    "Validated",
    "check_rows",
    "iso_utc",
    "kept_bars",
    "quarantine_table",
    "validate_bars",
]

REASONS: tuple[str, ...] = (
    "empty_row", "bad_time", "missing_value", "not_a_number", "bad_price", "bad_value",
    "inverted", "crossed", "misaligned", "duplicate", "conflict",
)  # fmt: skip
"""Quarantine reasons, in the order the rules apply."""

_Q_NUMBERS = PRICE_FIELDS + BIDASK_FIELDS + ("spread", "volume", "ticks")
QUARANTINE_BARS_SCHEMA = pa.schema(
    [pa.field("source", pa.string()), pa.field("row", pa.int64()), pa.field("ts", TS_TYPE)]
    + [pa.field(f, pa.float64()) for f in _Q_NUMBERS]
    + [
        pa.field("raw", pa.string()),
        pa.field("reason", pa.string()),
        pa.field("detail", pa.string()),
    ]
)
"""Quarantined rows: file, row (CSV line, header = 1; Parquet row, 1-based), the time (UTC,
null if unreadable) and numbers as read, the mapped cells as text, reason and detail."""

MISALIGNED_HINT = {
    True: "daily bars must open at 00:00 UTC (--daily-close utc) or 17:00 New York (new_york_close)",
    False: "check --timeframe and --tz",
}


@dataclass
class Spec:
    """How single-price rows become bid/ask: the side quoted and the fixed spread (price units)."""

    price: PriceSide | None = None
    spread: float | None = None
    point: float = 1e-5


@dataclass
class Checked:
    """One file after the per-row rules: every row with its reason ("" = kept so far)."""

    raw: RawBars
    bid: dict[str, np.ndarray]
    ask: dict[str, np.ndarray]
    spread_mean: np.ndarray
    spread_max: np.ndarray
    ticks: np.ndarray
    volume: np.ndarray
    price: str
    spread_note: str


def _flag(
    reason: np.ndarray, detail: np.ndarray, mask: np.ndarray, why: str, text: str | np.ndarray
) -> None:
    sel = mask & (reason == "")
    reason[sel] = why
    detail[sel] = text[sel] if isinstance(text, np.ndarray) else text


def _col(raw: RawBars, f: str) -> str:
    return raw.fmt.mapping.columns.get(f, f)


def check_rows(raw: RawBars, spec: Spec) -> Checked:
    """Apply the row rules (up to ``crossed``) and derive bid/ask/spread of every row."""
    n = len(raw)
    v = raw.values
    reason, detail = raw.reason, raw.detail
    ok = reason == ""
    bidask = "bid_open" in v
    prices = BIDASK_FIELDS if bidask else PRICE_FIELDS
    with np.errstate(invalid="ignore"):
        for f in prices:
            bad = ok & ~(np.isfinite(v[f]) & (v[f] > 0))
            _flag(
                reason,
                detail,
                bad,
                "bad_price",
                f"column {_col(raw, f)!r} ({f}) is not a positive finite price",
            )
        for f in ("volume", "ticks", "spread", "spread_points"):
            if f in v:
                bad = ok & ~(np.isfinite(v[f]) & (v[f] >= 0))
                if f == "ticks":
                    bad |= ok & np.isfinite(v[f]) & (v[f] != np.floor(v[f]))
                _flag(
                    reason,
                    detail,
                    bad,
                    "bad_value",
                    f"column {_col(raw, f)!r} ({f}) is negative, not finite or not whole",
                )
    zeros = np.zeros(n)
    volume = np.nan_to_num(v.get("volume", zeros))
    ticks = np.nan_to_num(v.get("ticks", zeros)).astype(np.int64)
    if bidask:
        if spec.spread is not None:
            raise ConfigError(
                f"{raw.source}: --spread applies to single-price bars; this file has bid and ask columns"
            )
        bid = {p: v[f"bid_{p}"] for p in PRICE_FIELDS}
        ask = {p: v[f"ask_{p}"] for p in PRICE_FIELDS}
        s_open, s_close = ask["open"] - bid["open"], ask["close"] - bid["close"]
        spread_mean, spread_max = (s_open + s_close) / 2, np.maximum(s_open, s_close)
        price, note = "bid/ask", "from the bid/ask columns (mean and max of open and close spreads)"
    else:
        price = spec.price or raw.fmt.price
        if spec.spread is not None:
            s = np.full(n, float(spec.spread))
            note = f"fixed --spread {spec.spread} (price units)"
        elif "spread" in v:
            s = v["spread"]
            note = f"column {_col(raw, 'spread')!r} (price units)"
        elif "spread_points" in v:
            s = v["spread_points"] * spec.point
            note = f"column {_col(raw, 'spread')!r} in points x {spec.point}"
        else:
            raise ConfigError(
                f"{raw.source}: single-price bars need a spread, or the backtest's bid/ask fills would trade "
                f"for free: pass --spread PRICE (e.g. --spread 0.0001 = 1 pip on EURUSD; --spread 0 for "
                f"bid = ask = {price}) or map a spread column (--map spread=COLUMN, price units)"
            )
        s = np.nan_to_num(s)
        lo, hi = {"bid": (0.0, 1.0), "ask": (-1.0, 0.0), "mid": (-0.5, 0.5)}[price]
        bid = {p: v[p] + lo * s for p in PRICE_FIELDS}
        ask = {p: v[p] + hi * s for p in PRICE_FIELDS}
        spread_mean = spread_max = s
        with np.errstate(invalid="ignore"):
            _flag(
                reason,
                detail,
                (reason == "") & ~(bid["low"] > 0),
                "bad_value",
                "the spread pushes the bid low to zero or below",
            )
    with np.errstate(invalid="ignore"):
        for side, q in (("bid", bid), ("ask", ask)) if bidask else (("", bid),):
            name = f"{side}_" if side else ""
            inv = (q["high"] < np.maximum(q["open"], q["close"])) | (
                q["low"] > np.minimum(q["open"], q["close"])
            )
            _flag(
                reason,
                detail,
                inv,
                "inverted",
                f"{name}high is below {name}open/close or {name}low above them",
            )
        if bidask:
            crossed = np.zeros(n, bool)
            for p in PRICE_FIELDS:
                crossed |= bid[p] > ask[p]
            _flag(reason, detail, crossed, "crossed", "bid above ask")
    return Checked(raw, bid, ask, spread_mean, spread_max, ticks, volume, price, note)


@dataclass
class Validated:
    """All files' rows in input order; ``reason`` "" = kept; ``order`` sorts the kept rows."""

    parts: list[Checked]
    ts: np.ndarray
    reason: np.ndarray
    detail: np.ndarray
    out_of_order: int


def validate_bars(parts: Sequence[Checked], tf_name: str, daily_close: DailyClose) -> Validated:
    """The cross-row rules (misaligned, duplicate, conflict) over all files, in input order."""
    tf = parse_timeframe(tf_name)
    ts = np.concatenate([c.raw.ts for c in parts]) if parts else np.zeros(0, np.int64)
    reason = np.concatenate([c.raw.reason for c in parts]) if parts else np.zeros(0, object)
    detail = np.concatenate([c.raw.detail for c in parts]) if parts else np.zeros(0, object)
    alive = reason == ""
    if alive.any():
        mis = alive & (bar_labels(ts, tf, daily_close) != ts)
        if mis[alive].all():
            first = int(np.flatnonzero(alive)[0])
            part, row = _locate(parts, first)
            raise SchemaError(
                part.raw.source,
                f"no bar opens on the {tf.name} grid (row {row}: {iso_utc(int(ts[first]))}); "
                + MISALIGNED_HINT[tf.is_daily],
            )
        _flag(reason, detail, mis, "misaligned", f"not a {tf.name} bar open time (UTC)")
    alive = np.flatnonzero(reason == "")
    prev_max = np.maximum.accumulate(ts[alive]) if alive.size else ts[alive]
    out_of_order = int(np.count_nonzero(ts[alive][1:] < prev_max[:-1])) if alive.size > 1 else 0
    if alive.size:
        keys = _row_keys(parts)[alive]
        order = np.argsort(ts[alive], kind="stable")
        t_sorted = ts[alive][order]
        same = np.zeros(alive.size, bool)
        same[1:] = t_sorted[1:] == t_sorted[:-1]
        first_of = np.maximum.accumulate(np.where(~same, np.arange(alive.size), 0))
        dup_idx = alive[order[same]]
        first_idx = order[first_of[same]]
        identical = np.all(keys[order[same]] == keys[first_idx], axis=1)
        reason[dup_idx[identical]] = "duplicate"
        detail[dup_idx[identical]] = "same time and values as an earlier row"
        reason[dup_idx[~identical]] = "conflict"
        firsts = alive[first_idx[~identical]]
        detail[dup_idx[~identical]] = np.array(
            [f"same time as {_name(parts, int(i))}, other values" for i in firsts], dtype=object
        )
    return Validated(list(parts), ts, reason, detail, out_of_order)


def _row_keys(parts: Sequence[Checked]) -> np.ndarray:
    cols = []
    for c in parts:
        mat = np.stack(
            [c.bid[p] for p in PRICE_FIELDS]
            + [c.ask[p] for p in PRICE_FIELDS]
            + [c.spread_mean, c.ticks.astype(np.float64), c.volume],
            axis=1,
        )
        cols.append(mat)
    return np.concatenate(cols)


def _locate(parts: Sequence[Checked], i: int) -> tuple[Checked, int]:
    for c in parts:
        if i < len(c.raw):
            return c, int(c.raw.row[i])
        i -= len(c.raw)
    raise IndexError(i)  # pragma: no cover


def _name(parts: Sequence[Checked], i: int) -> str:
    c, row = _locate(parts, i)
    return f"{Path(c.raw.source).name} row {row}"


def iso_utc(ms: int) -> str:
    """UTC epoch milliseconds as ISO-8601 with ``Z``."""
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).isoformat().replace("+00:00", "Z")


# ------------------------------------------------------------------------------ bars


def _cat(parts: Sequence[Checked], get: Any) -> np.ndarray:
    return np.concatenate([np.asarray(get(c), dtype=np.float64) for c in parts])


def kept_bars(val: Validated) -> tuple[pa.Table, np.ndarray]:
    """BAR_SCHEMA table of the kept rows, sorted by ts, and their real tick counts."""
    keep = np.flatnonzero(val.reason == "")
    order = keep[np.argsort(val.ts[keep], kind="stable")]
    p = val.parts
    cols: dict[str, np.ndarray] = {}
    for side, get in (("bid", lambda c, q: c.bid[q]), ("ask", lambda c, q: c.ask[q])):
        for q in PRICE_FIELDS:
            cols[f"{side}_{q}"] = _cat(p, lambda c, q=q, get=get: get(c, q))[order]
    for q in PRICE_FIELDS:
        cols[f"mid_{q}"] = (cols[f"bid_{q}"] + cols[f"ask_{q}"]) * 0.5
    ticks = np.concatenate([c.ticks for c in p])[order]
    vol = _cat(p, lambda c: c.volume)[order]
    arrays = [pa.array(val.ts[order]).cast(TS_TYPE)]
    arrays += [pa.array(cols[n]) for n in BAR_SCHEMA.names[1:13]]
    arrays += [
        pa.array(_cat(p, lambda c: c.spread_mean)[order]),
        pa.array(_cat(p, lambda c: c.spread_max)[order]),
        pa.array(ticks),
        pa.array(vol / 2),
        pa.array(vol / 2),
    ]
    return pa.Table.from_arrays(arrays, schema=BAR_SCHEMA), ticks


def quarantine_table(val: Validated) -> pa.Table:
    """QUARANTINE_BARS_SCHEMA table of the rows that got a reason, in input order."""
    bad = np.flatnonzero(val.reason != "")
    if not bad.size:
        return QUARANTINE_BARS_SCHEMA.empty_table()
    p = val.parts
    src = np.concatenate([np.full(len(c.raw), c.raw.source, dtype=object) for c in p])
    rows = np.concatenate([c.raw.row for c in p])
    raw: list[str] = []
    start = 0
    for c in p:
        mine = bad[(bad >= start) & (bad < start + len(c.raw))] - start
        raw += c.raw.raw(mine)
        start += len(c.raw)
    time_bad = np.isin(val.reason, ("bad_time", "empty_row"))
    cols: dict[str, Any] = {
        "source": pa.array(src[bad].tolist(), pa.string()),
        "row": pa.array(rows[bad]),
        "ts": pa.array(val.ts[bad], mask=time_bad[bad]).cast(TS_TYPE),
    }
    for f in _Q_NUMBERS:
        got = [
            c.raw.values.get(f, c.raw.values.get("spread_points") if f == "spread" else None)
            for c in p
        ]
        vals = np.concatenate(
            [np.full(len(c.raw), np.nan) if g is None else g for c, g in zip(p, got, strict=True)]
        )[bad]
        cols[f] = pa.array(vals, mask=np.isnan(vals))
    cols["raw"] = pa.array(raw, pa.string())
    cols["reason"] = pa.array(val.reason[bad].tolist(), pa.string())
    cols["detail"] = pa.array(val.detail[bad].tolist(), pa.string())
    return pa.table(cols, schema=QUARANTINE_BARS_SCHEMA)
