"""Compiled kernels of the backtest engine: plain arrays in, arrays out (numba, cached).

One event loop, :func:`step`, advances one parameter set over a range of bars, applying the
rules of :mod:`aio_ray.strategies.fills`; its whole state lives in a small float64 vector
(slots ``S_*``), so a run can be cut into tiles and resumed. :func:`simulate` runs one set over
all bars (recording the trade list and equity curve if asked). Two parallel drivers run many
parameter sets with ``numba.prange``: :func:`batch_signals` (precomputed signal matrices) and
:func:`batch_crossover` (two-line crossovers derived in the loop from shared line series). Both
walk the bars tile by tile (``TILE`` bars), running every parameter set of a thread over a tile
before the next one, so a tile's prices and lines are read from cache, not memory.

Signal sources (``mode``): 0 reads the per-bar signal arrays; 1 derives them from two lines,
TradingView's ``ta.crossover`` / ``ta.crossunder`` (``a > b and a[1] <= b[1]``), with
``direction`` 0 (long and short, reversing), 1 (long only: cross under exits) or -1 (short
only: cross over exits); the stop / target distance of an entry at bar ``i`` is then
``stop_mult * base_dist[i]`` / ``take_mult * base_dist[i]``.

Swap: ``sw`` (n,) float64 holds the rollovers charged at each bar
(:func:`aio_ray.strategies.sessions.rollover_weights`, cached by ``BarArrays.swap_units``); a
position held at the close of bar ``i - 1`` pays ``fills.swap_charge(sw[i], rate, units)`` into
cash at the start of bar ``i`` (``C_SWAP_LONG`` / ``C_SWAP_SHORT``). The quiet-bar loops hand a
rollover bar to the general path, which charges it, so the swap reaches equity, returns, net
profit and the trade's P&L on every path alike.

The metrics are streamed (no per-bar allocation): each block of per-bar equity goes to a small
buffer, then to tight loops for the return sums and the drawdown. Trade records (``trades``,
shape (n, N_TRADE_COLS)) use the column indices ``TC_*``; the metrics vector ``out`` follows
:data:`aio_ray.strategies.metrics.METRIC_NAMES`; the configuration vector ``cv`` the ``C_*``
slots.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from aio_ray.strategies.fills import (
    EXIT_END,
    EXIT_REVERSE,
    EXIT_SIGNAL,
    ORDER_LONG,
    ORDER_NONE,
    ORDER_SHORT,
    ROW_ANCHOR,
    ROW_BUY_CLOSE,
    ROW_BUY_HIGH,
    ROW_BUY_LOW,
    ROW_BUY_OPEN,
    ROW_SELL_CLOSE,
    ROW_SELL_HIGH,
    ROW_SELL_LOW,
    ROW_SELL_OPEN,
    commission,
    decide_order,
    entry_units,
    long_exit_fill,
    round_level,
    short_exit_fill,
    swap_charge,
)

# Trade record columns.
TC_ENTRY_BAR = 0
TC_EXIT_BAR = 1
TC_SIDE = 2
TC_UNITS = 3
TC_ENTRY_PRICE = 4
TC_EXIT_PRICE = 5
TC_COMMISSION = 6
TC_PNL = 7
TC_PNL_PIPS = 8
TC_REASON = 9
TC_SWAP = 10  # swap of the trade (account currency; included in TC_PNL)
N_TRADE_COLS = 11

# Metric vector slots (same order as metrics.METRIC_NAMES).
M_NET_PROFIT = 0
M_TOTAL_RETURN = 1
M_CAGR = 2
M_SHARPE = 3
M_SORTINO = 4
M_MAX_DD = 5
M_MAX_DD_CASH = 6
M_PROFIT_FACTOR = 7
M_WIN_RATE = 8
M_TRADES = 9
M_EXPOSURE = 10
M_AVG_TRADE = 11
M_FINAL_EQUITY = 12
N_METRICS = 13

BLOCK = 1024  # bars per equity block (8 KiB: stays in L1)
TILE = 4096  # bars per tile in the batch drivers (prices + lines of a tile stay in L2)

# Configuration vector slots (shared by every parameter set of a run).
C_INITIAL = 0  # initial capital, account currency
C_SIZING = 1  # fills.SIZING_*
C_UNITS = 2  # fixed units
C_RISK = 3  # risk fraction of equity
C_LOT_STEP = 4  # units
C_COMM_KIND = 5  # fills.COMM_*
C_COMM_RATE = 6
C_SLIP = 7  # price units
C_PIP = 8  # price units
C_BARS_PER_YEAR = 9
C_YEARS = 10
C_INTRABAR = 11  # fills.INTRABAR_*
C_TICK = 12  # level tick, price units; 0: levels not rounded
C_SWAP_LONG = 13  # account currency per lot per rollover held long (negative: charged)
C_SWAP_SHORT = 14  # the same, held short
N_CONFIG = 15

# State vector slots of one parameter set (integers and flags stored as float64).
S_CASH = 0
S_POS = 1
S_QTY = 2
S_ENTRY_PX = 3
S_ENTRY_BAR = 4
S_ENTRY_COMM = 5
S_STOP = 6
S_TAKE = 7
S_PROTECTED = 8
S_PEND = 9
S_PEND_UNITS = 10
S_PEND_STOP = 11
S_PEND_TAKE = 12
S_HALTED = 13
S_TRADES = 14
S_WINS = 15
S_GROSS_WIN = 16
S_GROSS_LOSS = 17
S_SUM_R = 18
S_SUM_R2 = 19
S_SUM_NEG2 = 20
S_PEAK = 21
S_DD_FRAC = 22
S_DD_CASH = 23
S_EXPOSED = 24
S_PREV_EQ = 25
S_FAST_PREV = 26
S_SLOW_PREV = 27
S_TRADE_SWAP = 28  # swap of the open trade so far, account currency
N_STATE = 29


@njit(cache=True, nogil=True)
def _book(
    trades: np.ndarray,
    record: bool,
    k: int,
    qty: float,
    entry_bar: int,
    exit_bar: int,
    entry_px: float,
    exit_px: float,
    entry_comm: float,
    exit_comm: float,
    swap: float,
    reason: int,
    pip: float,
) -> float:
    """Net P&L of a closed trade (``qty`` signed units), commission and ``swap`` included;
    records it as row ``k`` if asked."""
    pnl = qty * (exit_px - entry_px) - entry_comm - exit_comm + swap
    if record:
        side = 1.0 if qty > 0.0 else -1.0
        row = trades[k]
        row[TC_ENTRY_BAR] = entry_bar
        row[TC_EXIT_BAR] = exit_bar
        row[TC_SIDE] = side
        row[TC_UNITS] = abs(qty)
        row[TC_ENTRY_PRICE] = entry_px
        row[TC_EXIT_PRICE] = exit_px
        row[TC_COMMISSION] = entry_comm + exit_comm
        row[TC_PNL] = pnl
        row[TC_PNL_PIPS] = side * (exit_px - entry_px) / pip
        row[TC_REASON] = reason
        row[TC_SWAP] = swap
    return pnl


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
def _return_sums(eq: np.ndarray, prev_eq: float) -> tuple[float, float, float]:
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
def _drawdown(
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


@njit(cache=True, nogil=True)
def step(
    state: np.ndarray,
    i0: int,
    i1: int,
    px: np.ndarray,
    sw: np.ndarray,
    cv: np.ndarray,
    mode: int,
    le: np.ndarray,
    se: np.ndarray,
    lx: np.ndarray,
    sx: np.ndarray,
    sd: np.ndarray,
    td: np.ndarray,
    fast: np.ndarray,
    slow: np.ndarray,
    base_dist: np.ndarray,
    stop_mult: float,
    take_mult: float,
    direction: int,
    record: bool,
    trades: np.ndarray,
    equity: np.ndarray,
    scratch: np.ndarray,
) -> None:
    """Advance one parameter set over bars ``[i0, i1)`` from ``state`` (updated in place).

    ``px`` is the (9, n) price matrix (rows ``fills.ROW_*``; quote currency), ``sw`` the (n,)
    rollovers per bar, ``cv`` the configuration vector (``C_*``). With ``record``, closed
    trades go to ``trades`` and each bar's equity to ``equity``; otherwise ``scratch``
    (>= BLOCK floats) buffers the equity.
    The loop keeps the common bar (no order, no touch, no signal) to a few loads and
    compares; every fill goes through :mod:`aio_ray.strategies.fills`.
    """
    n = px.shape[1]
    last = n - 1
    buy_open = px[ROW_BUY_OPEN]
    sell_open = px[ROW_SELL_OPEN]
    sell_high = px[ROW_SELL_HIGH]
    sell_low = px[ROW_SELL_LOW]
    buy_high = px[ROW_BUY_HIGH]
    buy_low = px[ROW_BUY_LOW]
    sell_close = px[ROW_SELL_CLOSE]
    buy_close = px[ROW_BUY_CLOSE]
    anchor = px[ROW_ANCHOR]
    nan = np.nan

    sizing = int(cv[C_SIZING])
    units = cv[C_UNITS]
    risk = cv[C_RISK]
    lot_step = cv[C_LOT_STEP]
    comm_kind = int(cv[C_COMM_KIND])
    comm_rate = cv[C_COMM_RATE]
    slip = cv[C_SLIP]
    pip = cv[C_PIP]
    intrabar = int(cv[C_INTRABAR])
    level_tick = cv[C_TICK]
    swap_long = cv[C_SWAP_LONG]
    swap_short = cv[C_SWAP_SHORT]
    has_swap = swap_long != 0.0 or swap_short != 0.0
    has_stop_mult = not math.isnan(stop_mult)
    has_take_mult = not math.isnan(take_mult)

    cash = state[S_CASH]
    pos = int(state[S_POS])  # held side: 1 long, -1 short, 0 flat
    qty = state[S_QTY]  # signed units held
    entry_px = state[S_ENTRY_PX]
    entry_bar = int(state[S_ENTRY_BAR])
    entry_comm = state[S_ENTRY_COMM]
    trade_swap = state[S_TRADE_SWAP]
    stop = state[S_STOP]
    take = state[S_TAKE]
    protected = state[S_PROTECTED] != 0.0
    pend = int(state[S_PEND])
    pend_units = state[S_PEND_UNITS]
    pend_stop = state[S_PEND_STOP]
    pend_take = state[S_PEND_TAKE]
    halted = state[S_HALTED] != 0.0
    k = int(state[S_TRADES])
    wins = int(state[S_WINS])
    gross_win = state[S_GROSS_WIN]
    gross_loss = state[S_GROSS_LOSS]
    s1 = state[S_SUM_R]
    s2 = state[S_SUM_R2]
    sneg = state[S_SUM_NEG2]
    peak = state[S_PEAK]
    dd_frac = state[S_DD_FRAC]
    dd_cash = state[S_DD_CASH]
    exposed = int(state[S_EXPOSED])
    prev_eq = state[S_PREV_EQ]
    fp = state[S_FAST_PREV]
    sp = state[S_SLOW_PREV]
    eq = cash

    for b0 in range(i0, i1, BLOCK):
        b1 = min(b0 + BLOCK, i1)
        # The event loop writes each bar's equity to a block buffer; the metrics are then
        # streamed over the block by tight loops of their own.
        buf = equity[b0:b1] if record else scratch[: b1 - b0]
        quiet_end = min(b1, last)  # the last bar always takes the general path
        i = b0
        while i < b1:
            # Fast-forward over quiet bars: no order to fill, no level touched, no signal,
            # equity > 0. Each loop does exactly what the general path below would do on
            # such a bar, with fewer branches; any event breaks out to the general path.
            if pend == ORDER_NONE:
                if pos > 0:
                    # Unsigned indices: numba adds no negative-index wraparound to them.
                    u = np.uint64(i)
                    u_end = np.uint64(quiet_end)
                    ub0 = np.uint64(b0)
                    one = np.uint64(1)
                    while u < u_end:
                        if sell_low[u] <= stop or sell_high[u] >= take:
                            break
                        if has_swap and sw[u] != 0.0:
                            break
                        eq = cash + qty * sell_close[u]
                        if eq <= 0.0:
                            break
                        if mode == 1:
                            f = fast[u]
                            s = slow[u]
                            if ((f > s) & (fp <= sp)) | ((f < s) & (fp >= sp)):
                                break
                            fp = f
                            sp = s
                        elif le[u] | se[u] | lx[u] | sx[u]:
                            break
                        buf[u - ub0] = eq
                        u += one
                    i_new = int(np.int64(u))
                    exposed += i_new - i
                    i = i_new
                elif pos < 0:
                    u = np.uint64(i)
                    u_end = np.uint64(quiet_end)
                    ub0 = np.uint64(b0)
                    one = np.uint64(1)
                    while u < u_end:
                        if buy_high[u] >= stop or buy_low[u] <= take:
                            break
                        if has_swap and sw[u] != 0.0:
                            break
                        eq = cash + qty * buy_close[u]
                        if eq <= 0.0:
                            break
                        if mode == 1:
                            f = fast[u]
                            s = slow[u]
                            if ((f > s) & (fp <= sp)) | ((f < s) & (fp >= sp)):
                                break
                            fp = f
                            sp = s
                        elif le[u] | se[u] | lx[u] | sx[u]:
                            break
                        buf[u - ub0] = eq
                        u += one
                    i_new = int(np.int64(u))
                    exposed += i_new - i
                    i = i_new
                else:
                    eq = cash
                    u = np.uint64(i)
                    u_end = np.uint64(quiet_end)
                    ub0 = np.uint64(b0)
                    one = np.uint64(1)
                    while u < u_end:
                        if mode == 1:
                            f = fast[u]
                            s = slow[u]
                            if ((f > s) & (fp <= sp)) | ((f < s) & (fp >= sp)):
                                break
                            fp = f
                            sp = s
                        elif le[u] | se[u] | lx[u] | sx[u]:
                            break
                        buf[u - ub0] = eq
                        u += one
                    i = int(np.int64(u))
                if i >= b1:
                    break

            # General path for bar i.
            # 0. Rollover: the position held since the previous close pays its swap.
            if pos != 0 and has_swap and sw[i] != 0.0:
                sc = swap_charge(sw[i], swap_long if pos > 0 else swap_short, abs(qty))
                cash += sc
                trade_swap += sc
            # 1. Open: the order decided at the previous close.
            if pend != ORDER_NONE:
                if pos != 0 and pend != pos:
                    if pos > 0:
                        xp = sell_open[i] - slip
                    else:
                        xp = buy_open[i] + slip
                    xc = commission(comm_kind, comm_rate, abs(qty), xp)
                    reason = EXIT_REVERSE if pend == -pos else EXIT_SIGNAL
                    pnl = _book(
                        trades,
                        record,
                        k,
                        qty,
                        entry_bar,
                        i,
                        entry_px,
                        xp,
                        entry_comm,
                        xc,
                        trade_swap,
                        reason,
                        pip,
                    )
                    cash += qty * xp - xc
                    k += 1
                    if pnl > 0.0:
                        wins += 1
                        gross_win += pnl
                    elif pnl < 0.0:
                        gross_loss -= pnl
                    pos = 0
                    qty = 0.0
                if (pend == ORDER_LONG or pend == ORDER_SHORT) and pend_units > 0.0:
                    if pend > 0:
                        ep = buy_open[i] + slip
                    else:
                        ep = sell_open[i] - slip
                    entry_comm = commission(comm_kind, comm_rate, pend_units, ep)
                    pos = pend
                    qty = pend * pend_units
                    cash -= qty * ep + entry_comm
                    entry_px = ep
                    entry_bar = i
                    trade_swap = 0.0
                    stop = pend_stop
                    take = pend_take
                    protected = not (math.isnan(stop) and math.isnan(take))
                pend = ORDER_NONE
                if cash <= 0.0 and pos == 0:
                    halted = True

            if pos != 0:
                exposed += 1
                # 2. Inside the bar: stop and target. Fast path first: the bar's range
                # (which contains its open) touches neither level on most bars.
                reason = -1
                xp = 0.0
                if protected:
                    if pos > 0:
                        if sell_low[i] <= stop or sell_high[i] >= take:
                            reason, xp = long_exit_fill(
                                sell_open[i],
                                sell_high[i],
                                sell_low[i],
                                stop,
                                take,
                                slip,
                                intrabar,
                                entry_bar == i,
                            )
                    elif buy_high[i] >= stop or buy_low[i] <= take:
                        reason, xp = short_exit_fill(
                            buy_open[i],
                            buy_high[i],
                            buy_low[i],
                            stop,
                            take,
                            slip,
                            intrabar,
                            entry_bar == i,
                        )
                # 3. Close: mark to market; "end" close on the last bar or at ruin.
                if reason < 0:
                    # (a branch on the side: an array variable switched per trade is slower)
                    mk = sell_close[i] if pos > 0 else buy_close[i]
                    eq = cash + qty * mk
                    if i == last or eq <= 0.0:
                        reason = EXIT_END
                        xp = mk
                if reason >= 0:
                    xc = commission(comm_kind, comm_rate, abs(qty), xp)
                    pnl = _book(
                        trades,
                        record,
                        k,
                        qty,
                        entry_bar,
                        i,
                        entry_px,
                        xp,
                        entry_comm,
                        xc,
                        trade_swap,
                        reason,
                        pip,
                    )
                    cash += qty * xp - xc
                    k += 1
                    if pnl > 0.0:
                        wins += 1
                        gross_win += pnl
                    elif pnl < 0.0:
                        gross_loss -= pnl
                    pos = 0
                    qty = 0.0
                    eq = cash
                    if cash <= 0.0:
                        halted = True
            else:
                eq = cash
            buf[i - b0] = eq

            # 4. Signals of this bar decide the order for the next open.
            if mode == 1:
                f = fast[i]
                s = slow[i]
                up = (f > s) & (fp <= sp)
                dn = (f < s) & (fp >= sp)
                fp = f
                sp = s
                act = up | dn
            else:
                up = False
                dn = False
                act = le[i] | se[i] | lx[i] | sx[i]
            if act and not halted and i < last:
                if mode == 0:
                    o = decide_order(pos, le[i], se[i], lx[i], sx[i])
                elif direction == 0:
                    o = decide_order(pos, up, dn, False, False)
                elif direction > 0:
                    o = decide_order(pos, up, False, dn, False)
                else:
                    o = decide_order(pos, False, dn, False, up)
                if o == ORDER_LONG or o == ORDER_SHORT:
                    if mode == 0:
                        sdist = sd[i]
                        tdist = td[i]
                    else:
                        sdist = stop_mult * base_dist[i] if has_stop_mult else nan
                        tdist = take_mult * base_dist[i] if has_take_mult else nan
                    a = anchor[i]
                    pend_stop = a - o * sdist
                    pend_take = a + o * tdist
                    if level_tick > 0.0:
                        pend_stop = round_level(pend_stop, a, level_tick)
                        pend_take = round_level(pend_take, a, level_tick)
                    pend_units = entry_units(sizing, units, risk, lot_step, eq, sdist)
                pend = o
            i += 1

        # 5. Streamed metrics over the block.
        r1, r2, rneg = _return_sums(buf, prev_eq)
        s1 += r1
        s2 += r2
        sneg += rneg
        prev_eq = buf[b1 - b0 - 1]
        peak, dd_frac, dd_cash = _drawdown(buf, peak, dd_frac, dd_cash)

    state[S_CASH] = cash
    state[S_POS] = pos
    state[S_QTY] = qty
    state[S_ENTRY_PX] = entry_px
    state[S_ENTRY_BAR] = entry_bar
    state[S_ENTRY_COMM] = entry_comm
    state[S_TRADE_SWAP] = trade_swap
    state[S_STOP] = stop
    state[S_TAKE] = take
    state[S_PROTECTED] = 1.0 if protected else 0.0
    state[S_PEND] = pend
    state[S_PEND_UNITS] = pend_units
    state[S_PEND_STOP] = pend_stop
    state[S_PEND_TAKE] = pend_take
    state[S_HALTED] = 1.0 if halted else 0.0
    state[S_TRADES] = k
    state[S_WINS] = wins
    state[S_GROSS_WIN] = gross_win
    state[S_GROSS_LOSS] = gross_loss
    state[S_SUM_R] = s1
    state[S_SUM_R2] = s2
    state[S_SUM_NEG2] = sneg
    state[S_PEAK] = peak
    state[S_DD_FRAC] = dd_frac
    state[S_DD_CASH] = dd_cash
    state[S_EXPOSED] = exposed
    state[S_PREV_EQ] = prev_eq
    state[S_FAST_PREV] = fp
    state[S_SLOW_PREV] = sp


@njit(cache=True, nogil=True)
def simulate(
    px: np.ndarray,
    sw: np.ndarray,
    cv: np.ndarray,
    le: np.ndarray,
    se: np.ndarray,
    lx: np.ndarray,
    sx: np.ndarray,
    sd: np.ndarray,
    td: np.ndarray,
    trades: np.ndarray,
    equity: np.ndarray,
    out: np.ndarray,
) -> int:
    """One signal set over all bars: trades (rows of ``trades``), per-bar ``equity`` and the
    metric vector ``out``; ``sw`` (n,) the rollovers per bar. Returns the number of trades."""
    n = px.shape[1]
    state = np.empty(N_STATE, dtype=np.float64)
    init_state(state, cv[C_INITIAL])
    ef = np.empty(0, dtype=np.float64)
    step(
        state,
        0,
        n,
        px,
        sw,
        cv,
        0,
        le,
        se,
        lx,
        sx,
        sd,
        td,
        ef,
        ef,
        ef,
        np.nan,
        np.nan,
        0,
        True,
        trades,
        equity,
        ef,
    )
    finish(state, out, n, cv)
    return int(state[S_TRADES])


@njit(cache=True, parallel=True)
def batch_signals(
    px: np.ndarray,
    sw: np.ndarray,
    cv: np.ndarray,
    le: np.ndarray,
    se: np.ndarray,
    lx: np.ndarray,
    sx: np.ndarray,
    sd: np.ndarray,
    td: np.ndarray,
    n_threads: int,
    out: np.ndarray,
) -> None:
    """Metrics of P precomputed signal sets (``le`` etc. shape (P, n); ``sd``/``td`` shape
    (P, n) or (1, n) shared; ``sw`` (n,) rollovers per bar) into ``out`` (P, N_METRICS),
    parallel over parameter sets."""
    n = px.shape[1]
    n_sets = le.shape[0]
    n_chunks = max(1, min(n_sets, n_threads))
    states = np.empty((n_sets, N_STATE), dtype=np.float64)
    for p in range(n_sets):
        init_state(states[p], cv[C_INITIAL])
    for c in prange(n_chunks):
        p0 = c * n_sets // n_chunks
        p1 = (c + 1) * n_sets // n_chunks
        ef = np.empty(0, dtype=np.float64)
        et = np.empty((0, 0), dtype=np.float64)
        scratch = np.empty(BLOCK, dtype=np.float64)
        for t0 in range(0, n, TILE):
            t1 = min(t0 + TILE, n)
            for p in range(p0, p1):
                sdr = sd[p] if sd.shape[0] > 1 else sd[0]
                tdr = td[p] if td.shape[0] > 1 else td[0]
                step(
                    states[p],
                    t0,
                    t1,
                    px,
                    sw,
                    cv,
                    0,
                    le[p],
                    se[p],
                    lx[p],
                    sx[p],
                    sdr,
                    tdr,
                    ef,
                    ef,
                    ef,
                    np.nan,
                    np.nan,
                    0,
                    False,
                    et,
                    ef,
                    scratch,
                )
    for p in range(n_sets):
        finish(states[p], out[p], n, cv)


@njit(cache=True, parallel=True)
def batch_crossover(
    px: np.ndarray,
    sw: np.ndarray,
    cv: np.ndarray,
    lines: np.ndarray,
    fast_idx: np.ndarray,
    slow_idx: np.ndarray,
    base_dist: np.ndarray,
    stop_mult: np.ndarray,
    take_mult: np.ndarray,
    direction: int,
    n_threads: int,
    out: np.ndarray,
) -> None:
    """Metrics of P crossovers ``lines[fast_idx[p]]`` x ``lines[slow_idx[p]]`` into ``out``
    (P, N_METRICS), parallel over parameter sets; ``stop_mult``/``take_mult`` (P,), NaN: none.
    The sets are cut into ``n_threads`` contiguous chunks, one per thread."""
    n = px.shape[1]
    n_sets = fast_idx.shape[0]
    n_chunks = max(1, min(n_sets, n_threads))
    states = np.empty((n_sets, N_STATE), dtype=np.float64)
    for p in range(n_sets):
        init_state(states[p], cv[C_INITIAL])
    for c in prange(n_chunks):
        p0 = c * n_sets // n_chunks
        p1 = (c + 1) * n_sets // n_chunks
        eb = np.empty(0, dtype=np.bool_)
        ef = np.empty(0, dtype=np.float64)
        et = np.empty((0, 0), dtype=np.float64)
        scratch = np.empty(BLOCK, dtype=np.float64)
        for t0 in range(0, n, TILE):
            t1 = min(t0 + TILE, n)
            for p in range(p0, p1):
                step(
                    states[p],
                    t0,
                    t1,
                    px,
                    sw,
                    cv,
                    1,
                    eb,
                    eb,
                    eb,
                    eb,
                    ef,
                    ef,
                    lines[fast_idx[p]],
                    lines[slow_idx[p]],
                    base_dist,
                    stop_mult[p],
                    take_mult[p],
                    direction,
                    False,
                    et,
                    ef,
                    scratch,
                )
    for p in range(n_sets):
        finish(states[p], out[p], n, cv)
