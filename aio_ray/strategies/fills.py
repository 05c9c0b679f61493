"""THE fill rules of the backtest engine, written down and implemented in one place.

The kernels in :mod:`aio_ray.strategies._engine_nb` call the small compiled functions below and
nothing else decides a price. The Pine generator must emit scripts that behave the same way,
and the PineTS parity check verifies the same trades, so each rule is stated precisely.

Timeline of one bar ``i``
-------------------------
1. **Open.** The order decided at the close of bar ``i - 1`` (if any) fills at bar ``i``'s
   open: first the close of the held position (reason ``"signal"`` for an exit signal,
   ``"reverse"`` when an opposite entry reverses it), then the new entry. A reversal is one
   order, as ``strategy.entry`` against an open position does in TradingView: the old trade
   exits and the new one enters at the same open price.
2. **Inside the bar.** A held position's stop and target (placed by the entry signal) are
   checked, on the entry bar too: the entry fills at the open, the stop can trigger later in
   that bar. In this order, the first rule that matches fills:

   =====  ============================  ===========================  =========================
   step   long position                 short position               fill price
   =====  ============================  ===========================  =========================
   a      sell open <= stop             buy open >= stop             the open (gap), "stop"
   b      sell open >= target           buy open <= target           the open (gap), "take"
   c      sell low <= stop              buy high >= stop             the stop, "stop"
   d      sell high >= target           buy low <= target            the target, "take"
   =====  ============================  ===========================  =========================

   So a bar that touches both the stop and the target takes the stop (conservative, also
   backtesting.py's order; the default, ``intrabar="stop_first"``, used for ranking). A
   position closed inside the bar cannot re-enter before the next bar's open.

   ``intrabar="tradingview"`` models TradingView's broker emulator as PineTS 0.9.34
   implements it (``processExitOrders`` in its ``namespaces/strategy/utils.ts``):

   - a position held from an earlier bar first exits at a gapped open (steps a, b);
   - then, if both levels are reached (long: ``low <= stop`` and ``high >= target``), the
     path is assumed to go first to the extreme nearer the open: ``|high - open| <=
     |open - low|`` (ties count as nearer the high) means open -> high -> low -> close, so
     a long takes the target and a short the stop; otherwise a long takes the stop and a
     short the target. One level only: that level. Fill at the level, or at the open when
     the open is already past it;
   - on the entry bar there is no gap step: the same rule applies to the bar's range, and a
     short's stop already passed at its entry open does not catch it (PineTS: "buy stop
     spares fresh entry"); its target still can, else the next bar's gap step exits.

3. **Close.** The position is marked to market (long at the sell close, short at the buy
   close) to give the bar's equity. On the last bar an open position is closed at that mark,
   exit commission charged, no slippage, reason ``"end"``. If equity is <= 0 at a close, the
   position is closed the same way (reason ``"end"``) and the account stops trading (ruin).
4. **Signals.** The signals of bar ``i`` decide the order for bar ``i + 1``'s open (none on
   the last bar):

   - ``go_long = long_entry & ~short_entry & ~long_exit``;
     ``go_short = short_entry & ~long_entry & ~short_exit``. Conflicting entries cancel each
     other, and an exit signal cancels a same-side entry on the same bar.
   - flat: ``go_long`` buys, else ``go_short`` sells.
   - long: ``go_short`` reverses; else ``long_exit`` closes; a long entry is ignored (no
     pyramiding). Short: mirrored.

   The Pine generator emits exactly this (``pyramiding=0``): on each bar close, first
   ``strategy.close`` for ``long_exit`` / ``short_exit`` when no reversal is due, then
   ``strategy.entry`` guarded by ``go_long`` / ``go_short`` (which also set the ``var``
   stop / target levels below), and ``strategy.exit(from_entry=..., stop=..., limit=...)``
   with those ``var`` levels on *every* bar, not only the signal bar (the broker emulator
   re-reads them each bar; they do not change during a trade). The order of the calls
   then never matters.

Price series ("price models")
-----------------------------
- ``bidask``: buys fill at the ask, sells at the bid. "Buy open" is the ask open, "sell low"
  the bid low, and so on: a long's stop is triggered by the bid low and a short's by the ask
  high. Costs: commission per lot (100,000 units) per side, plus optional slippage.
- ``single``: one series (the signal series' OHLC) for buys and sells, costs as Pine's
  ``strategy()`` declares them.

Stops and targets
-----------------
Anchored at the *signal* bar's close of the signal series (what the Pine script sees as
``close``): long ``stop = close[i] - stop_dist[i]``, ``target = close[i] + take_dist[i]``;
short mirrored. NaN distance: no such order. Fixed for the life of the trade.

Tick-rounded levels (``level_tick``, None by default): Pine orders sit on the mintick grid,
rounded away from the close of the bar placing them (PineTS ``roundToMintick``: above the
close ``ceil(level / tick - eps) * tick``, below ``floor(level / tick + eps) * tick``, equal
unchanged). The engine rounds the two levels at the signal bar, against its close, with
``eps =`` :data:`LEVEL_TICK_EPS` (1e-3 tick): PineTS' own eps is 1e-9 tick, but the
generated scripts round first with 1e-3 (and store the tick a quarter tick toward the
close), so 1e-3 is the rule that decides; PineTS' rounding then leaves the tick as it is.

Slippage and commission
-----------------------
- Slippage (``slippage_points`` x ``point_size``, Pine's ``slippage`` in ticks) moves market
  fills and stop fills (also a stop filled at a gapped open) against the order. Limit fills
  (targets) get none, as in TradingView. The ``"end"`` close gets none.
- Commission is charged on every fill of every trade, entry and exit: ``per_lot``: rate x
  units / 100,000; ``percent``: rate / 100 x units x fill price; ``cash_per_order``: rate.
  A reversal therefore pays the exit of the old trade and the entry of the new one
  (TradingView books a reversal as one order; with ``cash_per_order`` it may charge it once).

Swap (overnight financing)
--------------------------
A position held across the 17:00 America/New_York close (the FX rollover) is charged or paid
the swap of its side: ``swap_long`` / ``swap_short`` in account currency per lot (100,000
units) per rollover, negative = charged. Wednesday's rollover counts three times (spot value
dates skip the weekend), every other weekday's once; a gap between two bars counts every
rollover it spans (a weekend gap: Friday's once). ``rollover_weights`` of
:mod:`aio_ray.strategies.sessions` gives, per bar ``i``, the rollovers between the opens of
bars ``i - 1`` and ``i``; the position held at the close of bar ``i - 1`` pays
``weight x rate x units / 100,000`` at the start of bar ``i``, before that bar's open fills
(so a position closed at the first open after 17:00 still pays; one opened and closed inside
a trading day pays none). The swap goes into cash, hence into equity, per-bar returns and net
profit, and into the trade's ``pnl`` (its total is the trade's ``swap``). TradingView models
no swap: its figures omit it (the Pine header says so).

Sizing
------
``fixed``: ``units`` per trade. ``risk``: ``floor(equity * risk_fraction / stop_dist /
lot_step) * lot_step`` units, equity marked at the signal bar's close; with no stop (NaN
distance) it falls back to ``units``. Zero units: no entry (a reversal still closes).
There is no margin model.

Account currency is the quote currency (USD for EURUSD); P&L in pips is
``side * (exit - entry) / pip_size`` before commission and swap.

Where TradingView's broker emulator may differ (compare the ``single`` model, zero costs)
---------------------------------------------------------------------------------------
- a bar touching both the stop and the target under ``stop_first`` (use ``tradingview``);
- a level equal to a bar's price as a decimal (float last-bit ties), which PineTS may also
  re-round against a later bar's close;
- the last open trade: TradingView leaves it open, we close it (``"end"``): drop it;
- ruin: TradingView has its own margin-call model, we close and stop at equity <= 0;
- swap: TradingView charges none (set ``swap_long = swap_short = 0`` to compare);
- ``cash_per_order`` on a reversal (see above).
"""

