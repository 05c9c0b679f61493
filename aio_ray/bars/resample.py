"""Ticks to bars, as pure functions over Arrow tables (no Ray, no I/O).

The path is: ticks of one shard --(:func:`partial_bars`)--> partial bars of every timeframe
--(:func:`merge_partials`, over all shards)--> one row per (timeframe, label)
--(:func:`partials_to_bars`)--> :data:`aio_ray.schema.BAR_SCHEMA` tables.

A shard is any contiguous piece of a symbol's tick stream sorted by ``ts``: a day file, part of
one, or several. One compiled pass makes its 1-minute bars; each longer timeframe is rolled up
from those (open of the first, close of the last, max/min, sums), so a shard's bars are exact
for the ticks it saw. A bar whose ticks fall in several shards (a split day file, or a
``new_york_close`` day spanning two UTC-day files) comes out of each as a *partial* bar carrying
its first and last tick time; merging the partials gives, bit for bit, the bar a single pass
over all the ticks would give. Spread and volume sums are kept in fixed point (resolution
2**-40, see :mod:`aio_ray.bars._nb`) so that they add associatively; a ``spread_mean``
therefore differs from a floating-point mean of the same spreads by less than 1e-12.

Minutes without ticks produce no bar: nothing is forward-filled, so every bar has ``ticks >= 1``
and the ``ticks`` of any timeframe add up to the number of ticks.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from aio_ray.bars import _nb as k
from aio_ray.bars.config import BarsConfig
from aio_ray.bars.timeframes import (
    DailyClose,
    Timeframe,
    bar_labels,
    check_daily_close,
    parse_timeframe,
    parse_timeframes,
    timeframe_from_minutes,
)
from aio_ray.errors import BarsError
from aio_ray.schema import BAR_SCHEMA, TICK_SCHEMA, TS_TYPE

__all__ = [
    "PARTIAL_SCHEMA",
    "Blocks",
    "bars_from_partial_blocks",
    "bars_from_partials",
    "bars_from_ticks",
    "block_partial_bars",
    "check_conservation",
    "join_minute_blocks",
    "merge_partials",
    "minute_bars_arrays",
    "nests",
    "partial_bars",
    "partial_blocks",
    "partials_to_bars",
    "rolled_up_blocks",
    "rollup",
    "sorted_runs",
    "tick_arrays",
]

_OHLC_NAMES = tuple(
    f"{side}_{p}" for side in ("bid", "ask", "mid") for p in ("open", "high", "low", "close")
)
_FLT_NAMES = _OHLC_NAMES + ("spread_max",)
_INT_NAMES = (
    "label", "first_ts", "last_ts", "ticks",
    "spread_hi", "spread_lo", "bid_volume_hi", "bid_volume_lo", "ask_volume_hi", "ask_volume_lo",
)  # fmt: skip
assert len(_FLT_NAMES) == k.N_FLT and len(_INT_NAMES) == k.N_INT

PARTIAL_SCHEMA = pa.schema(
    [pa.field("tf_minutes", pa.int32(), nullable=False)]
    + [pa.field(name, pa.int64(), nullable=False) for name in _INT_NAMES]
    + [pa.field(name, pa.float64(), nullable=False) for name in _FLT_NAMES]
)
"""Partial bars: ``tf_minutes`` names the timeframe (1440 = 1d); ``label``, ``first_ts``,
``last_ts`` in epoch ms (UTC); spread and volume sums
as fixed-point ``hi``/``lo`` pairs (value = (hi * 2**32 + lo) * 2**-40); prices in quote currency."""

_ERRORS = {
    k.ERR_UNSORTED: "ticks are not sorted by ts",
    k.ERR_BAD_PRICE: "bid or ask is not a finite number",
    k.ERR_BAD_VALUE: f"spread or volume is not finite or not below {k.VALUE_LIMIT:.0f} in size",
    k.ERR_KEYS: "bar labels are not in order",
}


def _raise(status: int, index: int, source: str, ts: np.ndarray | None = None) -> None:
    if status == k.OK:
        return
    where = f"row {index}"
    if ts is not None and 0 <= index < ts.size:
        where += f" (ts {np.datetime64(int(ts[index]), 'ms')}Z"
        if index > 0:
            where += f", previous {np.datetime64(int(ts[index - 1]), 'ms')}Z"
        where += ")"
    raise BarsError(f"{source}: {_ERRORS.get(status, f'kernel status {status}')} at {where}")


def tick_arrays(
    ticks: pa.Table, source: str = "<ticks>"
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The tick columns as numpy arrays ``(ts [epoch ms int64], bid, ask, bid_volume, ask_volume)``.

    ``ticks`` must have the :data:`~aio_ray.schema.TICK_SCHEMA` columns with their types
    (extra columns are ignored). Raises BarsError naming ``source`` and the column otherwise.
    """
    out = []
    for field in TICK_SCHEMA:
        if field.name not in ticks.column_names:
            raise BarsError(
                f"{source}: missing tick column {field.name!r}; have {ticks.column_names}"
            )
        col = ticks.column(field.name)
        if col.type != field.type:
            raise BarsError(
                f"{source}: tick column {field.name!r} is {col.type}, expected {field.type}"
            )
        if col.null_count:
            raise BarsError(
                f"{source}: tick column {field.name!r} has {col.null_count} empty value(s)"
            )
        arr = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
        if field.name == "ts":
            arr = arr.cast(pa.int64())
        out.append(arr.to_numpy(zero_copy_only=False))
    return out[0], out[1], out[2], out[3], out[4]


