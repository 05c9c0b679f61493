"""The canonical table schemas, declared once and checked at the boundaries.

Conventions: timestamps are UTC with millisecond resolution in a column named ``ts``;
prices are float64 in quote currency; volumes are float32 (Dukascopy: millions of units).
A bar is labelled by its open time.
"""

from __future__ import annotations

import pyarrow as pa

from aio_ray.errors import SchemaError

__all__ = [
    "BAR_COLUMNS",
    "BAR_SCHEMA",
    "QUARANTINE_SCHEMA",
    "SUMMARY_METRICS",
    "TICK_COLUMNS",
    "TICK_SCHEMA",
    "TS_TYPE",
    "conform_ticks",
    "empty_ticks",
]

TS_TYPE = pa.timestamp("ms", tz="UTC")

TICK_SCHEMA = pa.schema(
    [
        pa.field("ts", TS_TYPE, nullable=False),
        pa.field("bid", pa.float64(), nullable=False),
        pa.field("ask", pa.float64(), nullable=False),
        pa.field("bid_volume", pa.float32(), nullable=False),
        pa.field("ask_volume", pa.float32(), nullable=False),
    ]
)
"""Ticks from every source: Dukascopy, files, synthetic."""

QUARANTINE_SCHEMA = TICK_SCHEMA.append(pa.field("reason", pa.string(), nullable=False))
"""Quarantined ticks: the tick as read plus the first rule it broke."""

_PRICE_SIDES = ("bid", "ask", "mid")
_OHLC = ("open", "high", "low", "close")

BAR_SCHEMA = pa.schema(
    [pa.field("ts", TS_TYPE, nullable=False)]
    + [
        pa.field(f"{side}_{p}", pa.float64(), nullable=False)
        for side in _PRICE_SIDES
        for p in _OHLC
    ]
    + [
        pa.field("spread_mean", pa.float64(), nullable=False),
        pa.field("spread_max", pa.float64(), nullable=False),
        pa.field("ticks", pa.int64(), nullable=False),
        pa.field("bid_volume", pa.float64(), nullable=False),
        pa.field("ask_volume", pa.float64(), nullable=False),
    ]
)
"""OHLC bars of one timeframe. ``ts`` is the bar's open time (UTC); spread = ask - bid,
in quote currency; ``ticks`` counts the kept ticks in the bar; volumes are sums."""

TICK_COLUMNS = tuple(TICK_SCHEMA.names)
BAR_COLUMNS = tuple(BAR_SCHEMA.names)


def empty_ticks() -> pa.Table:
    """A tick table with no rows and the canonical schema."""
    return TICK_SCHEMA.empty_table()


def conform_ticks(table: pa.Table, source: str) -> pa.Table:
    """Cast ``table`` to :data:`TICK_SCHEMA` (column order and types), or raise SchemaError.

    Accepts integer epoch milliseconds or any timestamp type for ``ts`` (naive timestamps
    are taken as UTC); prices and volumes may be any numeric type, and an empty one becomes
    NaN so that validation quarantines the tick instead of the file failing. An empty ``ts``
    cannot be placed in a day partition and fails the file.
    """
    missing = [c for c in TICK_COLUMNS if c not in table.column_names]
    if missing:
        raise SchemaError(source, f"missing column(s) {missing}; have {table.column_names}")
    cols = []
    for field in TICK_SCHEMA:
        col = table.column(field.name)
        try:
            if field.name == "ts":
                if pa.types.is_integer(col.type):
                    col = col.cast(pa.int64()).cast(TS_TYPE)
                elif pa.types.is_timestamp(col.type):
                    if col.type.tz is None:
                        col = col.cast(pa.timestamp(col.type.unit)).cast(pa.timestamp("ms"))
                        col = col.cast(pa.int64()).cast(TS_TYPE)
                    else:
                        col = col.cast(pa.timestamp("ms", tz="UTC"))
                else:
                    raise TypeError(f"type {col.type}")
            elif pa.types.is_integer(col.type) or pa.types.is_floating(col.type):
                # An empty price or volume becomes NaN, which validation quarantines.
                col = col.cast(field.type).fill_null(float("nan"))
            elif pa.types.is_null(col.type):
                col = pa.nulls(len(col), field.type).fill_null(float("nan"))
            else:
                raise TypeError(f"type {col.type}")
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, TypeError) as exc:
            raise SchemaError(
                source, f"column {field.name!r} cannot be read as {field.type}: {exc}"
            ) from exc
        if col.null_count:
            raise SchemaError(source, f"column 'ts' has {col.null_count} empty value(s)")
        cols.append(col)
    return pa.Table.from_arrays(cols, schema=TICK_SCHEMA)


SUMMARY_METRICS: tuple[str, ...] = (
    "net_profit",
    "sharpe",
    "sortino",
    "max_drawdown",
    "profit_factor",
    "win_rate",
    "trades",
    "exposure",
    "avg_trade",
    "cagr",
)
"""The backtest metrics kept per walk-forward fold and holdout, in this order: the search's
fold records, the ranking, and the library's metric columns (computed by
:func:`aio_ray.strategies.metrics.compute_metrics`)."""