from __future__ import annotations

import math

from numba import njit

__all__ = [
    "COMMISSION_TYPES",
    "COMM_CASH_PER_ORDER",
    "COMM_PERCENT",
    "COMM_PER_LOT",
    "EXIT_END",
    "EXIT_REASONS",
    "EXIT_REVERSE",
    "EXIT_SIGNAL",
    "EXIT_STOP",
    "EXIT_TAKE",
    "INTRABAR_MODES",
    "INTRABAR_STOP_FIRST",
    "INTRABAR_TRADINGVIEW",
    "LEVEL_TICK_EPS",
    "LOT_UNITS",
    "N_PRICE_ROWS",
    "ORDER_CLOSE",
    "ORDER_LONG",
    "ORDER_NONE",
    "ORDER_SHORT",
    "PRICE_MODELS",
    "ROW_ANCHOR",
    "ROW_BUY_CLOSE",
    "ROW_BUY_HIGH",
    "ROW_BUY_LOW",
    "ROW_BUY_OPEN",
    "ROW_SELL_CLOSE",
    "ROW_SELL_HIGH",
    "ROW_SELL_LOW",
    "ROW_SELL_OPEN",
    "SIZING_FIXED",
    "SIZING_MODES",
    "SIZING_RISK",
    "commission",
    "decide_order",
    "entry_units",
    "long_exit_fill",
    "round_level",
    "short_exit_fill",
    "swap_charge",
]

