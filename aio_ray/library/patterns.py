"""Pattern statistics (and occurrences) in the strategy library's database (SQLModel).

Stable public API::

    save_pattern_stats(lib, run_key, rows, *, kept=None, min_count=30, min_abs_t=2.0) -> int
    save_occurrences(lib, run_key, occurrences) -> int
    save_mining(lib, result, *, min_count=30, min_abs_t=2.0) -> int
    load_pattern_stats(lib, *, timeframe=None, symbol=None, pattern=None,
                       validated_only=False, run_key=None) -> list[dict]
    load_occurrences(lib, *, run_key, pattern=None) -> list[dict]
    PatternStatRow, PatternOccurrenceRow                                 # the tables

The tables live on the same ``SQLModel.metadata`` as the library's own but are created here,
on first use (:func:`ensure_tables`), so the library module needs no change. Keys are natural:
a statistic is identified by ``(source_key, symbol, timeframe, pattern, horizon)``, an
occurrence by ``(source_key, symbol, timeframe, pattern, ts_ms)``; every write is an upsert,
so re-saving a mining run (same bars, same detectors: same key) never duplicates rows.
NaN statistics are stored as NULL and read back as None (JSON-ready).
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import polars as pl
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Float,
    Index,
    Integer,
    Table,
    Text,
    select,
)
from sqlmodel import Field, SQLModel

from aio_ray.bars.timeframes import parse_timeframe
from aio_ray.library.models import now_ms, table_of
from aio_ray.patterns.stats import PatternStats, validate_patterns

if TYPE_CHECKING:
    from aio_ray.library.repo import Library

__all__ = [
    "STAT_FIELDS",
    "PatternOccurrenceRow",
    "PatternStatRow",
    "ensure_tables",
    "load_occurrences",
    "load_pattern_stats",
    "save_mining",
    "save_occurrences",
    "save_pattern_stats",
]

_PG_ADVISORY_KEY = 0x41494F_5041_54  # "AIO" "PA" "T": serializes concurrent table creation


class PatternStatRow(SQLModel, table=True):
    """Forward-return statistics of one pattern (see :class:`aio_ray.patterns.stats.PatternStats`
    for the units: bps, fractions, bars, UTC ms)."""

    __tablename__ = "pattern_stats"
    __table_args__ = (Index("ix_pattern_stats_tf_validated", "timeframe", "validated"),)

    source_key: str = Field(sa_column=Column(Text, primary_key=True))
    symbol: str = Field(sa_column=Column(Text, primary_key=True))
    timeframe: str = Field(sa_column=Column(Text, primary_key=True))
    pattern: str = Field(sa_column=Column(Text, primary_key=True))
    horizon: int = Field(sa_column=Column(Integer, primary_key=True), description="bars")
    direction: int = Field(sa_column=Column(Integer, nullable=False))
    occurrences: int = Field(sa_column=Column(Integer, nullable=False))
    count: int = Field(sa_column=Column(Integer, nullable=False))
    n_independent: int = Field(sa_column=Column(Integer, nullable=False))
    mean_bps: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    median_bps: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    std_bps: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    mean_raw_bps: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    hit_rate: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    t_stat: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    baseline_count: int = Field(sa_column=Column(Integer, nullable=False))
    baseline_mean_bps: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    baseline_hit_rate: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    bars: int = Field(sa_column=Column(Integer, nullable=False))
    first_ts_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    last_ts_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    validated: bool = Field(sa_column=Column(Boolean, nullable=False))
    min_count: int = Field(sa_column=Column(Integer, nullable=False), description="validator")
    min_abs_t: float = Field(sa_column=Column(Float, nullable=False), description="validator")
    recorded_ms: int = Field(sa_column=Column(BigInteger, nullable=False))


class PatternOccurrenceRow(SQLModel, table=True):
    """One completion of a pattern: the completion bar's open time (UTC ms) and direction."""

    __tablename__ = "pattern_occurrences"

    source_key: str = Field(sa_column=Column(Text, primary_key=True))
    symbol: str = Field(sa_column=Column(Text, primary_key=True))
    timeframe: str = Field(sa_column=Column(Text, primary_key=True))
    pattern: str = Field(sa_column=Column(Text, primary_key=True))
    ts_ms: int = Field(sa_column=Column(BigInteger, primary_key=True))
    direction: int = Field(sa_column=Column(Integer, nullable=False))


