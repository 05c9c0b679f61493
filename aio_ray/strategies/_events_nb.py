"""Small compiled functions of the engine's event loop, inlined into
:func:`aio_ray.strategies._engine_nb.step` (``inline="always"``: numba copies them into the
loop, so they cost nothing at run time): a closed trade's bookkeeping, the signal test of a
quiet bar, the order a bar's signals give, and an entry's stop and target levels.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from aio_ray.strategies._engine_layout import (
    TC_COMMISSION,
    TC_ENTRY_BAR,
    TC_ENTRY_PRICE,
    TC_EXIT_BAR,
    TC_EXIT_PRICE,
    TC_PNL,
    TC_PNL_PIPS,
    TC_REASON,
    TC_SIDE,
    TC_SWAP,
    TC_UNITS,
)
from aio_ray.strategies.fills import decide_order, round_level

__all__ = ["close_trade", "entry_levels", "order_of", "quiet_signal"]


@njit(cache=True, nogil=True, inline="always")
def close_trade(
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
    cash: float,
    wins: int,
    gross_win: float,
    gross_loss: float,
) -> tuple[float, int, int, float, float]:
    """Close the position of ``qty`` signed units at ``exit_px``: its net P&L (commissions and
    ``swap`` included) goes into the win/loss tallies, and into ``trades[k]`` if ``record``.
    Returns ``(cash, trades, wins, gross_win, gross_loss)`` after the close."""
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
    cash += qty * exit_px - exit_comm
    if pnl > 0.0:
        wins += 1
        gross_win += pnl
    elif pnl < 0.0:
        gross_loss -= pnl
    return cash, k + 1, wins, gross_win, gross_loss


@njit(cache=True, nogil=True, inline="always")
def quiet_signal(
    u: np.uint64,
    mode: int,
    fast: np.ndarray,
    slow: np.ndarray,
    fp: float,
    sp: float,
    le: np.ndarray,
    se: np.ndarray,
    lx: np.ndarray,
    sx: np.ndarray,
) -> tuple[bool, float, float]:
    """Whether bar ``u`` has a signal (mode 1: a cross of the two lines, whose previous values
    ``fp``, ``sp`` advance past a quiet bar); returns ``(signal, fp, sp)``."""
    if mode == 1:
        f = fast[u]
        s = slow[u]
        if ((f > s) & (fp <= sp)) | ((f < s) & (fp >= sp)):
            return True, fp, sp
        return False, f, s
    return le[u] | se[u] | lx[u] | sx[u], fp, sp


@njit(cache=True, nogil=True, inline="always")
def order_of(
    mode: int,
    direction: int,
    pos: int,
    i: int,
    le: np.ndarray,
    se: np.ndarray,
    lx: np.ndarray,
    sx: np.ndarray,
    up: bool,
    dn: bool,
) -> int:
    """The order (``fills.ORDER_*``) bar ``i``'s signals give a position ``pos``: mode 0 the
    signal arrays; mode 1 the cross ``up`` / ``dn`` read for ``direction`` (0 both ways,
    reversing; 1 long only, a cross under exits; -1 short only, a cross over exits)."""
    if mode == 0:
        return decide_order(pos, le[i], se[i], lx[i], sx[i])
    if direction == 0:
        return decide_order(pos, up, dn, False, False)
    if direction > 0:
        return decide_order(pos, up, False, dn, False)
    return decide_order(pos, False, dn, False, up)


@njit(cache=True, nogil=True, inline="always")
def entry_levels(
    o: int,
    i: int,
    mode: int,
    sd: np.ndarray,
    td: np.ndarray,
    base_dist: np.ndarray,
    stop_mult: float,
    take_mult: float,
    anchor: np.ndarray,
    level_tick: float,
) -> tuple[float, float, float]:
    """Stop and target levels (quote currency; NaN: none) of an entry of side ``o`` decided at
    bar ``i``, anchored at its close and rounded to ``level_tick`` when > 0; returns
    ``(stop, take, stop distance)``. Distances: mode 0 ``sd[i]``, ``td[i]``; mode 1
    ``stop_mult * base_dist[i]``, ``take_mult * base_dist[i]`` (a NaN multiplier: none)."""
    if mode == 0:
        sdist = sd[i]
        tdist = td[i]
    else:
        sdist = stop_mult * base_dist[i] if not math.isnan(stop_mult) else np.nan
        tdist = take_mult * base_dist[i] if not math.isnan(take_mult) else np.nan
    a = anchor[i]
    stop = a - o * sdist
    take = a + o * tdist
    if level_tick > 0.0:
        stop = round_level(stop, a, level_tick)
        take = round_level(take, a, level_tick)
    return stop, take, sdist
