"""One candidate (family + params + timeframe) over walk-forward folds -> fold metrics (pure).

How a window ``[start, end)`` is evaluated (see :func:`aio_ray.strategies.walkforward.window_bounds`):

1. the family's signals are computed on the bars ``[0, end)`` (a causal prefix: indicators are
   warm at ``start`` and nothing after the window is ever read);
2. bars and signals are cut to ``[start, end)`` and backtested from a flat account, so only
   the window's trades and returns count (an open position is closed at the window's last bar).

A fold's result therefore cannot depend on bars after its window: the search may change,
append or drop later bars without moving it.

The objective the search maximizes (documented in :func:`objective_value`) is the mean
out-of-sample fold Sharpe ratio, each fold's Sharpe capped, a fold with fewer than
``min_trades`` trades counted as ``min(sharpe, 0) - few_trades_penalty``, minus
``dispersion_penalty`` x the standard deviation of those fold values.

:func:`split_holdout` cuts the final holdout off every timeframe at one shared time, before
any bars reach the search.

For the Deflated Sharpe Ratio the out-of-sample per-bar returns of all folds are compounded
into per-period returns (UTC days by default), so candidates on different timeframes share a
unit; :attr:`CandidateResult.moments` holds their moments.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
import polars as pl

from aio_ray.bars.arrays import BarArrays
from aio_ray.bars.timeframes import parse_timeframe
from aio_ray.schema import SUMMARY_METRICS
from aio_ray.strategies.config import DAY_MS, ObjectiveConfig
from aio_ray.strategies.dsr import ReturnMoments, return_moments
from aio_ray.strategies.engine import BacktestConfig, BacktestResult, run_backtest
from aio_ray.strategies.families import Family, get_family
from aio_ray.strategies.metrics import bar_returns
from aio_ray.strategies.ranking import FoldOOS
from aio_ray.strategies.sessions import period_keys
from aio_ray.strategies.signals import Signals
from aio_ray.strategies.walkforward import Fold, SearchError, window_bounds

__all__ = [
    "FOLD_METRICS",
    "CandidateResult",
    "EvaluationError",
    "FoldResult",
    "HoldoutResult",
    "ObjectiveConfig",
    "evaluate_candidate",
    "evaluate_holdout",
    "evaluate_window",
    "fold_value",
    "objective_value",
    "period_returns",
    "selection_config",
    "split_holdout",
]

FOLD_METRICS: tuple[str, ...] = SUMMARY_METRICS
"""The per-fold metrics stored with each fold (units as in :mod:`aio_ray.strategies.metrics`)."""


class EvaluationError(SearchError):
    """A candidate cannot be evaluated (unknown timeframe, window outside the bars, ...)."""


# ----------------------------------------------------------------------------- bars


def _as_bars(bars: BarArrays | pl.DataFrame, timeframe: str) -> BarArrays:
    """``bars`` as :class:`BarArrays` named ``timeframe`` (a frame is converted, once)."""
    if isinstance(bars, pl.DataFrame):
        return BarArrays.from_frame(bars, timeframe=timeframe)
    if isinstance(bars, BarArrays):
        if timeframe and bars.timeframe != timeframe:
            return replace(bars, timeframe=timeframe)
        return bars
    raise EvaluationError(
        f"{timeframe}: bars must be BarArrays or a polars DataFrame, got {type(bars).__name__}"
    )


# ----------------------------------------------------------------------------- objective


def selection_config(cfg: ObjectiveConfig) -> ObjectiveConfig:
    """The objective of a selection (in-sample) window: ``min_is_trades`` as the trade minimum."""
    return cfg.model_copy(update={"min_trades": cfg.min_is_trades})


def fold_value(sharpe: float, trades: float, cfg: ObjectiveConfig) -> float:
    """One fold's contribution to the objective: capped annualized Sharpe (NaN counts 0);
    ``min(s, 0) - few_trades_penalty`` when the fold has fewer than ``min_trades`` trades."""
    s = (
        0.0
        if not math.isfinite(sharpe)
        else max(-cfg.sharpe_cap, min(cfg.sharpe_cap, float(sharpe)))
    )
    if not trades >= cfg.min_trades:
        s = min(s, 0.0) - cfg.few_trades_penalty
    return s


def objective_value(
    fold_sharpes: Sequence[float], fold_trades: Sequence[float], cfg: ObjectiveConfig
) -> float:
    """The search objective: ``mean(v) - dispersion_penalty * std(v)`` over the fold values
    ``v`` of :func:`fold_value` (population std). Higher is better; -inf with no folds."""
    v = np.array([fold_value(s, t, cfg) for s, t in zip(fold_sharpes, fold_trades, strict=True)])
    if v.size == 0:
        return -math.inf
    return float(np.mean(v) - cfg.dispersion_penalty * np.std(v))


# ----------------------------------------------------------------------------- results


@dataclass(frozen=True)
class FoldResult:
    """In-sample and out-of-sample metrics of one fold (keys :data:`FOLD_METRICS` and the rest
    of ``aio_ray.strategies.metrics.METRIC_NAMES``)."""

    fold: int
    is_range: tuple[int, int]
    oos_range: tuple[int, int]
    is_metrics: dict[str, float]
    oos_metrics: dict[str, float]


@dataclass(frozen=True)
class CandidateResult:
    """A candidate's walk-forward evidence.

    Attributes
    ----------
    family, timeframe, params
        The candidate.
    folds
        Per-fold in-sample and out-of-sample metrics.
    period_ts, period_returns
        Concatenated out-of-sample returns compounded per period (UTC day by default):
        period start (UTC ms) and simple return (fraction).
    moments
        Per-period Sharpe, skewness, kurtosis and count of ``period_returns`` (for the DSR).
    objective
        The search objective (see :func:`objective_value`); higher is better.
    oos_sharpe
        Mean of the fold values (objective without the dispersion penalty).
    oos_max_drawdown
        Worst out-of-sample fold drawdown, fraction of peak equity.
    oos_trades
        Total out-of-sample trades.
    last_ts
        Open time (UTC ms) of the latest bar any window read (signals included).
    """

    family: str
    timeframe: str
    params: dict[str, Any]
    folds: tuple[FoldResult, ...]
    period_ts: np.ndarray
    period_returns: np.ndarray
    moments: ReturnMoments
    objective: float
    oos_sharpe: float
    oos_max_drawdown: float
    oos_trades: int
    last_ts: int

    def fold_oos(self) -> list[FoldOOS]:
        """The out-of-sample fold results as :class:`aio_ray.strategies.ranking.FoldOOS`."""
        return [
            FoldOOS(
                fold=f.fold,
                sharpe=float(f.oos_metrics["sharpe"]),
                max_drawdown=float(f.oos_metrics["max_drawdown"]),
                profit_factor=float(f.oos_metrics["profit_factor"]),
                trades=int(f.oos_metrics["trades"]),
            )
            for f in self.folds
        ]

    def fold_rows(self) -> list[dict[str, Any]]:
        """One mapping per (fold, sample) with :data:`FOLD_METRICS`, for ``Library.record_fold_metrics``."""
        rows = []
        for f in self.folds:
            for sample, m in (("is", f.is_metrics), ("oos", f.oos_metrics)):
                rows.append({"fold": f.fold, "sample": sample, **{k: m[k] for k in FOLD_METRICS}})
        return rows


@dataclass(frozen=True)
class HoldoutResult:
    """A candidate on the final holdout (reported beside the ranking, never used by it)."""

    family: str
    timeframe: str
    params: dict[str, Any]
    window: tuple[int, int]
    metrics: dict[str, float]
    trades: pl.DataFrame
    result: BacktestResult


# ----------------------------------------------------------------------------- evaluation


def _slice_signals(sig: Signals, a: int, b: int) -> Signals:
    return Signals(*(getattr(sig, f.name)[a:b] for f in fields(Signals)))


def _family(family: str | Family) -> Family:
    """A family by name (:func:`~aio_ray.strategies.families.get_family`), or the object itself."""
    return get_family(family) if isinstance(family, str) else family


def evaluate_window(
    bars: BarArrays,
    family: str | Family,
    params: Mapping[str, Any],
    start: int,
    end: int,
    bt_cfg: BacktestConfig,
    _cache: dict[int, Signals] | None = None,
) -> BacktestResult:
    """Backtest bars ``[start, end)`` with signals computed on the prefix ``[0, end)``.

    ``family`` is a family name or a :class:`~aio_ray.strategies.families.Family`. Raises
    EvaluationError for a window outside the bars; ParameterError / BacktestError from the
    family and the engine.
    """
    if not 0 <= start < end <= len(bars):
        raise EvaluationError(
            f"{bars.timeframe}: window [{start}, {end}) is outside the {len(bars)} bars"
        )
    prefix_end, a, b = window_bounds(start, end)
    fam = _family(family)
    sig = None if _cache is None else _cache.get(prefix_end)
    if sig is None:
        sig = fam.signals(bars[:prefix_end], params)
        if _cache is not None:
            _cache[prefix_end] = sig
    return run_backtest(bars[a:b], _slice_signals(sig, a, b), bt_cfg)


def period_returns(
    ts: np.ndarray, returns: np.ndarray, period_ms: int = DAY_MS
) -> tuple[np.ndarray, np.ndarray]:
    """Compound per-bar returns into per-period returns: ``(period_start_ms, return)``.

    ``ts`` (int64 UTC ms) labels each return's bar; a period of a day is the FX trading day
    ending at 17:00 New York (no Sunday stub day), other periods are aligned on multiples of
    ``period_ms`` since the epoch (:func:`aio_ray.strategies.sessions.period_keys`); periods
    without bars are absent.
    """
    t = np.asarray(ts, dtype=np.int64)
    r = np.asarray(returns, dtype=np.float64)
    if t.size == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
    keys = period_keys(t, period_ms)
    uniq, inv = np.unique(keys, return_inverse=True)
    growth = np.ones(uniq.size)
    np.multiply.at(growth, inv, 1.0 + r)
    return uniq, growth - 1.0


def evaluate_candidate(
    bars_by_tf: Mapping[str, BarArrays | pl.DataFrame],
    family: str | Family,
    params: Mapping[str, Any],
    timeframe: str,
    folds: Sequence[Fold],
    bt_cfg: BacktestConfig | None = None,
    objective: ObjectiveConfig | None = None,
) -> CandidateResult:
    """Evaluate one candidate on every fold's in-sample and out-of-sample window.

    Parameters
    ----------
    bars_by_tf
        Timeframe -> bars (the holdout should already be cut off; only ``timeframe`` is read).
    family
        Family name or object.
    params
        Parameter set (validated by the family; ParameterError if invalid).
    timeframe
        Which bars to use.
    folds
        Bar index windows from :func:`aio_ray.strategies.walkforward.make_folds`.
    bt_cfg
        Costs and price model; default ``BacktestConfig()`` (``bidask``, as used for ranking).
    objective
        How fold results become the objective; default ``ObjectiveConfig()``.
    """
    bt_cfg = bt_cfg or BacktestConfig()
    objective = objective or ObjectiveConfig()
    if timeframe not in bars_by_tf:
        raise EvaluationError(f"no bars for timeframe {timeframe!r}; have {sorted(bars_by_tf)}")
    if not folds:
        raise EvaluationError("no folds to evaluate")
    bars = _as_bars(bars_by_tf[timeframe], timeframe)
    fam = _family(family)
    cache: dict[int, Signals] = {}
    results: list[FoldResult] = []
    ret_ts: list[np.ndarray] = []
    rets: list[np.ndarray] = []
    last = 0
    for f in folds:
        is_res = evaluate_window(bars, fam, params, f.is_start, f.is_end, bt_cfg, cache)
        oos_res = evaluate_window(bars, fam, params, f.oos_start, f.oos_end, bt_cfg, cache)
        results.append(
            FoldResult(
                f.index, f.is_range, f.oos_range, dict(is_res.metrics), dict(oos_res.metrics)
            )
        )
        ret_ts.append(oos_res.ts[1:])
        rets.append(bar_returns(oos_res.equity))
        last = max(last, f.oos_end, f.is_end)
    p_ts, p_ret = period_returns(np.concatenate(ret_ts), np.concatenate(rets), objective.period_ms)
    sharpes = [r.oos_metrics["sharpe"] for r in results]
    trades = [r.oos_metrics["trades"] for r in results]
    values = [fold_value(s, t, objective) for s, t in zip(sharpes, trades, strict=True)]
    dds = [r.oos_metrics["max_drawdown"] for r in results]
    return CandidateResult(
        family=fam.name,
        timeframe=timeframe,
        params=dict(params),
        folds=tuple(results),
        period_ts=p_ts,
        period_returns=p_ret,
        moments=return_moments(p_ret),
        objective=objective_value(sharpes, trades, objective),
        oos_sharpe=float(np.mean(values)),
        oos_max_drawdown=float(max(dds)) if all(math.isfinite(d) for d in dds) else math.nan,
        oos_trades=int(sum(trades)),
        last_ts=int(bars.ts[last - 1]),
    )


def evaluate_holdout(
    bars: BarArrays | pl.DataFrame,
    family: str | Family,
    params: Mapping[str, Any],
    holdout: tuple[int, int],
    bt_cfg: BacktestConfig | None = None,
    timeframe: str = "",
) -> HoldoutResult:
    """Evaluate one candidate on the holdout window ``holdout = (start, end)`` of ``bars``.

    ``bars`` must be the full series (walk-forward bars followed by the holdout) so the
    signals are warm at the holdout's start; only the holdout's trades count. For reporting
    only: nothing here feeds the search or the ranking.
    """
    bt_cfg = bt_cfg or BacktestConfig()
    mb = _as_bars(bars, timeframe)
    start, end = holdout
    if end - start < 2:
        raise EvaluationError(f"{mb.timeframe}: holdout [{start}, {end}) has fewer than 2 bars")
    fam = _family(family)
    res = evaluate_window(mb, fam, params, start, end, bt_cfg)
    trades = res.trades.with_columns(
        (pl.col("entry_bar") + start).alias("entry_bar"),
        (pl.col("exit_bar") + start).alias("exit_bar"),
    )
    return HoldoutResult(
        fam.name, mb.timeframe, dict(params), (start, end), dict(res.metrics), trades, res
    )


# ----------------------------------------------------------------------------- holdout split


def split_holdout(
    frames: Mapping[str, pl.DataFrame], holdout_fraction: float
) -> tuple[dict[str, BarArrays], dict[str, BarArrays], int | None, dict[str, tuple[int, int]]]:
    """Cut the final holdout off every timeframe at one shared time.

    The span runs from the earliest bar's open to the latest bar's close over all
    timeframes; the cut lies ``holdout_fraction`` of it before the end, rounded down to a
    multiple of every timeframe's length (so it is a bar boundary of each). A bar belongs to
    the walk-forward part when it *closes* at or before the cut, to the holdout when it opens
    at or after it.

    Returns
    -------
    (walk_forward, full, holdout_start_ms, holdout_ranges)
        Walk-forward bars (copies: nothing of the holdout travels with them), the full
        series, the cut (UTC ms; None when ``holdout_fraction`` is 0) and each timeframe's
        holdout as a bar index range into the full series.
    """
    if not frames:
        raise SearchError("no bars given")
    full: dict[str, BarArrays] = {}
    tf_ms: dict[str, int] = {}
    for tf, df in frames.items():
        tf_ms[tf] = parse_timeframe(tf).ms
        full[tf] = BarArrays.from_frame(df, timeframe=tf)
        if len(full[tf]) == 0:
            raise SearchError(f"no {tf} bars")
    if holdout_fraction <= 0:
        return dict(full), full, None, {tf: (len(b), len(b)) for tf, b in full.items()}
    t0 = min(int(b.ts[0]) for b in full.values())
    t1 = max(int(b.ts[-1]) + tf_ms[tf] for tf, b in full.items())
    step = math.lcm(*tf_ms.values())
    cut = int(t1 - holdout_fraction * (t1 - t0))
    cut -= cut % step
    if cut <= t0:
        raise SearchError(
            f"holdout_fraction={holdout_fraction} leaves no walk-forward bars (span {t0}..{t1} ms)"
        )
    wf: dict[str, BarArrays] = {}
    ranges: dict[str, tuple[int, int]] = {}
    for tf, b in full.items():
        n_wf = int(np.searchsorted(b.ts + tf_ms[tf], cut, side="right"))
        h0 = int(np.searchsorted(b.ts, cut, side="left"))
        wf[tf] = b[:n_wf].copy()
        ranges[tf] = (h0, len(b))
    return wf, full, cut, ranges
