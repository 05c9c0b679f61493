"""Rule-based detectors of the vocabulary's candlestick and chart patterns (vectorized, causal).

Stable public API (inputs: 1-D float64 arrays of one price side, oldest first, quote currency;
outputs: bool arrays of the inputs' length)::

    detect_candles(open, high, low, close) -> {name: bool array}          # CANDLE_PATTERNS
    detect_chart_patterns(open, high, low, close, *, window=64) -> {name: bool array}
    window_patterns(open, high, low, close) -> [name, ...]                # what a window shows
    support_resistance(high, low, close, *, max_levels=4) -> [price, ...]
    synthetic_pattern(name, *, n_bars=64, seed=0, noise=0.04) -> (open, high, low, close)
    PatternError

(``synthetic_pattern`` is :mod:`aio_ray.patterns.synthetic_windows`'s and ``PatternError``
:mod:`aio_ray.patterns.vocabulary`'s, re-exported here.)

**No look-ahead.** Every flag at bar ``t`` is computed from bars ``<= t`` only: truncating the
future never changes a past flag (pinned by tests). Each candle pattern is True at the bar that
completes it; each chart pattern at the bar on which it *completes* (the neckline break of a
double top or head and shoulders, the breakout from a triangle or a flag), counted from the
moment all its swing points are known.

**Ties.** Prices live on a tick grid, so exact ties (an open equal to the previous close, a
body exactly 10% of the range) are common. Every comparison of prices tolerates
:data:`PRICE_EPS` (1e-9, far below a tick), on the side stated below, so float64 rounding and a
Pine runtime that keeps values to 10 decimals decide ties the same way
(:mod:`aio_ray.pine.patterns` states the same rules in Pine v6).

Candlestick patterns (``body = |close - open|``, ``range = high - low``)
------------------------------------------------------------------------
* **bullish_engulfing**: bar ``t-1`` is bearish (``close < open``), bar ``t`` bullish, and
  bar ``t``'s body covers bar ``t-1``'s: ``open <= close[t-1]``, ``close >= open[t-1]`` and a
  strictly larger body. **bearish_engulfing** mirrors it.
* **hammer**: ``range > 0``; the body lies in the top third of the range (``min(open, close) >=
  high - range / 3``); the lower shadow is at least :data:`SHADOW_BODY_RATIO` (2) times the
  body (the classic statement; a body in the top third already implies it); after a down
  move: ``close[t-1] < close[t-1-TREND_BARS]`` (5 bars).
* **shooting_star**: the mirror: body in the bottom third, upper shadow >= 2 x body, after an
  up move ``close[t-1] > close[t-1-TREND_BARS]``.
* **doji**: ``range > 0`` and ``body <= DOJI_MAX_BODY * range`` (10%).

Chart patterns (from swing points; tolerances in ATR(14) units at the completion bar)
------------------------------------------------------------------------------------
A pivot high is a high above the :data:`PIVOT_BARS` (3) highs before it and not below the 3
after it, known 3 bars later; swings alternate highs and lows (a later, more extreme pivot of
the same kind replaces the last swing). Only swings inside the ``window`` bars ending at ``t``
count; tops, bottoms and shoulders are searched among the last six swing highs (lows),
the second top or the right shoulder being one of the last three.

* **double_top**: two swing highs at least :data:`DT_MIN_SEPARATION` bars apart, within
  :data:`DT_TOP_TOL_ATR` ATR of each other, nothing higher since the first one, and the lowest
  low between them (the neckline) at least :data:`DT_DEPTH_ATR` ATR below the lower top.
  Completes on the first close below the neckline since the second top became known.
  **double_bottom** mirrors it.
* **head_and_shoulders**: three swing highs; the middle one (head) the highest since the left
  shoulder and :data:`HS_HEAD_ATR` ATR above both shoulders, shoulders within
  :data:`HS_SHOULDER_TOL_ATR` ATR of each other and :data:`HS_DEPTH_ATR` ATR above the
  neckline, the line through the lowest lows between shoulder and head on each side; nothing
  above the right shoulder since it. Completes on the first close below the (sloped) neckline
  since the right shoulder became known. **inverse_head_and_shoulders** mirrors it.
* **ascending / descending / symmetric_triangle**: least-squares lines through the last 2-3
  swing highs and the last 2-3 swing lows, five swings at least (each within
  :data:`TRI_FIT_ATR` ATR of its line; highs and lows interleaved). With ``h0`` the gap between the lines at the first swing
  (>= :data:`TRI_MIN_HEIGHT_ATR` ATR), a line is *flat* if it moves by at most
  :data:`TRI_FLAT_FRACTION` x ``h0`` up to ``t``, *rising/falling* if it moves by at least
  :data:`TRI_SLOPE_FRACTION` x ``h0``; ascending = flat top and rising bottom, descending =
  falling top and flat bottom, symmetric = falling top and rising bottom; the lines must
  not have met (gap at ``t`` >= :data:`TRI_END_WIDTH_FRACTION` x ``h0``). Completes on the
  first close more than :data:`TRI_BAND_ATR` ATR outside the lines (either side), every close
  since the first swing having stayed within that band.
* **bull_flag**: a pole: the high of bar ``p`` at least :data:`FLAG_POLE_ATR` ATR above the
  lowest low of the :data:`FLAG_POLE_BARS` bars up to ``p``; then a flag of
  :data:`FLAG_MIN_BARS`..:data:`FLAG_MAX_BARS` bars whose highs stay at or below the pole's
  top, whose lows retrace at most :data:`FLAG_MAX_RETRACE` of the pole, and whose closes drift
  down or sideways (least-squares slope <= 0). Completes on the first close above the flag's
  highest high; a new signal needs :data:`FLAG_MIN_BARS` bars since the last. **bear_flag**
  mirrors it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from aio_ray import indicators
from aio_ray.patterns import _nb as nb
from aio_ray.patterns.synthetic_windows import synthetic_pattern
from aio_ray.patterns.vocabulary import CANDLE_PATTERNS, CHART_PATTERNS, PATTERNS, PatternError

__all__ = [
    "ATR_LENGTH",
    "DOJI_MAX_BODY",
    "PIVOT_BARS",
    "PRICE_EPS",
    "RECENT_BARS",
    "SHADOW_BODY_RATIO",
    "TREND_BARS",
    "PatternError",
    "detect_candles",
    "detect_chart_patterns",
    "pivots",
    "support_resistance",
    "synthetic_pattern",
    "window_patterns",
]


# ----------------------------------------------------------------------------- constants

PRICE_EPS = 1e-9
"""Tolerance of every price comparison, quote currency (a ten-thousandth of a 1e-5 tick)."""

# candles
DOJI_MAX_BODY = 0.1
"""Doji: body at most this fraction of the bar's range."""
BODY_ZONE = 1.0 / 3.0
"""Hammer / shooting star: the body lies within this top / bottom fraction of the range."""
SHADOW_BODY_RATIO = 2.0
"""Hammer / shooting star: the long shadow is at least this many bodies."""
TREND_BARS = 5
"""Hammer / shooting star: the prior move is ``close[t-1]`` versus ``close[t-1-TREND_BARS]``."""