LOT_UNITS = 100_000.0
"""Units in one standard lot."""

# Exit reasons: codes stored by the kernel, names used in the trade list.
EXIT_SIGNAL = 0
EXIT_REVERSE = 1
EXIT_STOP = 2
EXIT_TAKE = 3
EXIT_END = 4
EXIT_REASONS: tuple[str, ...] = ("signal", "reverse", "stop", "take", "end")

# Pending order decided at a bar's close.
ORDER_NONE = 0
ORDER_LONG = 1
ORDER_SHORT = -1
ORDER_CLOSE = 2

# Commission kinds.
COMM_PER_LOT = 0
COMM_PERCENT = 1
COMM_CASH_PER_ORDER = 2
COMMISSION_TYPES: tuple[str, ...] = ("per_lot", "percent", "cash_per_order")

# Sizing modes.
SIZING_FIXED = 0
SIZING_RISK = 1
SIZING_MODES: tuple[str, ...] = ("fixed", "risk")

PRICE_MODELS: tuple[str, ...] = ("bidask", "single")

# Rules for a bar touching both the stop and the target.
INTRABAR_STOP_FIRST = 0
INTRABAR_TRADINGVIEW = 1
INTRABAR_MODES: tuple[str, ...] = ("stop_first", "tradingview")

LEVEL_TICK_EPS = 1e-3
"""Ticks: a raw level within this of a tick rounds to that tick (see "Tick-rounded levels")."""

# Rows of the kernel's price matrix (shape (9, n), float64).
ROW_BUY_OPEN = 0  # market buys fill here (ask open; single: open)
ROW_SELL_OPEN = 1  # market sells fill here (bid open; single: open)
ROW_SELL_HIGH = 2  # long target trigger (bid high)
ROW_SELL_LOW = 3  # long stop trigger (bid low)
ROW_BUY_HIGH = 4  # short stop trigger (ask high)
ROW_BUY_LOW = 5  # short target trigger (ask low)
ROW_SELL_CLOSE = 6  # long mark / "end" exit (bid close)
ROW_BUY_CLOSE = 7  # short mark / "end" exit (ask close)
ROW_ANCHOR = 8  # signal series close: stops and targets are anchored here
N_PRICE_ROWS = 9

_SIZE_EPS = 1e-9  # lots; absorbs binary rounding in floor() (0.1 / 0.001 style ratios)


@njit(cache=True, nogil=True)
def long_exit_fill(
    sell_open: float,
    sell_high: float,
    sell_low: float,
    stop: float,
    take: float,
    slip: float,
    intrabar: int = INTRABAR_STOP_FIRST,
    fresh: bool = False,
) -> tuple[int, float]:
    """Protective exit of a long in one bar: ``(reason, price)``; reason -1 when none fills.

    ``intrabar`` picks the rule for a bar touching both levels (``INTRABAR_*``); ``fresh``:
    the position entered at this bar's open (matters for ``INTRABAR_TRADINGVIEW`` only).
    NaN ``stop`` / ``take`` never trigger (every comparison with NaN is false).
    """
    if intrabar == INTRABAR_STOP_FIRST:
        if sell_open <= stop:
            return EXIT_STOP, sell_open - slip
        if sell_open >= take:
            return EXIT_TAKE, sell_open
        if sell_low <= stop:
            return EXIT_STOP, stop - slip
        if sell_high >= take:
            return EXIT_TAKE, take
        return -1, 0.0
    if not fresh:  # the broker emulator's "open" phase: gaps of a position held before
        if sell_open <= stop:
            return EXIT_STOP, sell_open - slip
        if sell_open >= take:
            return EXIT_TAKE, sell_open
    tp_hit = sell_high >= take
    sl_hit = sell_low <= stop
    if tp_hit and sl_hit:
        # path open -> high -> low -> close when the high is (not farther) closer
        sl_hit = abs(sell_high - sell_open) > abs(sell_open - sell_low)
        tp_hit = not sl_hit
    if sl_hit:
        return EXIT_STOP, (min(sell_open, stop)) - slip
    if tp_hit:
        return EXIT_TAKE, max(sell_open, take)
    return -1, 0.0