STAT_FIELDS: tuple[str, ...] = tuple(PatternStats.__dataclass_fields__)
_STAT_KEYS = ("source_key", "symbol", "timeframe", "pattern", "horizon")
_OCC_KEYS = ("source_key", "symbol", "timeframe", "pattern", "ts_ms")
_TABLES: tuple[Table, ...] = (table_of(PatternStatRow), table_of(PatternOccurrenceRow))
_READY: weakref.WeakSet[Library] = weakref.WeakSet()  # libraries whose tables exist


def ensure_tables(lib: Library) -> None:
    """Create the pattern tables in ``lib`` (an :class:`aio_ray.library.Library`) if absent;
    safe to call concurrently (PostgreSQL: under an advisory lock)."""
    if lib in _READY:
        return

    def run(conn: Connection) -> None:
        if lib.dialect == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_ADVISORY_KEY})")
        SQLModel.metadata.create_all(conn, tables=list(_TABLES))

    lib._tx(run, "create pattern tables")
    _READY.add(lib)


def _num(x: Any) -> float | None:
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else float(x)


def save_pattern_stats(
    lib: Library,
    run_key: str,
    rows: Iterable[PatternStats],
    *,
    kept: Iterable[PatternStats] | None = None,
    min_count: int = 30,
    min_abs_t: float = 2.0,
) -> int:
    """Upsert statistics under ``run_key``; returns the number of rows written.

    Parameters
    ----------
    lib : an open :class:`aio_ray.library.Library`.
    run_key : the source key (e.g. :attr:`MiningResult.keys` of the timeframe): rows with the
        same key, symbol, timeframe, pattern and horizon are replaced.
    rows : the statistics.
    kept : the rows the validator kept (stored ``validated=True``); None applies
        :func:`validate_patterns` with ``min_count`` / ``min_abs_t`` (stored with each row).
    """
    if not isinstance(run_key, str) or not run_key:
        raise ValueError(f"save_pattern_stats: run_key must be a non-empty string, got {run_key!r}")
    rows = list(rows)
    kept_rows = validate_patterns(rows, min_count, min_abs_t) if kept is None else list(kept)
    kept_ids = {(r.symbol, r.timeframe, r.pattern, r.horizon) for r in kept_rows}
    ensure_tables(lib)
    now = now_ms()
    records = []
    for r in rows:
        rec: dict[str, Any] = {"source_key": run_key}
        for f in STAT_FIELDS:
            v = getattr(r, f)
            rec[f] = _num(v) if isinstance(v, float) else v
        rec["validated"] = (r.symbol, r.timeframe, r.pattern, r.horizon) in kept_ids
        rec["min_count"] = int(min_count)
        rec["min_abs_t"] = float(min_abs_t)
        rec["recorded_ms"] = now
        records.append(rec)
    keys = {tuple(rec[k] for k in _STAT_KEYS) for rec in records}
    if len(keys) != len(records):
        raise ValueError("save_pattern_stats: rows repeat (symbol, timeframe, pattern, horizon)")
    table = _TABLES[0]
    lib._tx(lambda conn: lib._upsert(conn, table, records, _STAT_KEYS), "save pattern stats")
    return len(records)


def save_occurrences(lib: Library, run_key: str, occurrences: pl.DataFrame) -> int:
    """Upsert occurrences (a :attr:`MiningResult.occurrences` frame: ``symbol``, ``timeframe``,
    ``ts``, ``pattern``, ``direction``) under ``run_key``; returns the rows written."""
    if occurrences.is_empty():
        return 0
    ensure_tables(lib)
    frame = occurrences.select(
        pl.lit(run_key).alias("source_key"),
        pl.col("symbol"),
        pl.col("timeframe"),
        pl.col("pattern"),
        pl.col("ts").dt.epoch("ms").alias("ts_ms"),
        pl.col("direction").cast(pl.Int64),
    )
    records = frame.to_dicts()
    table = _TABLES[1]
    chunk = 5000

    def write(part: list[dict[str, Any]]) -> None:
        lib._tx(lambda conn: lib._upsert(conn, table, part, _OCC_KEYS), "save occurrences")

    for start in range(0, len(records), chunk):
        write(records[start : start + chunk])
    return len(records)