# swings
ATR_LENGTH = 14
"""ATR length (bars) of the chart patterns' tolerances (Pine ``ta.atr``)."""
PIVOT_BARS = 3
"""A pivot is the extreme of the bars within +-PIVOT_BARS; it is known PIVOT_BARS bars later."""

# double top / bottom
DT_TOP_TOL_ATR = 1.0
"""The two tops differ by at most this many ATR."""
DT_DEPTH_ATR = 2.0
"""The neckline lies at least this many ATR below the lower top."""
DT_MIN_SEPARATION = 8
"""Bars between the two tops, at least."""

# head and shoulders
HS_HEAD_ATR = 1.0
"""The head is at least this many ATR above the higher shoulder."""
HS_SHOULDER_TOL_ATR = 2.0
"""The shoulders differ by at most this many ATR."""
HS_DEPTH_ATR = 1.5
"""The lower shoulder is at least this many ATR above the higher neckline point."""
HS_MIN_SEPARATION = 5
"""Bars between shoulder and head, at least."""

# triangles
TRI_MIN_HEIGHT_ATR = 3.0
"""Gap between the lines at the first swing, at least this many ATR."""
TRI_FIT_ATR = 1.0
"""Each swing lies within this many ATR of its line."""
TRI_FLAT_FRACTION = 0.15
"""A flat line moves by at most this fraction of the initial gap."""
TRI_SLOPE_FRACTION = 0.25
"""A rising / falling line moves by at least this fraction of the initial gap."""
TRI_END_WIDTH_FRACTION = 0.05
"""At the completion bar the lines are still this fraction of the initial gap apart."""
TRI_BAND_ATR = 0.5
"""Closes stay within this many ATR of the lines; a close beyond completes the triangle."""