def minute_bars_arrays(
    ts: np.ndarray,
    bid: np.ndarray,
    ask: np.ndarray,
    bid_volume: np.ndarray,
    ask_volume: np.ndarray,
    source: str = "<ticks>",
) -> tuple[np.ndarray, np.ndarray]:
    """1-minute bars of sorted ticks as kernel blocks ``(ints, flts)`` (see :mod:`.kernel`).

    ``ts`` is epoch ms (int64), prices float64, volumes float32 or float64.
    Raises BarsError (naming ``source``, row and time) for unsorted or non-finite ticks.
    """
    ints, flts, status, index = k.minute_bars(
        np.ascontiguousarray(ts, dtype=np.int64),
        np.ascontiguousarray(bid, dtype=np.float64),
        np.ascontiguousarray(ask, dtype=np.float64),
        np.ascontiguousarray(bid_volume),
        np.ascontiguousarray(ask_volume),
    )
    _raise(status, index, source, ts)
    return ints, flts


def rollup(
    ints: np.ndarray, flts: np.ndarray, tf: Timeframe, daily_close: DailyClose = "utc"
) -> tuple[np.ndarray, np.ndarray]:
    """Roll bars (in stream order, e.g. 1m bars) up to ``tf`` by relabelling and combining runs."""
    if tf.ms == k._MINUTE:
        return ints, flts
    keys = bar_labels(ints[k.I_LABEL], tf, daily_close)
    out_i, out_f, status, index = k.combine_runs(keys, ints, flts)
    _raise(status, index, f"rollup to {tf.name}")
    return out_i, out_f


Blocks = tuple[np.ndarray, np.ndarray]


def _blocks_to_table(tf: Timeframe, ints: np.ndarray, flts: np.ndarray) -> pa.Table:
    n = ints.shape[1]
    cols: list[pa.Array] = [pa.array(np.full(n, tf.minutes, dtype=np.int32))]
    cols += [pa.array(np.ascontiguousarray(ints[i])) for i in range(k.N_INT)]
    cols += [pa.array(np.ascontiguousarray(flts[i])) for i in range(k.N_FLT)]
    return pa.Table.from_arrays(cols, schema=PARTIAL_SCHEMA)


def _table_to_blocks(table: pa.Table) -> dict[Timeframe, Blocks]:
    """Partial-bar table -> kernel blocks per timeframe (rows keep their order)."""
    n = table.num_rows
    ints = np.empty((k.N_INT, n), dtype=np.int64)
    flts = np.empty((k.N_FLT, n), dtype=np.float64)
    for i, name in enumerate(_INT_NAMES):
        ints[i] = table.column(name).to_numpy()
    for i, name in enumerate(_FLT_NAMES):
        flts[i] = table.column(name).to_numpy()
    minutes = table.column("tf_minutes").to_numpy()
    out: dict[Timeframe, Blocks] = {}
    for m in np.unique(minutes):
        tf = timeframe_from_minutes(int(m))
        if m == minutes[0] and m == minutes[-1] and np.all(minutes == m):
            out[tf] = (ints, flts)
        else:
            sel = minutes == m
            out[tf] = (ints[:, sel], flts[:, sel])
    return out


def _partial_blocks(
    ticks: pa.Table, tfs: tuple[Timeframe, ...], daily_close: DailyClose, source: str
) -> dict[Timeframe, Blocks]:
    ints, flts = minute_bars_arrays(*tick_arrays(ticks, source), source=source)
    return rolled_up_blocks(ints, flts, tfs, daily_close)


