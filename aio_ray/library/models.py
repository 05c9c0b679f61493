"""The strategy library's tables (SQLModel), identical on SQLite and PostgreSQL.

Conventions
-----------
- Times are UTC milliseconds since the epoch in ``BIGINT`` columns named ``*_ms``
  (trade entry/exit are ``entry_ts``/``exit_ts``, also ms), so both databases agree exactly.
- JSON (configs, seeds, params, criteria, reports) is stored as text: canonical JSON
  (sorted keys, no ASCII escaping) written and read by :mod:`aio_ray.library.repo`.
- Metric columns (:data:`METRIC_COLUMNS`) are nullable floats: NaN is stored as NULL.
  Units: ``net_profit`` and ``avg_trade`` in quote currency; ``sharpe``/``sortino``
  annualized; ``max_drawdown`` a positive fraction of peak equity; ``profit_factor`` gross
  profit / gross loss (may be +inf); ``win_rate`` and ``exposure`` fractions; ``trades`` a
  count; ``cagr`` a fraction per year.
- Natural composite primary keys (run, strategy, fold, ...) make every write an upsert, so
  a rerun of the same run id never duplicates rows.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from sqlalchemy import BigInteger, Column, ForeignKey, Index, LargeBinary, Table, Text
from sqlmodel import Field, SQLModel

from aio_ray.schema import SUMMARY_METRICS
from aio_ray.strategies.space import identity_params

__all__ = [
    "ALL_TABLES",
    "IN_SAMPLE",
    "METRIC_COLUMNS",
    "OUT_OF_SAMPLE",
    "RUN_STATUSES",
    "SAMPLES",
    "TRADE_FIELDS",
    "TRIAL_STATUSES",
    "CandidateRow",
    "ControlEvent",
    "FoldMetric",
    "HoldoutMetric",
    "PineVerification",
    "RankedRecord",
    "RankingRow",
    "ReturnLayout",
    "Run",
    "RunRecord",
    "Strategy",
    "StrategyRecord",
    "TradeRow",
    "TrialResult",
    "VerdictRow",
    "canonical_json",
    "check_text",
    "field_of",
    "metric_row",
    "metric_value",
    "now_ms",
    "run_record",
    "strategy_id",
    "strategy_record",
    "table_of",
    "to_plain",
    "ts_ms",
]

METRIC_COLUMNS: tuple[str, ...] = SUMMARY_METRICS
"""The metric columns shared by fold and holdout rows (see module docstring for units)."""

IN_SAMPLE = "is"
OUT_OF_SAMPLE = "oos"
SAMPLES: tuple[str, ...] = (IN_SAMPLE, OUT_OF_SAMPLE)

TRIAL_STATUSES: tuple[str, ...] = ("ok", "failed")
RUN_STATUSES: tuple[str, ...] = ("running", "finished", "failed", "cancelled")


def _ms(nullable: bool = False, index: bool = False) -> Column[int]:
    return Column(BigInteger, nullable=nullable, index=index)


def _text(nullable: bool = False) -> Column[str]:
    return Column(Text, nullable=nullable)


def _fk(
    target: str, primary_key: bool = False, nullable: bool = False, index: bool = False
) -> Column[str]:
    return Column(Text, ForeignKey(target), primary_key=primary_key, nullable=nullable, index=index)


class Run(SQLModel, table=True):
    """One search run, keyed by the caller's stable run id."""

    __tablename__ = "runs"

    id: str = Field(sa_column=Column(Text, primary_key=True))
    config_json: str = Field(sa_column=_text(), description="canonical JSON of the run's config")
    config_id: str = Field(sa_column=Column(Text, nullable=False, index=True))
    seeds_json: str = Field(sa_column=_text(), description="canonical JSON of the seeds used")
    status: str = Field(sa_column=Column(Text, nullable=False), description="see RUN_STATUSES")
    created_ms: int = Field(sa_column=_ms(index=True), description="first start, UTC ms")
    started_ms: int = Field(sa_column=_ms(), description="latest (re)start, UTC ms")
    finished_ms: int | None = Field(default=None, sa_column=_ms(nullable=True))
    trials_done: int = Field(default=0, description="trials with status ok")
    trials_failed: int = Field(default=0, description="trials with status failed")


class Strategy(SQLModel, table=True):
    """A distinct strategy: family + params + timeframe + symbol (id is their stable hash)."""

    __tablename__ = "strategies"

    id: str = Field(sa_column=Column(Text, primary_key=True))
    family: str = Field(sa_column=_text())
    name: str = Field(sa_column=_text(), description="display name (defaults to the family)")
    params_json: str = Field(sa_column=_text(), description="canonical JSON of the params")
    timeframe: str = Field(sa_column=_text())
    symbol: str = Field(sa_column=_text())
    run_id: str = Field(sa_column=_fk("runs.id", index=True), description="run that found it first")
    created_ms: int = Field(sa_column=_ms())


