"""A short text summary of one chart window's indicators: the text half of a dataset row.

Stable public API::

    indicator_summary(open, high, low, close, *, pip_size=1e-4) -> str
    summary_values(open, high, low, close, *, pip_size=1e-4) -> IndicatorSnapshot

Everything is computed on the window's own bars (oldest first) with the Pine-semantics
indicators of :mod:`aio_ray.indicators`, so the summary of a window never depends on bars
after it (nor before it: warm-up is part of the window, and an indicator still warming up on
the last bar is reported as ``n/a``). With the usual 64-bar window every value is defined;
RSI(14) needs 15 bars, MACD(12, 26, 9) 34, EMA(50) 50, ADX(14) 28.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from aio_ray import indicators as ind
from aio_ray.errors import AioError

__all__ = ["IndicatorSnapshot", "SummaryError", "indicator_summary", "summary_values"]


class SummaryError(AioError, ValueError):
    """The OHLC arrays given to the summary are unusable (names the argument)."""


@dataclass(frozen=True)
class IndicatorSnapshot:
    """Indicator values on the window's last bar (NaN while an indicator is warming up).

    Attributes
    ----------
    close : last close, quote currency.
    rsi : RSI(14), 0..100.
    macd_hist : MACD(12, 26, 9) histogram, quote currency.
    sma20, ema50 : moving averages of the close, quote currency.
    bb_pct_b : Bollinger(20, 2) %B, ``(close - lower) / (upper - lower)``; 0 at the lower
        band, 1 at the upper one (NaN on a flat window).
    atr_pips : ATR(14) in pips.
    adx : ADX(14, 14), 0..100.
    """

    close: float
    rsi: float
    macd_hist: float
    sma20: float
    ema50: float
    bb_pct_b: float
    atr_pips: float
    adx: float


def _arrays(
    open_: Any, high: Any, low: Any, close: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    out = []
    for name, x in (("open", open_), ("high", high), ("low", low), ("close", close)):
        a = np.asarray(x, dtype=np.float64)
        if a.ndim != 1 or a.size == 0:
            raise SummaryError(
                f"indicator_summary: {name} must be a non-empty 1-D array, got {a.shape}"
            )
        out.append(a)
    if len({a.size for a in out}) != 1:
        raise SummaryError(
            "indicator_summary: open, high, low, close must have the same length, got "
            + ", ".join(str(a.size) for a in out)
        )
    return out[0], out[1], out[2], out[3]


def summary_values(
    open: Any, high: Any, low: Any, close: Any, *, pip_size: float = 1e-4
) -> IndicatorSnapshot:
    """The indicator values that :func:`indicator_summary` describes, on the last bar.

    Parameters
    ----------
    open, high, low, close : 1-D float arrays of one window, quote currency, oldest first.
    pip_size : price of one pip (EURUSD: 1e-4), for the ATR.
    """
    if not (pip_size > 0 and math.isfinite(pip_size)):
        raise SummaryError(
            f"indicator_summary: pip_size must be a positive price, got {pip_size!r}"
        )
    _, h, lo, c = _arrays(open, high, low, close)
    upper, _, lower = ind.bbands(c, 20, 2.0)
    width = upper[-1] - lower[-1]
    pct_b = (c[-1] - lower[-1]) / width if width > 0 else math.nan
    return IndicatorSnapshot(
        close=float(c[-1]),
        rsi=float(ind.rsi(c, 14)[-1]),
        macd_hist=float(ind.macd(c, 12, 26, 9)[2][-1]),
        sma20=float(ind.sma(c, 20)[-1]),
        ema50=float(ind.ema(c, 50)[-1]),
        bb_pct_b=float(pct_b),
        atr_pips=float(ind.atr(h, lo, c, 14)[-1] / pip_size),
        adx=float(ind.dmi(h, lo, c, 14, 14)[2][-1]),
    )


def _vs(close: float, level: float, name: str) -> str:
    if not math.isfinite(level):
        return f"{name} n/a"
    if close > level:
        return f"above {name}"
    if close < level:
        return f"below {name}"
    return f"at {name}"


def _num(x: float, fmt: str) -> str:
    return format(x, fmt) if math.isfinite(x) else "n/a"


def indicator_summary(open: Any, high: Any, low: Any, close: Any, *, pip_size: float = 1e-4) -> str:
    """A one-line text summary of the window's indicators on its last bar.

    Example: ``"RSI(14) 61.2; MACD hist positive; close above SMA(20), above EMA(50);
    BB %B 0.84; ATR(14) 7.3 pips; ADX(14) 27.5 (trending)."``

    Parameters
    ----------
    open, high, low, close : 1-D float arrays of one window, quote currency, oldest first.
    pip_size : price of one pip (EURUSD: 1e-4).

    Returns
    -------
    str : computed only from the given bars; values still warming up read ``n/a``. ADX is
    qualified as ``trending`` at 25 and above, ``ranging`` below 20.
    """
    s = summary_values(open, high, low, close, pip_size=pip_size)
    if math.isfinite(s.macd_hist):
        hist = "positive" if s.macd_hist > 0 else "negative" if s.macd_hist < 0 else "zero"
    else:
        hist = "n/a"
    if math.isfinite(s.adx):
        adx = f"{s.adx:.1f}" + (
            " (trending)" if s.adx >= 25 else " (ranging)" if s.adx < 20 else ""
        )
    else:
        adx = "n/a"
    return (
        f"RSI(14) {_num(s.rsi, '.1f')}; MACD hist {hist}; "
        f"close {_vs(s.close, s.sma20, 'SMA(20)')}, {_vs(s.close, s.ema50, 'EMA(50)')}; "
        f"BB %B {_num(s.bb_pct_b, '.2f')}; ATR(14) {_num(s.atr_pips, '.1f')} pips; ADX(14) {adx}."
    )
