"""Compiled metric kernels of the backtest engine: a parameter set's state vector (``S_*``)
initialised, its streamed sums and drawdown updated block by block, and its metric vector
(``M_*``, in the order of :data:`aio_ray.strategies.metrics.METRIC_NAMES`) finished.

The formulas are those of :mod:`aio_ray.strategies.metrics` (the pure-numpy reference the
tests compare against); here they run on running sums, so a batch never keeps per-bar arrays.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from aio_ray.strategies._engine_layout import (
    C_BARS_PER_YEAR,
    C_INITIAL,
    C_YEARS,
    M_AVG_TRADE,
    M_CAGR,
    M_EXPOSURE,
    M_FINAL_EQUITY,
    M_MAX_DD,
    M_MAX_DD_CASH,
    M_NET_PROFIT,
    M_PROFIT_FACTOR,
    M_SHARPE,
    M_SORTINO,
    M_TOTAL_RETURN,
    M_TRADES,
    M_WIN_RATE,
    S_CASH,
    S_DD_CASH,
    S_DD_FRAC,
    S_EXPOSED,
    S_FAST_PREV,
    S_GROSS_LOSS,
    S_GROSS_WIN,
    S_PEAK,
    S_PEND_STOP,
    S_PEND_TAKE,
    S_PREV_EQ,
    S_SLOW_PREV,
    S_STOP,
    S_SUM_NEG2,
    S_SUM_R,
    S_SUM_R2,
    S_TAKE,
    S_TRADES,
    S_WINS,
)

__all__ = ["drawdown", "finalize_metrics", "finish", "init_state", "return_sums"]


@njit(cache=True, nogil=True)
def finalize_metrics(
    out: np.ndarray,
    n: int,
    initial: float,
    final: float,
    n_trades: int,
    wins: int,
    gross_win: float,
    gross_loss: float,
    s1: float,
    s2: float,
    sneg: float,
    dd_frac: float,
    dd_cash: float,
    exposed: int,
    bars_per_year: float,
    years: float,
) -> None:
    """Turn the streamed accumulators into the metric vector (formulas: metrics.py)."""
    nan = np.nan
    out[M_NET_PROFIT] = final - initial
    out[M_TOTAL_RETURN] = final / initial - 1.0
    if years <= 0.0:
        out[M_CAGR] = nan
    elif final <= 0.0:
        out[M_CAGR] = -1.0
    else:
        out[M_CAGR] = (final / initial) ** (1.0 / years) - 1.0
    m = n - 1
    sharpe = nan
    sortino = nan
    if m >= 2:
        mean = s1 / m
        var = (s2 - s1 * s1 / m) / (m - 1)
        if var > 0.0:
            sharpe = mean / math.sqrt(var) * math.sqrt(bars_per_year)
        down = math.sqrt(sneg / m)
        if down > 0.0:
            sortino = mean / down * math.sqrt(bars_per_year)
    out[M_SHARPE] = sharpe
    out[M_SORTINO] = sortino
    out[M_MAX_DD] = dd_frac
    out[M_MAX_DD_CASH] = dd_cash
    if n_trades == 0:
        out[M_PROFIT_FACTOR] = nan
        out[M_WIN_RATE] = nan
        out[M_AVG_TRADE] = nan
    else:
        if gross_loss > 0.0:
            out[M_PROFIT_FACTOR] = gross_win / gross_loss
        elif gross_win > 0.0:
            out[M_PROFIT_FACTOR] = np.inf
        else:
            out[M_PROFIT_FACTOR] = nan
        out[M_WIN_RATE] = wins / n_trades
        out[M_AVG_TRADE] = (final - initial) / n_trades
    out[M_TRADES] = n_trades
    out[M_EXPOSURE] = exposed / n
    out[M_FINAL_EQUITY] = final


@njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def return_sums(eq: np.ndarray, prev_eq: float) -> tuple[float, float, float]:
    """Sums of r, r^2 and min(r, 0)^2 over a block, r = eq[j] / eq[j-1] - 1 (0 after eq <= 0).

    Reassociation lets LLVM vectorize the sums; they differ from a sequential sum only in
    rounding.
    """
    s1 = 0.0
    s2 = 0.0
    sneg = 0.0
    m = eq.shape[0]
    r = eq[0] / prev_eq - 1.0 if prev_eq > 0.0 else 0.0
    s1 += r
    s2 += r * r
    rn = min(r, 0.0)
    sneg += rn * rn
    for j in range(1, m):
        p = eq[j - 1]
        r = eq[j] / p - 1.0 if p > 0.0 else 0.0
        s1 += r
        s2 += r * r
        rn = min(r, 0.0)
        sneg += rn * rn
    return s1, s2, sneg


@njit(cache=True, nogil=True)
def _min_max(eq: np.ndarray) -> tuple[float, float]:
    """Smallest and largest value of a non-empty block (four independent chains: LLVM
    does not vectorize this float min/max reduction, so break the dependency by hand)."""
    m = eq.shape[0]
    lo0 = lo1 = lo2 = lo3 = eq[0]
    hi0 = hi1 = hi2 = hi3 = eq[0]
    j = 0
    while j + 4 <= m:
        a = eq[j]
        b = eq[j + 1]
        c = eq[j + 2]
        d = eq[j + 3]
        lo0 = min(lo0, a)
        lo1 = min(lo1, b)
        lo2 = min(lo2, c)
        lo3 = min(lo3, d)
        hi0 = max(hi0, a)
        hi1 = max(hi1, b)
        hi2 = max(hi2, c)
        hi3 = max(hi3, d)
        j += 4
    while j < m:
        a = eq[j]
        lo0 = min(lo0, a)
        hi0 = max(hi0, a)
        j += 1
    return min(min(lo0, lo1), min(lo2, lo3)), max(max(hi0, hi1), max(hi2, hi3))


@njit(cache=True, nogil=True)
def drawdown(
    eq: np.ndarray, peak: float, dd_frac: float, dd_cash: float
) -> tuple[float, float, float]:
    """Running peak and the largest fall from it, in currency and as a fraction of the peak.

    Most blocks hold no new high: the peak is then constant over the block and the largest
    fall is at the block's minimum (the same value a bar-by-bar scan finds).
    """
    lo, hi = _min_max(eq)
    if hi <= peak:
        d = peak - lo
        dd_cash = max(dd_cash, d)
        if d > dd_frac * peak:
            dd_frac = d / peak
        return peak, dd_frac, dd_cash
    for j in range(eq.shape[0]):
        e = eq[j]
        if e > peak:
            peak = e
        else:
            d = peak - e
            dd_cash = max(dd_cash, d)
            if d > dd_frac * peak:
                dd_frac = d / peak
    return peak, dd_frac, dd_cash


@njit(cache=True, nogil=True)
def init_state(state: np.ndarray, initial: float) -> None:
    """Reset ``state`` to a flat account holding ``initial`` (account currency)."""
    state[:] = 0.0
    state[S_CASH] = initial
    state[S_STOP] = np.nan
    state[S_TAKE] = np.nan
    state[S_PEND_STOP] = np.nan
    state[S_PEND_TAKE] = np.nan
    state[S_PEAK] = initial
    state[S_PREV_EQ] = initial
    state[S_FAST_PREV] = np.nan
    state[S_SLOW_PREV] = np.nan


@njit(cache=True, nogil=True)
def finish(state: np.ndarray, out: np.ndarray, n: int, cv: np.ndarray) -> None:
    """Write the metric vector of a parameter set that has run over all ``n`` bars."""
    finalize_metrics(
        out,
        n,
        cv[C_INITIAL],
        state[S_CASH],
        int(state[S_TRADES]),
        int(state[S_WINS]),
        state[S_GROSS_WIN],
        state[S_GROSS_LOSS],
        state[S_SUM_R],
        state[S_SUM_R2],
        state[S_SUM_NEG2],
        state[S_DD_FRAC],
        state[S_DD_CASH],
        int(state[S_EXPOSED]),
        cv[C_BARS_PER_YEAR],
        cv[C_YEARS],
    )
