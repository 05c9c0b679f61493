"""THE fill rules of the backtest engine, written down and implemented in one place.

The kernels in :mod:`aio_ray.strategies.engine_nb` call the small compiled functions below and
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

   So a bar that touches both the stop and the target takes the stop (conservative; this is
   also backtesting.py's order, while TradingView's broker emulator guesses the intrabar path
   from the open's distance to the high and low, so such bars may differ there). A position
   closed inside the bar cannot re-enter before the next bar's open.
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
   ``strategy.entry`` guarded by ``go_long`` / ``go_short``, and with each entry a
   ``strategy.exit(from_entry=..., stop=..., limit=...)`` carrying the levels below, placed on
   the signal bar. The order of the calls then never matters.

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

Slippage and commission
-----------------------
- Slippage (``slippage_points`` x ``point_size``, Pine's ``slippage`` in ticks) moves market
  fills and stop fills (also a stop filled at a gapped open) against the order. Limit fills
  (targets) get none, as in TradingView. The ``"end"`` close gets none.
- Commission is charged on every fill of every trade, entry and exit: ``per_lot``: rate x
  units / 100,000; ``percent``: rate / 100 x units x fill price; ``cash_per_order``: rate.
  A reversal therefore pays the exit of the old trade and the entry of the new one
  (TradingView books a reversal as one order; with ``cash_per_order`` it may charge it once).

Sizing
------
``fixed``: ``units`` per trade. ``risk``: ``floor(equity * risk_fraction / stop_dist /
lot_step) * lot_step`` units, equity marked at the signal bar's close; with no stop (NaN
distance) it falls back to ``units``. Zero units: no entry (a reversal still closes).
There is no margin model.

Account currency is the quote currency (USD for EURUSD); P&L in pips is
``side * (exit - entry) / pip_size`` before commission.

Where TradingView's broker emulator may differ (compare the ``single`` model, zero costs)
---------------------------------------------------------------------------------------
- a bar touching both the stop and the target (see step 2);
- the last open trade: TradingView leaves it open, we close it (``"end"``): drop it;
- ruin: TradingView has its own margin-call model, we close and stop at equity <= 0;
- ``cash_per_order`` on a reversal (see above).
"""

from __future__ import annotations

import math

from numba import njit

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
    sell_open: float, sell_high: float, sell_low: float, stop: float, take: float, slip: float
) -> tuple[int, float]:
    """Protective exit of a long in one bar: ``(reason, price)``; reason -1 when none fills.

    NaN ``stop`` / ``take`` never trigger (every comparison with NaN is false).
    """
    if sell_open <= stop:
        return EXIT_STOP, sell_open - slip
    if sell_open >= take:
        return EXIT_TAKE, sell_open
    if sell_low <= stop:
        return EXIT_STOP, stop - slip
    if sell_high >= take:
        return EXIT_TAKE, take
    return -1, 0.0


@njit(cache=True, nogil=True)
def short_exit_fill(
    buy_open: float, buy_high: float, buy_low: float, stop: float, take: float, slip: float
) -> tuple[int, float]:
    """Protective exit of a short in one bar: ``(reason, price)``; reason -1 when none fills."""
    if buy_open >= stop:
        return EXIT_STOP, buy_open + slip
    if buy_open <= take:
        return EXIT_TAKE, buy_open
    if buy_high >= stop:
        return EXIT_STOP, stop + slip
    if buy_low <= take:
        return EXIT_TAKE, take
    return -1, 0.0


@njit(cache=True, nogil=True)
def commission(kind: int, rate: float, units: float, price: float) -> float:
    """Commission of one fill, account currency (see the module docstring)."""
    if kind == COMM_PER_LOT:
        return rate * units / LOT_UNITS
    if kind == COMM_PERCENT:
        return rate * 0.01 * units * price
    return rate


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