def join_minute_blocks(pieces: Sequence[Blocks], source: str = "<pieces>") -> Blocks:
    """1-minute kernel blocks of consecutive pieces of one tick stream (in stream order) ->
    the blocks of all of them: a minute cut by a piece boundary becomes one bar (exact)."""
    if len(pieces) == 1:
        return pieces[0]
    if not pieces:
        return np.empty((k.N_INT, 0), np.int64), np.empty((k.N_FLT, 0), np.float64)
    ints = np.concatenate([p[0] for p in pieces], axis=1)
    flts = np.concatenate([p[1] for p in pieces], axis=1)
    labels = ints[k.I_LABEL]
    if labels.size > 1 and not bool(np.all(labels[1:] > labels[:-1])):
        out_i, out_f, status, index = k.combine_runs(np.ascontiguousarray(labels), ints, flts)
        if status == k.ERR_KEYS:
            raise BarsError(f"{source}: the pieces are not in stream order (minute bar {index})")
        _raise(status, index, source)
        return out_i, out_f
    return ints, flts


def rolled_up_blocks(
    ints: np.ndarray, flts: np.ndarray, tfs: tuple[Timeframe, ...], daily_close: DailyClose
) -> dict[Timeframe, Blocks]:
    """Kernel blocks of every timeframe in ``tfs`` from 1-minute blocks in stream order."""
    # Each timeframe is rolled up from the longest one already built that nests in it
    # (5m -> 15m -> 1h ...), which is exact and touches fewer rows than starting from 1m.
    built: dict[Timeframe, Blocks] = {_ONE_MINUTE: (ints, flts)}
    for tf in tfs:
        if tf not in built:
            inner = max(t for t in built if nests(t, tf, daily_close))
            built[tf] = rollup(*built[inner], tf, daily_close)
    return {tf: built[tf] for tf in tfs}


def partial_bars(
    ticks: pa.Table,
    timeframes: Iterable[str | Timeframe],
    daily_close: DailyClose = "utc",
    source: str = "<ticks>",
) -> pa.Table:
    """Partial bars (:data:`PARTIAL_SCHEMA`) of one shard of sorted ticks, every timeframe.

    Parameters
    ----------
    ticks
        A contiguous piece of one symbol's tick stream (:data:`~aio_ray.schema.TICK_SCHEMA`),
        sorted by ``ts`` (non-decreasing).
    timeframes
        Names such as ``"1m"``, ``"4h"``, ``"1d"``.
    daily_close
        ``"utc"`` (days cut at 00:00 UTC) or ``"new_york_close"`` (17:00 New York).
    source
        Named in errors (file, shard).

    Raises
    ------
    BarsError
        Unknown timeframe, wrong column types, unsorted or non-finite ticks.
    """
    tfs = parse_timeframes(timeframes)
    check_daily_close(daily_close)
    blocks = _partial_blocks(ticks, tfs, daily_close, source)
    return pa.concat_tables([_blocks_to_table(tf, *b) for tf, b in blocks.items()])


_ONE_MINUTE = parse_timeframe("1m")


def nests(inner: Timeframe, outer: Timeframe, daily_close: DailyClose = "utc") -> bool:
    """True when every ``inner`` bar lies inside one ``outer`` bar (so ``outer`` can be rolled
    up from ``inner``). Epoch-aligned bars nest when the lengths divide; a ``new_york_close``
    day (cut at a whole UTC hour) contains whole bars of any length dividing one hour."""
    if outer.is_daily and daily_close == "new_york_close":
        return 3_600_000 % inner.ms == 0
    return outer.ms % inner.ms == 0


def sorted_runs(ts: np.ndarray) -> list[tuple[int, int]]:
    """``[start, stop)`` row ranges of the maximal non-decreasing runs of ``ts``."""
    cuts = np.flatnonzero(ts[1:] < ts[:-1]) + 1
    edges = [0, *cuts.tolist(), int(ts.size)]
    return [(a, b) for a, b in itertools.pairwise(edges) if b > a]


def block_partial_bars(
    ticks: pa.Table,
    timeframes: Iterable[str | Timeframe],
    daily_close: DailyClose = "utc",
    source: str = "<ticks>",
    *,
    strict_order: bool = True,
) -> pa.Table:
    """:func:`partial_bars` of a block that may hold several pieces of the tick stream.

    With ``strict_order`` the block must be sorted (a contiguous piece of the stream; an
    unsorted tick is an error naming its row). Without, the block is cut wherever ``ts``
    decreases (a reader that packs file chunks out of order) and each sorted run gives its own
    partial bars, in block order.
    """
    if strict_order or ticks.num_rows < 2:
        return partial_bars(ticks, timeframes, daily_close, source)
    ts = ticks.column("ts").cast(pa.int64()).to_numpy()
    runs = sorted_runs(ts)
    if len(runs) == 1:
        return partial_bars(ticks, timeframes, daily_close, source)
    return pa.concat_tables(
        [
            partial_bars(
                ticks.slice(a, b - a), timeframes, daily_close, f"{source} rows {a}..{b - 1}"
            )
            for a, b in runs
        ]
    )