# flags
FLAG_MIN_BARS = 5
"""Shortest flag (consolidation), bars; also the gap between two signals of one side."""
FLAG_MAX_BARS = 20
"""Longest flag, bars."""
FLAG_POLE_BARS = 10
"""The pole's rise is measured over this many bars up to its top."""
FLAG_POLE_ATR = 4.0
"""The pole rises at least this many ATR."""
FLAG_MAX_RETRACE = 0.5
"""The flag retraces at most this fraction of the pole."""

RECENT_BARS = 3
"""window_patterns: a pattern is shown when it completes on one of the window's last 3 bars."""

_PARAMS = np.zeros(nb.N_PARAMS)
_PARAMS[nb.P_DT_TOL] = DT_TOP_TOL_ATR
_PARAMS[nb.P_DT_DEPTH] = DT_DEPTH_ATR
_PARAMS[nb.P_DT_SEP] = DT_MIN_SEPARATION
_PARAMS[nb.P_HS_HEAD] = HS_HEAD_ATR
_PARAMS[nb.P_HS_TOL] = HS_SHOULDER_TOL_ATR
_PARAMS[nb.P_HS_DEPTH] = HS_DEPTH_ATR
_PARAMS[nb.P_HS_SEP] = HS_MIN_SEPARATION
_PARAMS[nb.P_TRI_MIN_HEIGHT] = TRI_MIN_HEIGHT_ATR
_PARAMS[nb.P_TRI_FIT] = TRI_FIT_ATR
_PARAMS[nb.P_TRI_FLAT] = TRI_FLAT_FRACTION
_PARAMS[nb.P_TRI_SLOPE] = TRI_SLOPE_FRACTION
_PARAMS[nb.P_TRI_END_WIDTH] = TRI_END_WIDTH_FRACTION
_PARAMS[nb.P_TRI_BAND] = TRI_BAND_ATR
_PARAMS[nb.P_FLAG_MIN] = FLAG_MIN_BARS
_PARAMS[nb.P_FLAG_MAX] = FLAG_MAX_BARS
_PARAMS[nb.P_FLAG_POLE_BARS] = FLAG_POLE_BARS
_PARAMS[nb.P_FLAG_POLE_ATR] = FLAG_POLE_ATR
_PARAMS[nb.P_FLAG_RETRACE] = FLAG_MAX_RETRACE
_PARAMS.setflags(write=False)

assert tuple(CANDLE_PATTERNS) == (
    "bullish_engulfing",
    "bearish_engulfing",
    "hammer",
    "shooting_star",
    "doji",
), "patterns._nb candle rows follow vocabulary.CANDLE_PATTERNS"
assert tuple(CHART_PATTERNS) == (
    "double_top",
    "double_bottom",
    "head_and_shoulders",
    "inverse_head_and_shoulders",
    "ascending_triangle",
    "descending_triangle",
    "symmetric_triangle",
    "bull_flag",
    "bear_flag",
), "patterns._nb chart rows follow vocabulary.CHART_PATTERNS"