class TrialResult(SQLModel, table=True):
    """One search trial: ok (with the strategy it evaluated) or failed (with the error)."""

    __tablename__ = "trial_results"

    run_id: str = Field(sa_column=_fk("runs.id", primary_key=True))
    trial_number: int = Field(primary_key=True)
    strategy_id: str | None = Field(
        default=None, sa_column=_fk("strategies.id", nullable=True, index=True)
    )
    status: str = Field(sa_column=_text(), description="ok | failed")
    objective: float | None = Field(default=None, description="the search objective value")
    error: str | None = Field(default=None, sa_column=_text(nullable=True))
    duration_s: float | None = Field(default=None, description="wall time, seconds")
    recorded_ms: int = Field(sa_column=_ms())


class CandidateRow(SQLModel, table=True):
    """One evaluated parameter set of a population search (ok or failed), with its evidence.

    ``number`` is the candidate's place in the run (deterministic: island offset + order of
    evaluation). Per-period figures are not annualized. ``returns`` holds the candidate's
    per-period simple returns as little-endian float32 in the columns of its timeframe's
    :class:`ReturnLayout` (out-of-sample columns first); ``window_metrics`` float32 of shape
    (windows, len(WINDOW_METRICS)), windows in layout order (fold f: IS = 2f, OOS = 2f + 1;
    with k folds the final in-sample window is 2k); its last column is the window's trades
    closed by the forced end-of-window exit.
    """

    __tablename__ = "candidates"
    __table_args__ = (Index("ix_candidates_run_objective", "run_id", "objective"),)

    run_id: str = Field(sa_column=_fk("runs.id", primary_key=True))
    number: int = Field(primary_key=True)
    family: str = Field(sa_column=_text())
    timeframe: str = Field(sa_column=_text())
    island: int = Field(description="Tune trial (island) that evaluated it")
    generation: int = Field(description="population of the island, 0-based")
    guide: int = Field(
        default=-1,
        description="selection window whose sampler proposed it; "
        "-1: a data-blind sampler (eligible for every fold)",
    )
    params_json: str = Field(sa_column=_text())
    status: str = Field(sa_column=_text(), description="ok | failed")
    error: str | None = Field(default=None, sa_column=_text(nullable=True))
    objective: float | None = None
    oos_sharpe: float | None = Field(default=None, description="mean OOS fold value (annualized)")
    oos_max_drawdown: float | None = None
    oos_trades: int | None = None
    oos_end_exits: int | None = Field(default=None, description="OOS trades closed by a window end")
    is_objective: float | None = Field(
        default=None,
        description="the in-sample objective on the final window (what the "
        "exported parameters are chosen by)",
    )
    sharpe: float | None = Field(default=None, description="per-period OOS Sharpe (for the DSR)")
    skew: float | None = None
    kurtosis: float | None = None
    n_obs: int | None = None
    returns: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    window_metrics: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    recorded_ms: int = Field(sa_column=_ms())


class ReturnLayout(SQLModel, table=True):
    """The windows and return columns shared by a run's candidates on one timeframe."""

    __tablename__ = "return_layouts"

    run_id: str = Field(sa_column=_fk("runs.id", primary_key=True))
    timeframe: str = Field(sa_column=Column(Text, primary_key=True))
    layout_json: str = Field(sa_column=_text(), description="canonical JSON (see population.py)")


class VerdictRow(SQLModel, table=True):
    """A run's verdict: what passed the gates and why the rest did not (see
    ``aio_ray.strategies.verdict``); one row per run, replaced when the run is judged again."""

    __tablename__ = "verdicts"

    run_id: str = Field(sa_column=_fk("runs.id", primary_key=True))
    verdict: str = Field(sa_column=_text(), description="passed | none_passed")
    passed: int = Field(description="strategies that passed every gate")
    verdict_json: str = Field(sa_column=_text(), description="the whole verdict, JSON")
    created_ms: int = Field(sa_column=_ms())


class _Metrics(SQLModel):
    net_profit: float | None = None
    sharpe: float | None = None
    sortino: float | None = None
    max_drawdown: float | None = None
    profit_factor: float | None = None
    win_rate: float | None = None
    trades: int | None = None
    exposure: float | None = None
    avg_trade: float | None = None
    cagr: float | None = None