def _in_merge_order(ints: np.ndarray) -> bool:
    """True when rows are already sorted by (label, first tick time): partials of ordered,
    contiguous shards, which then only meet at shard boundaries and need no sort."""
    label = ints[k.I_LABEL]
    if label.size < 2:
        return True
    dl = label[1:] - label[:-1]
    if bool(np.any(dl < 0)):
        return False
    same = dl == 0
    return not bool(np.any(ints[k.I_FIRST, 1:][same] < ints[k.I_FIRST, :-1][same]))


def _merge_blocks(tf: Timeframe, ints: np.ndarray, flts: np.ndarray) -> Blocks:
    if not _in_merge_order(ints):  # the stable sort would keep the order as it is
        order = np.lexsort((np.arange(ints.shape[1]), ints[k.I_FIRST], ints[k.I_LABEL]))
        ints = ints[:, order]
        flts = flts[:, order]
    m_i, m_f, status, index = k.combine_runs(np.ascontiguousarray(ints[k.I_LABEL]), ints, flts)
    _raise(status, index, f"merge of {tf.name} partial bars")
    return m_i, m_f


def _concat(parts: Sequence[pa.Table]) -> pa.Table:
    tables = [p.select(PARTIAL_SCHEMA.names).cast(PARTIAL_SCHEMA) for p in parts]
    return pa.concat_tables(tables) if tables else PARTIAL_SCHEMA.empty_table()


def merge_partials(parts: Sequence[pa.Table]) -> pa.Table:
    """Merge partial bars of several shards into one row per (timeframe, label).

    ``parts`` come from :func:`partial_bars` over pieces of one symbol's tick stream. Of the
    partials sharing a label, the open comes from the one with the earliest first tick, the
    close from the one with the latest last tick; highs/lows are max/min, counts and sums add.
    When two pieces meet inside a run of ticks with the same millisecond, their order in
    ``parts`` (then rows) decides, so give ``parts`` in stream order: the result is then, bit for
    bit, what :func:`partial_bars` gives on all the ticks at once. Extra columns (e.g.
    ``node_id``) are dropped.
    """
    blocks = _table_to_blocks(_concat(parts))
    merged = [_blocks_to_table(tf, *_merge_blocks(tf, *b)) for tf, b in sorted(blocks.items())]
    return pa.concat_tables(merged) if merged else PARTIAL_SCHEMA.empty_table()


def _finish(ints: np.ndarray, flts: np.ndarray) -> pa.Table:
    """Merged kernel blocks -> a BAR_SCHEMA table."""
    label = ints[k.I_LABEL]
    ticks = ints[k.I_TICKS]
    cols: list[pa.Array] = [pa.array(np.ascontiguousarray(label)).cast(TS_TYPE)]
    cols += [pa.array(np.ascontiguousarray(flts[i])) for i in range(len(_OHLC_NAMES))]
    spread_sum = k.fixed_to_float(ints[k.I_SPREAD_HI], ints[k.I_SPREAD_LO])
    cols.append(pa.array(spread_sum / ticks))
    cols.append(pa.array(np.ascontiguousarray(flts[k.F_SPREAD_MAX])))
    cols.append(pa.array(np.ascontiguousarray(ticks)))
    cols.append(pa.array(k.fixed_to_float(ints[k.I_BIDV_HI], ints[k.I_BIDV_LO])))
    cols.append(pa.array(k.fixed_to_float(ints[k.I_ASKV_HI], ints[k.I_ASKV_LO])))
    return pa.Table.from_arrays(cols, schema=BAR_SCHEMA)


def partials_to_bars(partials: pa.Table) -> dict[str, pa.Table]:
    """Finished bars per timeframe (:data:`~aio_ray.schema.BAR_SCHEMA`, sorted by ``ts``) from
    merged partials (one row per timeframe and label, as :func:`merge_partials` gives).

    ``spread_mean`` is the exact fixed-point spread sum over the bar's ticks divided by ``ticks``.
    """
    result: dict[str, pa.Table] = {}
    for tf, (ints, flts) in sorted(_table_to_blocks(partials).items()):
        if ints.shape[1] > 1 and np.any(np.diff(ints[k.I_LABEL]) <= 0):
            raise BarsError(
                f"{tf.name} partial bars are not merged: labels repeat or are out of order"
            )
        result[tf.name] = _finish(ints, flts)
    return result