def save_mining(
    lib: Library,
    result: Any,
    *,
    min_count: int = 30,
    min_abs_t: float = 2.0,
    occurrences: bool = True,
) -> int:
    """Save a :class:`~aio_ray.patterns.mining.MiningResult`: each timeframe's statistics (and
    occurrences) under that timeframe's key. Returns the statistics rows written."""
    n = 0
    for tf, key in result.keys.items():
        rows = [s for s in result.stats if s.timeframe == tf]
        n += save_pattern_stats(lib, key, rows, min_count=min_count, min_abs_t=min_abs_t)
        if occurrences:
            save_occurrences(lib, key, result.occurrences.filter(pl.col("timeframe") == tf))
    return n


def load_pattern_stats(
    lib: Library,
    *,
    timeframe: str | None = None,
    symbol: str | None = None,
    pattern: str | None = None,
    validated_only: bool = False,
    run_key: str | None = None,
) -> list[dict[str, Any]]:
    """Stored statistics as dicts (NaN as None), sorted by symbol, timeframe, pattern, horizon.

    ``run_key`` None returns, for each (symbol, timeframe), the rows of the most recently
    saved source key only (what ``GET /patterns`` shows); a key returns that run's rows.
    Each dict has the :class:`PatternStats` fields plus ``source_key``, ``validated``,
    ``min_count``, ``min_abs_t`` and ``recorded_ms``.
    """
    ensure_tables(lib)
    t = _TABLES[0]
    q = select(t)
    if timeframe is not None:
        q = q.where(t.c.timeframe == parse_timeframe(timeframe).name)
    if symbol is not None:
        q = q.where(t.c.symbol == symbol.upper())
    if pattern is not None:
        q = q.where(t.c.pattern == pattern)
    if validated_only:
        q = q.where(t.c.validated.is_(True))
    if run_key is not None:
        q = q.where(t.c.source_key == run_key)

    def read(conn: Connection) -> list[dict[str, Any]]:
        rows = [dict(r._mapping) for r in conn.execute(q)]
        if run_key is None and rows:
            latest: dict[tuple[str, str], tuple[int, str]] = {}
            lq = select(t.c.symbol, t.c.timeframe, t.c.source_key, t.c.recorded_ms)
            for sym, tf, key, rec in conn.execute(lq):
                cur = latest.get((sym, tf))
                if cur is None or (rec, key) > cur:
                    latest[(sym, tf)] = (rec, key)
            rows = [r for r in rows if latest[(r["symbol"], r["timeframe"])][1] == r["source_key"]]
        return rows

    rows: list[dict[str, Any]] = lib._tx(read, "load pattern stats")
    rows.sort(key=lambda r: (r["symbol"], r["timeframe"], r["pattern"], r["horizon"]))
    for r in rows:
        r["validated"] = bool(r["validated"])
    return rows


def load_occurrences(lib: Any, *, run_key: str, pattern: str | None = None) -> list[dict[str, Any]]:
    """Stored occurrences of ``run_key`` (optionally one pattern), oldest first."""
    ensure_tables(lib)
    t = _TABLES[1]
    q = select(t).where(t.c.source_key == run_key)
    if pattern is not None:
        q = q.where(t.c.pattern == pattern)
    q = q.order_by(t.c.ts_ms, t.c.pattern)
    out: list[dict[str, Any]] = lib._tx(
        lambda c: [dict(r._mapping) for r in c.execute(q)], "load occurrences"
    )
    return out


def stats_from_rows(rows: Sequence[dict[str, Any]]) -> list[PatternStats]:
    """Loaded rows back into :class:`PatternStats` (None -> NaN)."""
    out = []
    for r in rows:
        kw = {f: r[f] for f in STAT_FIELDS}
        for f, v in kw.items():
            if v is None:
                kw[f] = math.nan
        out.append(PatternStats(**kw))
    return out
