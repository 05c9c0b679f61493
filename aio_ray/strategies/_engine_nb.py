"""Compiled kernels of the backtest engine: plain arrays in, arrays out (numba, cached).

One event loop, :func:`step`, advances one parameter set over a range of bars, applying the
rules of :mod:`aio_ray.strategies.fills`; its whole state lives in a small float64 vector
(slots ``S_*``), so a run can be cut into tiles and resumed. :func:`simulate` runs one set over
all bars (recording the trade list and equity curve if asked). The parallel drivers over many
parameter sets are in :mod:`aio_ray.strategies._batch_nb`, the metric kernels in
:mod:`aio_ray.strategies._metrics_nb`, the slot layouts (``TC_*``, ``M_*``, ``C_*``, ``S_*``) in
:mod:`aio_ray.strategies._engine_layout`; the engine's Python side imports each from its module.

The kernel stays in these few files, each with one job. ``step`` keeps its three quiet-bar
loops (held long, held short, flat) written out: moved into functions of their own, inlined
or called, they measured 50-70 % slower on the crossover batch path (and the single run 2x);
what they share, the signal test of a quiet bar, is one inlined function, :func:`~aio_ray.strategies._events_nb.quiet_signal`,
as are the bookkeeping of a closed trade (:func:`~aio_ray.strategies._events_nb.close_trade`), the order a bar's signals
give (:func:`~aio_ray.strategies._events_nb.order_of`) and an entry's stop and target levels (:func:`~aio_ray.strategies._events_nb.entry_levels`). Each
measured as fast as the code written out, with bit-identical results. The two batch drivers
stay two: one driver called with a per-source function was as fast but numba cannot cache it
(3.3 s of compiling in every process against 0.3 s), and one driver specialised on a literal
``mode`` was 1.5-2x slower. numba's
on-disk cache does not see a change in another file: after editing one of these modules or
``fills.py``, clear the caches (``make clean-kernels``).

Signal sources (``mode``): 0 reads the per-bar signal arrays; 1 derives them from two lines,
TradingView's ``ta.crossover`` / ``ta.crossunder`` (``a > b and a[1] <= b[1]``), with
``direction`` 0 (long and short, reversing), 1 (long only: cross under exits) or -1 (short
only: cross over exits); the stop / target distance of an entry at bar ``i`` is then
``stop_mult * base_dist[i]`` / ``take_mult * base_dist[i]``.

Swap: ``sw`` (n,) float64 holds the rollovers charged at each bar
(:func:`aio_ray.strategies.sessions.rollover_weights`, cached by ``kernel_inputs.swap_units_of``); a
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
from numba import njit

from aio_ray.strategies._engine_layout import (
    BLOCK,
    C_COMM_KIND,
    C_COMM_RATE,
    C_INITIAL,
    C_INTRABAR,
    C_LOT_STEP,
    C_PIP,
    C_RISK,
    C_SIZING,
    C_SLIP,
    C_SWAP_LONG,
    C_SWAP_SHORT,
    C_TICK,
    C_UNITS,
    N_STATE,
    S_CASH,
    S_DD_CASH,
    S_DD_FRAC,
    S_ENTRY_BAR,
    S_ENTRY_COMM,
    S_ENTRY_PX,
    S_EXPOSED,
    S_FAST_PREV,
    S_GROSS_LOSS,
    S_GROSS_WIN,
    S_HALTED,
    S_PEAK,
    S_PEND,
    S_PEND_STOP,
    S_PEND_TAKE,
    S_PEND_UNITS,
    S_POS,
    S_PREV_EQ,
    S_PROTECTED,
    S_QTY,
    S_SLOW_PREV,
    S_STOP,
    S_SUM_NEG2,
    S_SUM_R,
    S_SUM_R2,
    S_TAKE,
    S_TRADE_SWAP,
    S_TRADES,
    S_WINS,
)
from aio_ray.strategies._events_nb import close_trade, entry_levels, order_of, quiet_signal
from aio_ray.strategies._metrics_nb import (
    drawdown,
    finish,
    init_state,
    return_sums,
)
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
    entry_units,
    long_exit_fill,
    short_exit_fill,
    swap_charge,
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
                        signal, fp, sp = quiet_signal(u, mode, fast, slow, fp, sp, le, se, lx, sx)
                        if signal:
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
                        signal, fp, sp = quiet_signal(u, mode, fast, slow, fp, sp, le, se, lx, sx)
                        if signal:
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
                        signal, fp, sp = quiet_signal(u, mode, fast, slow, fp, sp, le, se, lx, sx)
                        if signal:
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
                    cash, k, wins, gross_win, gross_loss = close_trade(
                        trades, record, k, qty, entry_bar, i, entry_px, xp, entry_comm, xc,
                        trade_swap, reason, pip, cash, wins, gross_win, gross_loss,
                    )  # fmt: skip
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
                    cash, k, wins, gross_win, gross_loss = close_trade(
                        trades, record, k, qty, entry_bar, i, entry_px, xp, entry_comm, xc,
                        trade_swap, reason, pip, cash, wins, gross_win, gross_loss,
                    )  # fmt: skip
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
                o = order_of(mode, direction, pos, i, le, se, lx, sx, up, dn)
                if o == ORDER_LONG or o == ORDER_SHORT:
                    pend_stop, pend_take, sdist = entry_levels(
                        o, i, mode, sd, td, base_dist, stop_mult, take_mult, anchor, level_tick
                    )
                    pend_units = entry_units(sizing, units, risk, lot_step, eq, sdist)
                pend = o
            i += 1

        # 5. Streamed metrics over the block.
        r1, r2, rneg = return_sums(buf, prev_eq)
        s1 += r1
        s2 += r2
        sneg += rneg
        prev_eq = buf[b1 - b0 - 1]
        peak, dd_frac, dd_cash = drawdown(buf, peak, dd_frac, dd_cash)

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


__all__ = ["simulate", "step"]