def bars_from_partials(parts: Sequence[pa.Table]) -> dict[str, pa.Table]:
    """:func:`merge_partials` then :func:`partials_to_bars`, without the table in between."""
    blocks = _table_to_blocks(_concat(parts))
    return {tf.name: _finish(*_merge_blocks(tf, *b)) for tf, b in sorted(blocks.items())}


def bars_from_partial_blocks(
    parts: Sequence[dict[int, Blocks]], timeframes: Iterable[str | Timeframe]
) -> dict[str, pa.Table]:
    """Finished bars per timeframe from partial kernel blocks keyed by ``tf_minutes`` (as
    :func:`partial_blocks` gives), in stream order of their shards: like
    :func:`bars_from_partials` without Arrow tables in between. Timeframes without partials
    give empty tables."""
    result: dict[str, pa.Table] = {}
    for tf in sorted(parse_timeframes(timeframes)):
        got = [p[tf.minutes] for p in parts if tf.minutes in p and p[tf.minutes][0].shape[1]]
        if not got:
            result[tf.name] = BAR_SCHEMA.empty_table()
            continue
        ints = np.concatenate([g[0] for g in got], axis=1) if len(got) > 1 else got[0][0]
        flts = np.concatenate([g[1] for g in got], axis=1) if len(got) > 1 else got[0][1]
        result[tf.name] = _finish(*_merge_blocks(tf, ints, flts))
    return result


def partial_blocks(
    pieces: Iterable[pa.Table],
    timeframes: Iterable[str | Timeframe],
    daily_close: DailyClose = "utc",
    sources: Iterable[str] | None = None,
) -> dict[int, Blocks]:
    """Partial bars of consecutive pieces of one symbol's sorted tick stream (e.g. a run of day
    files, in stream order) as kernel blocks keyed by ``tf_minutes``.

    Each piece goes through the compiled minute pass as it is (no concatenation of ticks);
    the minute bars of the pieces are joined (a minute cut by a boundary becomes one bar)
    and rolled up once. Errors name the piece (``sources``) and its row.
    """
    tfs = parse_timeframes(timeframes)
    check_daily_close(daily_close)
    names = iter(sources) if sources is not None else itertools.repeat("<ticks>")
    minutes: list[Blocks] = []
    last = "<ticks>"
    for piece in pieces:
        last = next(names)
        if piece.num_rows:
            minutes.append(minute_bars_arrays(*tick_arrays(piece, last), source=last))
    ints, flts = join_minute_blocks(minutes, last)
    return {tf.minutes: b for tf, b in rolled_up_blocks(ints, flts, tfs, daily_close).items()}


def bars_from_ticks(
    ticks: pa.Table,
    timeframes: Iterable[str | Timeframe] = BarsConfig().timeframes,
    daily_close: DailyClose = "utc",
    source: str = "<ticks>",
) -> dict[str, pa.Table]:
    """Bars of every timeframe from one symbol's ticks, in process (tests, small data).

    Parameters
    ----------
    ticks
        :data:`~aio_ray.schema.TICK_SCHEMA` table sorted by ``ts`` (non-decreasing).
    timeframes
        Names such as ``"1m"``, ``"15m"``, ``"4h"``, ``"1d"`` (default: ``BarsConfig``'s).
    daily_close
        ``"utc"`` or ``"new_york_close"`` (17:00 America/New_York; label = open time in UTC).

    Returns
    -------
    dict
        Canonical timeframe name -> :data:`~aio_ray.schema.BAR_SCHEMA` table sorted by ``ts``;
        only minutes with ticks have bars. Empty ``ticks`` give empty tables.
    """
    tfs = parse_timeframes(timeframes)
    check_daily_close(daily_close)
    blocks = _partial_blocks(ticks, tfs, daily_close, source)
    return {tf.name: _finish(*b) for tf, b in blocks.items()}


def check_conservation(bars: dict[str, pa.Table], n_ticks: int, where: str) -> None:
    """Raise BarsError unless every timeframe's ``ticks`` add up to ``n_ticks``."""
    for tf, table in bars.items():
        total = int(pc.sum(table.column("ticks")).as_py() or 0)
        if total != n_ticks:
            raise BarsError(
                f"{where}: {tf} bars count {total} ticks but {n_ticks} ticks were read (conservation)"
            )