# ----------------------------------------------------------------------------- validation


def _ohlc(func: str, *arrays: Any, names: tuple[str, ...]) -> list[np.ndarray]:
    out = []
    for name, x in zip(names, arrays, strict=True):
        try:
            a = np.ascontiguousarray(x, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise PatternError(f"{func}: {name} cannot be read as float64 ({exc})") from exc
        if a.ndim != 1:
            raise PatternError(f"{func}: {name} must be 1-D, got shape {a.shape}")
        out.append(a)
    lengths = {len(a) for a in out}
    if len(lengths) > 1:
        got = ", ".join(f"{n}={len(a)}" for n, a in zip(names, out, strict=True))
        raise PatternError(f"{func}: arrays must have the same length, got {got}")
    return out


# ----------------------------------------------------------------------------- candles


def detect_candles(open: Any, high: Any, low: Any, close: Any) -> dict[str, np.ndarray]:
    """The candlestick patterns of :data:`CANDLE_PATTERNS`, True at the bar completing each.

    Parameters
    ----------
    open, high, low, close : 1-D float arrays of equal length, quote currency, oldest first.

    Returns
    -------
    dict
        Pattern name -> bool array of the inputs' length (definitions in the module
        docstring). Bars with NaN prices, and bars lacking the history a rule needs (the
        first bar for engulfing, the first ``TREND_BARS + 1`` for hammer / shooting star),
        are False.
    """
    o, h, lo, c = _ohlc(
        "detect_candles", open, high, low, close, names=("open", "high", "low", "close")
    )
    out = np.empty((nb.N_CANDLE, len(c)), dtype=np.bool_)
    nb.candles_nb(
        o, h, lo, c, PRICE_EPS, DOJI_MAX_BODY, BODY_ZONE, SHADOW_BODY_RATIO, TREND_BARS, out
    )
    return {name: out[i] for i, name in enumerate(CANDLE_PATTERNS)}


# ----------------------------------------------------------------------------- chart patterns


def detect_chart_patterns(
    open: Any, high: Any, low: Any, close: Any, *, window: int = 64
) -> dict[str, np.ndarray]:
    """The chart patterns of :data:`CHART_PATTERNS`, True at the bar on which each completes.

    Parameters
    ----------
    open, high, low, close : 1-D float arrays of equal length, quote currency, oldest first
        (``open`` is accepted for symmetry; the rules use highs, lows and closes).
    window : the pattern's swing points must lie within the ``window`` bars ending at the
        completion bar (bars, >= 8).

    Returns
    -------
    dict
        Pattern name -> bool array of the inputs' length (rules in the module docstring).
        Nothing is detected before ATR(14) is defined (the first 13 bars).
    """
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 8:
        raise PatternError(
            f"detect_chart_patterns: window must be an int >= 8 (bars), got {window!r}"
        )
    _, h, lo, c = _ohlc(
        "detect_chart_patterns", open, high, low, close, names=("open", "high", "low", "close")
    )
    n = len(c)
    out = np.zeros((nb.N_CHART, n), dtype=np.bool_)
    if n:
        atr = indicators.atr(h, lo, c, ATR_LENGTH)
        nb.chart_patterns_nb(h, lo, c, atr, int(window), PIVOT_BARS, _PARAMS, out)
    return {name: out[i] for i, name in enumerate(CHART_PATTERNS)}


def pivots(high: Any, low: Any, *, k: int = PIVOT_BARS) -> tuple[np.ndarray, np.ndarray]:
    """Pivot flags ``(is_high, is_low)``: bar ``i`` is the extreme of bars ``i-k .. i+k``
    (strictly beyond the ``k`` before, not beaten by the ``k`` after). A pivot at ``i`` is
    known only at bar ``i + k``; the last ``k`` bars are never pivots."""
    h, lo = _ohlc("pivots", high, low, names=("high", "low"))
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise PatternError(f"pivots: k must be an int >= 1 (bars), got {k!r}")
    ph = np.zeros(len(h), dtype=np.bool_)
    pl = np.zeros(len(h), dtype=np.bool_)
    nb.pivot_flags(h, lo, int(k), ph, pl)
    return ph, pl


# ----------------------------------------------------------------------------- windows


def window_patterns(open: Any, high: Any, low: Any, close: Any) -> list[str]:
    """The vocabulary names a chart of this one window shows, in :data:`PATTERNS` order.

    A candle pattern is shown when it completes on one of the window's last
    :data:`RECENT_BARS` (3) bars; a chart pattern when it completes on one of them with its
    swing points inside the window (``window = len(close)``). Only the window's own bars are
    used (its first 13 bars warm the ATR up), so a label never depends on later data.
    """
    o, h, lo, c = _ohlc(
        "window_patterns", open, high, low, close, names=("open", "high", "low", "close")
    )
    n = len(c)
    if n == 0:
        return []
    found = set()
    for name, flags in detect_candles(o, h, lo, c).items():
        if flags[-RECENT_BARS:].any():
            found.add(name)
    if n >= 8:
        for name, flags in detect_chart_patterns(o, h, lo, c, window=n).items():
            if flags[-RECENT_BARS:].any():
                found.add(name)
    return [p for p in PATTERNS if p in found]


SR_TOL_ATR = 0.5
"""support_resistance: swing prices closer than this many ATR form one level."""


def support_resistance(high: Any, low: Any, close: Any, *, max_levels: int = 4) -> list[float]:
    """Support and resistance levels from swing points, strongest first, in price.

    Every pivot (:func:`pivots`, k = :data:`PIVOT_BARS`) known at the last bar contributes its
    price (a pivot high its high, a pivot low its low). Sorted prices are grouped while
    neighbours are within :data:`SR_TOL_ATR` ATR(14) of the last bar (the mean bar range when
    the series is shorter than 14 bars); a level is its group's mean price and its strength
    the number of swings in it (touches), ties broken by the most recent touch.

    Parameters
    ----------
    high, low, close : 1-D float arrays, quote currency, oldest first.
    max_levels : at most this many levels are returned (>= 1).

    Returns
    -------
    list of float
        Up to ``max_levels`` finite prices; empty when the series has no known pivot.
    """
    if (
        isinstance(max_levels, bool)
        or not isinstance(max_levels, (int, np.integer))
        or max_levels < 1
    ):
        raise PatternError(
            f"support_resistance: max_levels must be an int >= 1, got {max_levels!r}"
        )
    h, lo, c = _ohlc("support_resistance", high, low, close, names=("high", "low", "close"))
    n = len(c)
    if n == 0:
        return []
    prices = np.empty(2 * n)
    index = np.empty(2 * n, dtype=np.int64)
    m = nb.swing_levels_nb(h, lo, PIVOT_BARS, prices, index)
    prices, index = prices[:m], index[:m]
    keep = np.isfinite(prices) & (prices > 0)
    prices, index = prices[keep], index[keep]
    if prices.size == 0:
        return []
    scale = indicators.atr(h, lo, c, ATR_LENGTH)[-1] if n >= ATR_LENGTH else np.nan
    if not np.isfinite(scale) or scale <= 0:
        ranges = h - lo
        scale = float(np.nanmean(ranges)) if np.isfinite(ranges).any() else 0.0
    tol = SR_TOL_ATR * scale
    order = np.argsort(prices, kind="stable")
    prices, index = prices[order], index[order]
    groups: list[tuple[int, int, float]] = []  # (touches, last bar, level)
    start = 0
    for j in range(1, len(prices) + 1):
        if j == len(prices) or prices[j] - prices[j - 1] > tol:
            groups.append((j - start, int(index[start:j].max()), float(prices[start:j].mean())))
            start = j
    groups.sort(key=lambda g: (-g[0], -g[1]))
    return [g[2] for g in groups[: int(max_levels)]]