class FoldMetric(_Metrics, table=True):
    """Walk-forward metrics of one strategy on one fold, in-sample "is" or out-of-sample "oos"."""

    __tablename__ = "fold_metrics"

    run_id: str = Field(sa_column=_fk("runs.id", primary_key=True))
    strategy_id: str = Field(sa_column=_fk("strategies.id", primary_key=True, index=True))
    fold: int = Field(primary_key=True, description="fold index, 0-based")
    sample: str = Field(sa_column=Column(Text, primary_key=True), description="is | oos")


class HoldoutMetric(_Metrics, table=True):
    """Metrics on the untouched holdout period, once per run and strategy (never used to rank)."""

    __tablename__ = "holdout_metrics"

    run_id: str = Field(sa_column=_fk("runs.id", primary_key=True))
    strategy_id: str = Field(sa_column=_fk("strategies.id", primary_key=True, index=True))


class TradeRow(SQLModel, table=True):
    """One closed trade of a strategy in a segment ("holdout", "full", "oos", ...)."""

    __tablename__ = "trades"

    run_id: str = Field(sa_column=_fk("runs.id", primary_key=True))
    strategy_id: str = Field(sa_column=_fk("strategies.id", primary_key=True, index=True))
    segment: str = Field(sa_column=Column(Text, primary_key=True))
    seq: int = Field(primary_key=True, description="0-based order of the trade in the segment")
    side: str = Field(sa_column=_text(), description="long | short")
    entry_ts: int = Field(sa_column=_ms(), description="entry time, UTC ms")
    exit_ts: int = Field(sa_column=_ms(), description="exit time, UTC ms")
    entry_price: float = Field(description="quote currency")
    exit_price: float = Field(description="quote currency")
    size: float = Field(description="units of the base currency")
    pnl: float = Field(description="quote currency, after costs")
    pnl_pips: float = Field(description="pips (EUR/USD: 0.0001)")
    exit_reason: str = Field(sa_column=_text(), description="signal | stop | take | end ...")


class RankingRow(SQLModel, table=True):
    """Position ``rank`` (1..N) of a run's ranking; criteria are those of ranking.rank()."""

    __tablename__ = "rankings"

    run_id: str = Field(sa_column=_fk("runs.id", primary_key=True))
    rank: int = Field(primary_key=True, description="1 is best")
    strategy_id: str = Field(sa_column=_fk("strategies.id", index=True))
    score: float = Field(description="composite score in [0, 1]")
    criteria_json: str = Field(sa_column=_text(), description="criterion -> value")
    contributions_json: str = Field(sa_column=_text(), description="criterion -> score share")
    rationale: str = Field(sa_column=_text())
    created_ms: int = Field(sa_column=_ms())


class PineVerification(SQLModel, table=True):
    """One check of a generated Pine script (syntax and runtime parity with the engine)."""

    __tablename__ = "pine_verification"
    __table_args__ = (Index("ix_pine_verification_strategy_checked", "strategy_id", "checked_ms"),)

    id: int | None = Field(default=None, primary_key=True)
    strategy_id: str = Field(sa_column=_fk("strategies.id"))
    kind: str = Field(sa_column=_text(), description="strategy | indicator")
    parsed: bool = Field(description="the script parsed without errors")
    parity_passed: bool | None = Field(default=None, description="None: not run")
    first_diff_bar: int | None = Field(default=None, description="first differing bar index")
    report_json: str = Field(sa_column=_text())
    checked_ms: int = Field(sa_column=_ms())


class ControlEvent(SQLModel, table=True):
    """An operator action on a strategy (approve, retire, pause, note, ...)."""

    __tablename__ = "control_events"
    __table_args__ = (Index("ix_control_events_strategy_at", "strategy_id", "at_ms"),)

    id: int | None = Field(default=None, primary_key=True)
    strategy_id: str | None = Field(default=None, sa_column=_fk("strategies.id", nullable=True))
    action: str = Field(sa_column=_text())
    payload_json: str = Field(sa_column=_text())
    who: str = Field(sa_column=_text())
    at_ms: int = Field(sa_column=_ms())


ALL_TABLES = (
    Run,
    Strategy,
    TrialResult,
    CandidateRow,
    ReturnLayout,
    FoldMetric,
    HoldoutMetric,
    TradeRow,
    RankingRow,
    VerdictRow,
    PineVerification,
    ControlEvent,
)
"""Every library table, in dependency order."""


def table_of(model: type[SQLModel]) -> Table:
    """The SQLAlchemy ``Table`` of a library model (typed, for Core queries)."""
    return cast(Table, model.__table__)  # type: ignore[attr-defined]


# ----------------------------------------------------------------------------- helpers

TRADE_FIELDS: tuple[str, ...] = (
    "side",
    "entry_ts",
    "exit_ts",
    "entry_price",
    "exit_price",
    "size",
    "pnl",
    "pnl_pips",
    "exit_reason",
)
"""Fields of one trade given to :meth:`Library.record_trades` (``entry_ts``/``exit_ts`` UTC ms)."""