@njit(cache=True, nogil=True)
def short_exit_fill(
    buy_open: float,
    buy_high: float,
    buy_low: float,
    stop: float,
    take: float,
    slip: float,
    intrabar: int = INTRABAR_STOP_FIRST,
    fresh: bool = False,
) -> tuple[int, float]:
    """Protective exit of a short in one bar: ``(reason, price)``; reason -1 when none fills.

    Arguments as :func:`long_exit_fill`.
    """
    if intrabar == INTRABAR_STOP_FIRST:
        if buy_open >= stop:
            return EXIT_STOP, buy_open + slip
        if buy_open <= take:
            return EXIT_TAKE, buy_open
        if buy_high >= stop:
            return EXIT_STOP, stop + slip
        if buy_low <= take:
            return EXIT_TAKE, take
        return -1, 0.0
    if not fresh:
        if buy_open >= stop:
            return EXIT_STOP, buy_open + slip
        if buy_open <= take:
            return EXIT_TAKE, buy_open
    tp_hit = buy_low <= take
    sl_hit = buy_high >= stop
    # both touched: the target wins when the open is strictly closer to the low (path
    # open -> low -> high -> close), the stop otherwise
    # (a buy stop already passed at the open does not catch a short entered at that open)
    stop_first = not (tp_hit and abs(buy_high - buy_open) > abs(buy_open - buy_low))
    if sl_hit and stop_first and not (fresh and buy_open >= stop):
        return EXIT_STOP, max(buy_open, stop) + slip
    if tp_hit:
        return EXIT_TAKE, min(buy_open, take)
    return -1, 0.0


@njit(cache=True, nogil=True)
def round_level(level: float, ref: float, tick: float) -> float:
    """``level`` on the tick grid, rounded away from ``ref`` (the signal bar's close).

    Above ``ref``: ``ceil(level / tick - LEVEL_TICK_EPS) * tick``; below: ``floor(level /
    tick + LEVEL_TICK_EPS) * tick``; equal, NaN, or ``tick <= 0``: unchanged.
    """
    if not tick > 0.0 or not math.isfinite(level) or level == ref:
        return level
    t = level / tick
    if level > ref:
        return math.ceil(t - LEVEL_TICK_EPS) * tick
    return math.floor(t + LEVEL_TICK_EPS) * tick


@njit(cache=True, nogil=True)
def commission(kind: int, rate: float, units: float, price: float) -> float:
    """Commission of one fill, account currency (see the module docstring)."""
    if kind == COMM_PER_LOT:
        return rate * units / LOT_UNITS
    if kind == COMM_PERCENT:
        return rate * 0.01 * units * price
    return rate


@njit(cache=True, nogil=True)
def swap_charge(weight: float, rate: float, units: float) -> float:
    """Swap of ``units`` (unsigned) held across ``weight`` rollovers at ``rate`` (account
    currency per lot per rollover, negative = charged): added to cash, account currency."""
    return weight * rate * units / LOT_UNITS


@njit(cache=True, nogil=True)
def entry_units(
    mode: int, units: float, risk_fraction: float, lot_step: float, equity: float, stop_dist: float
) -> float:
    """Units of a new position: fixed, or risk ``risk_fraction`` of equity against the stop."""
    if mode == SIZING_RISK and stop_dist > 0.0:
        if equity <= 0.0:
            return 0.0
        return math.floor(equity * risk_fraction / stop_dist / lot_step + _SIZE_EPS) * lot_step
    return units


@njit(cache=True, nogil=True)
def decide_order(pos: int, le: bool, se: bool, lx: bool, sx: bool) -> int:
    """The order for the next open given the held side ``pos`` (1, -1, 0) and bar signals."""
    go_long = le and not se and not lx
    go_short = se and not le and not sx
    if pos > 0:
        if go_short:
            return ORDER_SHORT
        if lx:
            return ORDER_CLOSE
        return ORDER_NONE
    if pos < 0:
        if go_long:
            return ORDER_LONG
        if sx:
            return ORDER_CLOSE
        return ORDER_NONE
    if go_long:
        return ORDER_LONG
    if go_short:
        return ORDER_SHORT
    return ORDER_NONE
