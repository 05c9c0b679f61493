"""The backtest kernel's inputs derived from the bars, validated and built once per bars.

Stable public API::

    kernel_prices(bars, price_model) -> (fills.N_PRICE_ROWS, n) float64   # cached on the bars
    swap_units_of(bars) -> (n,) float64                                   # cached on the bars
    MIN_BARS                                                              # fewest bars backtested

A search backtests many parameter sets on one fold: the prices are checked (finite, valid
OHLC, bid/ask present for ``"bidask"``) and laid out once, through :meth:`BarArrays.cached`.
"""

from __future__ import annotations

import numpy as np

from aio_ray.bars.arrays import BID_ASK_FIELDS, OHLC_FIELDS, BarArrays
from aio_ray.errors import BacktestError
from aio_ray.strategies import fills
from aio_ray.strategies.sessions import swap_units

__all__ = ["MIN_BARS", "kernel_prices", "swap_units_of"]

MIN_BARS = 2
"""The fewest bars the engine backtests."""


def kernel_prices(bars: BarArrays, price_model: str) -> np.ndarray:
    """The engine's (``fills.N_PRICE_ROWS``, n) float64 price matrix, rows ``fills.ROW_*``
    (quote currency), validated and built once per bars and price model, then cached.

    Raises
    ------
    BacktestError
        Unknown ``price_model``, fewer than :data:`MIN_BARS` bars, non-finite or
        inconsistent OHLC, or no bid/ask OHLC for ``"bidask"``.
    """
    return bars.cached(f"px_{price_model}", lambda b: _build_prices(b, price_model))


def swap_units_of(bars: BarArrays) -> np.ndarray:
    """(n,) float64 rollovers a position held from bar ``i - 1`` to bar ``i`` is charged
    for (:func:`aio_ray.strategies.sessions.swap_units`); cached on the bars."""
    return bars.cached("swap_units", lambda b: swap_units(b.ts))


def _build_prices(bars: BarArrays, price_model: str) -> np.ndarray:
    if price_model not in fills.PRICE_MODELS:
        raise BacktestError(f"price_model: {price_model!r} is not one of {fills.PRICE_MODELS}")
    n = len(bars)
    if n < MIN_BARS:
        raise BacktestError(f"bars: too few bars ({n}); need at least {MIN_BARS}")
    o, h, lo, c = (_finite(f"bars.{a}", getattr(bars, a)) for a in OHLC_FIELDS)
    _check_ohlc("bars", o, h, lo, c)
    px = np.empty((fills.N_PRICE_ROWS, n), dtype=np.float64)
    px[fills.ROW_ANCHOR] = c
    if price_model == "single":
        px[fills.ROW_BUY_OPEN] = o
        px[fills.ROW_SELL_OPEN] = o
        px[fills.ROW_SELL_HIGH] = h
        px[fills.ROW_BUY_HIGH] = h
        px[fills.ROW_SELL_LOW] = lo
        px[fills.ROW_BUY_LOW] = lo
        px[fills.ROW_SELL_CLOSE] = c
        px[fills.ROW_BUY_CLOSE] = c
        return px
    if not bars.has_bid_ask:
        raise BacktestError(
            "bid_ask: price_model 'bidask' needs the bars' bid and ask OHLC "
            "(BarArrays.bid_open ... ask_close); load them with the bars or use "
            "price_model='single'"
        )
    arr = {f: _finite(f"bid_ask.{f}", getattr(bars, f)) for f in BID_ASK_FIELDS}
    _check_ohlc("bid_ask (bid)", arr["bid_open"], arr["bid_high"], arr["bid_low"], arr["bid_close"])
    _check_ohlc("bid_ask (ask)", arr["ask_open"], arr["ask_high"], arr["ask_low"], arr["ask_close"])
    px[fills.ROW_BUY_OPEN] = arr["ask_open"]
    px[fills.ROW_SELL_OPEN] = arr["bid_open"]
    px[fills.ROW_SELL_HIGH] = arr["bid_high"]
    px[fills.ROW_SELL_LOW] = arr["bid_low"]
    px[fills.ROW_BUY_HIGH] = arr["ask_high"]
    px[fills.ROW_BUY_LOW] = arr["ask_low"]
    px[fills.ROW_SELL_CLOSE] = arr["bid_close"]
    px[fills.ROW_BUY_CLOSE] = arr["ask_close"]
    return px


def _finite(name: str, a: np.ndarray) -> np.ndarray:
    bad = ~np.isfinite(a)
    if bad.any():
        i = int(np.argmax(bad))
        raise BacktestError(f"{name}: non-finite price {a[i]} at bar {i}; prices must be finite")
    return a


def _check_ohlc(prefix: str, o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray) -> None:
    bad = (h < np.maximum(o, c)) | (lo > np.minimum(o, c)) | (lo <= 0)
    if bad.any():
        i = int(np.argmax(bad))
        raise BacktestError(
            f"{prefix}: bar {i} is not a valid OHLC bar (open {o[i]}, high {h[i]}, low {lo[i]}, "
            f"close {c[i]}); need 0 < low <= open, close <= high"
        )