def now_ms() -> int:
    """The current UTC time in epoch milliseconds."""
    return time.time_ns() // 1_000_000


def to_plain(value: Any) -> Any:
    """numpy scalars/arrays and tuples to plain JSON types (recursively); mapping keys to str."""
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return to_plain(value.tolist())
    if hasattr(value, "item") and not isinstance(value, (str, bytes, int, float, bool)):
        return value.item()
    return value


def canonical_json(value: Any) -> str:
    """Canonical JSON: sorted keys, compact, unicode kept verbatim, NaN/inf rejected."""
    return json.dumps(
        to_plain(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def strategy_id(family: str, params: Mapping[str, Any], timeframe: str, symbol: str) -> str:
    """The stable id of a strategy: 20 hex digits of sha256 over its canonical definition.

    The same family, params (key order irrelevant, value types relevant: ``1`` is not
    ``1.0``), timeframe and symbol always give the same id, on every machine.
    """
    blob = canonical_json(
        {
            "family": family,
            "params": identity_params(family, params),
            "timeframe": timeframe,
            "symbol": symbol,
        }
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:20]


# ----------------------------------------------------------------------------- records


@dataclass(frozen=True)
class RunRecord:
    """A run as stored: config and seeds decoded; times UTC ms."""

    id: str
    config: dict[str, Any]
    config_id: str
    seeds: dict[str, Any]
    status: str
    created_ms: int
    started_ms: int
    finished_ms: int | None
    trials_done: int
    trials_failed: int


@dataclass(frozen=True)
class StrategyRecord:
    """A distinct strategy as stored; ``params`` decoded from JSON."""

    id: str
    family: str
    name: str
    params: dict[str, Any]
    timeframe: str
    symbol: str
    run_id: str
    created_ms: int


@dataclass(frozen=True)
class RankedRecord:
    """One row of a saved ranking with its strategy, and the holdout figures reported beside it.

    ``holdout`` is None when no holdout was recorded; it never contributed to ``score``.
    """

    run_id: str
    rank: int
    score: float
    criteria: dict[str, Any]
    contributions: dict[str, Any]
    rationale: str
    created_ms: int
    strategy: StrategyRecord
    holdout: dict[str, float | int | None] | None


def run_record(r: Any) -> RunRecord:
    return RunRecord(
        id=r.id,
        config=json.loads(r.config_json),
        config_id=r.config_id,
        seeds=json.loads(r.seeds_json),
        status=r.status,
        created_ms=r.created_ms,
        started_ms=r.started_ms,
        finished_ms=r.finished_ms,
        trials_done=r.trials_done,
        trials_failed=r.trials_failed,
    )


def strategy_record(s: Any) -> StrategyRecord:
    return StrategyRecord(
        id=s.id,
        family=s.family,
        name=s.name,
        params=json.loads(s.params_json),
        timeframe=s.timeframe,
        symbol=s.symbol,
        run_id=s.run_id,
        created_ms=s.created_ms,
    )


# ----------------------------------------------------------------------------- row conversion


def check_text(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    if "\x00" in value:
        raise ValueError(f"{name} must not contain NUL characters, got {value!r}")
    return value


def metric_value(name: str, value: Any) -> float | int | None:
    if value is None:
        return None
    v = float(value)
    if math.isnan(v):
        return None
    if name == "trades":
        if not v.is_integer():
            raise ValueError(f"trades must be a whole number, got {value!r}")
        return int(v)
    return v


def metric_row(
    metrics: Mapping[str, Any], allowed_extra: Sequence[str], where: str
) -> dict[str, Any]:
    unknown = set(metrics) - set(METRIC_COLUMNS) - set(allowed_extra)
    if unknown:
        raise ValueError(
            f"{where}: unknown metric(s) {sorted(unknown)}; known: {list(METRIC_COLUMNS)}"
        )
    return {name: metric_value(name, metrics.get(name)) for name in METRIC_COLUMNS}


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def ts_ms(value: Any, where: str) -> int:
    """Epoch ms from an int, a datetime (aware, or naive = UTC) or a numpy datetime64."""
    if isinstance(value, dt.datetime):
        aware: dt.datetime = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return (aware - _EPOCH) // dt.timedelta(milliseconds=1)  # exact, no float rounding
    if isinstance(value, np.datetime64):
        return int(value.astype("datetime64[ms]").astype(np.int64))
    if hasattr(value, "to_pydatetime"):  # pandas Timestamp
        return ts_ms(value.to_pydatetime(), where)
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    raise ValueError(f"{where}: cannot read {value!r} as UTC epoch milliseconds")


def field_of(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)
