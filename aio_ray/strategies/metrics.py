"""Performance metrics of a backtest: pure numpy, one documented formula each.

The compiled engine streams the same formulas (``_engine_nb.finalize_metrics``) so a batch of
parameter sets needs no equity curves; the tests check both agree.

Conventions
-----------
- ``equity`` is the account equity at each bar's close (account currency), after that bar's
  fills; ``equity[0]`` equals the initial capital (nothing fills on the first bar).
- Per-bar returns ``r[t] = equity[t] / equity[t-1] - 1`` for ``t = 1 .. n-1`` (``n - 1``
  returns; a bar that follows an equity <= 0 contributes 0).
- Annualization for a 24/5 FX market: ``bars_per_year = 260 x bars per day`` where bars per
  day is ``86,400,000 / bar_ms`` (1m: 374,400; 1h: 6,240; 1d: 260). Sharpe and Sortino are
  per-bar ratios scaled by ``sqrt(bars_per_year)``, risk-free rate 0.
- CAGR uses calendar time: ``years = (ts[-1] - ts[0] + bar_ms) / (365.25 days)``.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "METRIC_NAMES",
    "MS_PER_DAY",
    "MS_PER_YEAR",
    "TRADING_DAYS_PER_YEAR",
    "bar_returns",
    "bars_per_year",
    "cagr",
    "compute_metrics",
    "exposure",
    "max_drawdown",
    "profit_factor",
    "sharpe_ratio",
    "sortino_ratio",
    "span_years",
    "win_rate",
]

METRIC_NAMES: tuple[str, ...] = (
    "net_profit",
    "total_return",
    "cagr",
    "sharpe",
    "sortino",
    "max_drawdown",
    "max_drawdown_cash",
    "profit_factor",
    "win_rate",
    "trades",
    "exposure",
    "avg_trade",
    "final_equity",
)
"""Columns of the metrics matrix (and keys of ``BacktestResult.metrics``), in order."""


MS_PER_DAY = 86_400_000
TRADING_DAYS_PER_YEAR = 260
MS_PER_YEAR = 365.25 * MS_PER_DAY


def bars_per_year(bar_ms: int) -> float:
    """Bars in a 24/5 FX year: 260 trading days x ``86,400,000 / bar_ms`` bars per day."""
    if bar_ms <= 0:
        raise ValueError(f"bar_ms must be > 0, got {bar_ms}")
    return TRADING_DAYS_PER_YEAR * MS_PER_DAY / bar_ms


def span_years(ts_ms: np.ndarray, bar_ms: int) -> float:
    """Calendar years covered by the bars: ``(ts[-1] - ts[0] + bar_ms) / 365.25 days``."""
    ts = np.asarray(ts_ms, dtype=np.int64)
    if ts.size == 0:
        return 0.0
    return float(ts[-1] - ts[0] + bar_ms) / MS_PER_YEAR


def bar_returns(equity: np.ndarray) -> np.ndarray:
    """Per-bar simple returns ``equity[t] / equity[t-1] - 1`` (t >= 1); 0 after equity <= 0."""
    eq = np.asarray(equity, dtype=np.float64)
    prev = eq[:-1]
    out = np.zeros(max(eq.size - 1, 0))
    ok = prev > 0
    out[ok] = eq[1:][ok] / prev[ok] - 1.0
    return out


def sharpe_ratio(returns: np.ndarray, bars_per_year: float) -> float:
    """``mean(r) / std(r, ddof=1) * sqrt(bars_per_year)``; NaN with < 2 returns or zero std."""
    r = np.asarray(returns, dtype=np.float64)
    if r.size < 2:
        return math.nan
    sd = float(np.std(r, ddof=1))
    if sd <= 0.0:
        return math.nan
    return float(np.mean(r)) / sd * math.sqrt(bars_per_year)


def sortino_ratio(returns: np.ndarray, bars_per_year: float) -> float:
    """``mean(r) / sqrt(mean(min(r, 0)^2)) * sqrt(bars_per_year)`` (target 0, all bars in the
    denominator's mean); NaN with < 2 returns or no losing bar."""
    r = np.asarray(returns, dtype=np.float64)
    if r.size < 2:
        return math.nan
    down = math.sqrt(float(np.mean(np.minimum(r, 0.0) ** 2)))
    if down <= 0.0:
        return math.nan
    return float(np.mean(r)) / down * math.sqrt(bars_per_year)


def max_drawdown(equity: np.ndarray, initial: float) -> tuple[float, float]:
    """Largest fall from a running peak: ``(fraction of the peak, currency)``.

    The running peak starts at ``initial``: ``peak[t] = max(initial, equity[:t+1])``;
    fraction ``max((peak - equity) / peak)``, currency ``max(peak - equity)`` (each maximum
    taken on its own, so they may come from different troughs). 0 when equity never falls.
    """
    eq = np.asarray(equity, dtype=np.float64)
    if eq.size == 0:
        return 0.0, 0.0
    peak = np.maximum.accumulate(np.maximum(eq, initial))
    fall = peak - eq
    return float(np.max(fall / peak)), float(np.max(fall))


def profit_factor(pnl: np.ndarray) -> float:
    """Gross profit / gross loss of the trades; inf with no losing trade, NaN with no trades
    (or only break-even ones)."""
    p = np.asarray(pnl, dtype=np.float64)
    win = float(p[p > 0].sum())
    loss = float(-p[p < 0].sum())
    if p.size == 0:
        return math.nan
    if loss > 0.0:
        return win / loss
    return math.inf if win > 0.0 else math.nan


def win_rate(pnl: np.ndarray) -> float:
    """Fraction of trades with P&L > 0 (after commission); NaN with no trades."""
    p = np.asarray(pnl, dtype=np.float64)
    return float(np.mean(p > 0)) if p.size else math.nan


def cagr(initial: float, final: float, years: float) -> float:
    """Compound annual growth ``(final / initial) ** (1 / years) - 1``; -1 when the account is
    wiped out (final <= 0); NaN for a zero span. Meaningless over spans of a few days."""
    if years <= 0.0:
        return math.nan
    if final <= 0.0:
        return -1.0
    with np.errstate(over="ignore"):
        return float(np.float64(final / initial) ** (1.0 / years) - 1.0)


def exposure(
    entry_bar: np.ndarray, exit_bar: np.ndarray, exit_at_open: np.ndarray, n: int
) -> float:
    """Fraction of the ``n`` bars during which a position is held after the bar's opening fills.

    A trade covers bars ``entry_bar .. exit_bar``, minus the exit bar when it exited by a
    market order at that bar's open (``exit_at_open``: reasons "signal" and "reverse").
    Trades never overlap in these bars.
    """
    if n <= 0:
        return math.nan
    e0 = np.asarray(entry_bar, dtype=np.int64)
    e1 = np.asarray(exit_bar, dtype=np.int64)
    cut = np.asarray(exit_at_open, dtype=bool).astype(np.int64)
    return float(np.sum(e1 - e0 + 1 - cut)) / n


def compute_metrics(
    equity: np.ndarray,
    trade_pnl: np.ndarray,
    entry_bar: np.ndarray,
    exit_bar: np.ndarray,
    exit_at_open: np.ndarray,
    initial: float,
    bars_per_year: float,
    years: float,
) -> dict[str, float]:
    """All metrics of :data:`METRIC_NAMES` from an equity curve and a trade list.

    ``equity``: per-bar equity (account currency); ``trade_pnl``: net P&L per trade (after
    commission); ``entry_bar``/``exit_bar``/``exit_at_open``: see :func:`exposure`;
    ``initial``: initial capital; ``bars_per_year``, ``years``: see the module docstring.
    ``avg_trade`` is ``net_profit / trades`` (NaN with no trades).
    """
    eq = np.asarray(equity, dtype=np.float64)
    pnl = np.asarray(trade_pnl, dtype=np.float64)
    final = float(eq[-1]) if eq.size else float(initial)
    r = bar_returns(eq)
    dd, dd_cash = max_drawdown(eq, initial)
    n_tr = int(pnl.size)
    return {
        "net_profit": final - initial,
        "total_return": final / initial - 1.0,
        "cagr": cagr(initial, final, years),
        "sharpe": sharpe_ratio(r, bars_per_year),
        "sortino": sortino_ratio(r, bars_per_year),
        "max_drawdown": dd,
        "max_drawdown_cash": dd_cash,
        "profit_factor": profit_factor(pnl),
        "win_rate": win_rate(pnl),
        "trades": float(n_tr),
        "exposure": exposure(entry_bar, exit_bar, exit_at_open, eq.size),
        "avg_trade": (final - initial) / n_tr if n_tr else math.nan,
        "final_equity": final,
    }
