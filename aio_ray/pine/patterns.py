"""The candlestick patterns of :mod:`aio_ray.patterns.detectors` as Pine Script v6.

Stable public API::

    PINE_PATTERNS                         # names with a Pine definition (the candle patterns)
    pattern_condition(name) -> str        # a Pine v6 bool expression, true on the completing bar
    pattern_variable(name) -> str         # the variable name scripts use for it ("pat_doji")
    patterns_indicator(names=PINE_PATTERNS, *, title=...) -> str   # a whole indicator script
    PinePatternError

Each expression is the Python rule transcribed term by term, with the module constants of
:mod:`aio_ray.patterns.detectors` substituted (thresholds, ``TREND_BARS`` and the tie
tolerance ``PRICE_EPS``), so the Pine series equals ``detect_candles`` bar for bar (checked
with PineTS on real EUR/USD bars by ``tests/oracles/test_patterns_pine.py``). Bars without the
history a rule needs compare against ``na`` and are false, as in Python.

The chart patterns (double tops, head and shoulders, triangles, flags) stay Python-only for
now: their swing bookkeeping has no compact Pine expression; asking for one raises
:class:`PinePatternError`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from aio_ray.errors import AioError
from aio_ray.patterns import detectors as d
from aio_ray.patterns.vocabulary import BEARISH, BULLISH, CANDLE_PATTERNS, CHART_PATTERNS

__all__ = [
    "PINE_PATTERNS",
    "PinePatternError",
    "pattern_condition",
    "pattern_variable",
    "patterns_indicator",
]

PINE_PATTERNS: tuple[str, ...] = CANDLE_PATTERNS
"""Vocabulary names that have a Pine definition."""


class PinePatternError(AioError, ValueError):
    """A pattern has no Pine definition (unknown, or a Python-only chart pattern)."""


def _f(x: float) -> str:
    """A float literal Pine parses to the same double (no exponent notation)."""
    return np.format_float_positional(float(x), unique=True, trim="0")


def _conditions() -> dict[str, str]:
    eps = _f(d.PRICE_EPS)
    zone = _f(d.BODY_ZONE)
    ratio = _f(d.SHADOW_BODY_RATIO)
    doji = _f(d.DOJI_MAX_BODY)
    k = 1 + d.TREND_BARS
    rng = "(high - low)"
    body = "math.abs(close - open)"
    body_low = "math.min(open, close)"
    body_high = "math.max(open, close)"
    return {
        "bullish_engulfing": (
            f"(close[1] < open[1] - {eps} and close > open + {eps}"
            f" and open <= close[1] + {eps} and close >= open[1] - {eps}"
            f" and (close - open) > (open[1] - close[1]) + {eps})"
        ),
        "bearish_engulfing": (
            f"(close[1] > open[1] + {eps} and close < open - {eps}"
            f" and open >= close[1] - {eps} and close <= open[1] + {eps}"
            f" and (open - close) > (close[1] - open[1]) + {eps})"
        ),
        "hammer": (
            f"({rng} > {eps} and {body_low} >= high - {zone} * {rng} - {eps}"
            f" and ({body_low} - low) >= {ratio} * {body} - {eps}"
            f" and close[1] < close[{k}] - {eps})"
        ),
        "shooting_star": (
            f"({rng} > {eps} and {body_high} <= low + {zone} * {rng} + {eps}"
            f" and (high - {body_high}) >= {ratio} * {body} - {eps}"
            f" and close[1] > close[{k}] + {eps})"
        ),
        "doji": f"({rng} > {eps} and {body} <= {doji} * {rng} + {eps})",
    }


def _check(name: str) -> None:
    if name in PINE_PATTERNS:
        return
    if name in CHART_PATTERNS:
        raise PinePatternError(
            f"pattern {name!r} is a chart pattern and has no Pine definition yet (Python-only: "
            f"aio_ray.patterns.detectors.detect_chart_patterns); Pine has {list(PINE_PATTERNS)}"
        )
    raise PinePatternError(f"unknown pattern {name!r}; Pine has {list(PINE_PATTERNS)}")


def pattern_condition(name: str) -> str:
    """Pine v6 bool expression that is true on the bar completing candle pattern ``name``.

    Uses only the built-in series ``open``, ``high``, ``low``, ``close`` and their history
    operator, so it can be pasted into any script (e.g. as a strategy's entry filter).
    """
    _check(name)
    return _conditions()[name]


def pattern_variable(name: str) -> str:
    """The Pine variable holding pattern ``name`` in generated scripts (``pat_<name>``)."""
    _check(name)
    return f"pat_{name}"


def patterns_indicator(
    names: Sequence[str] = PINE_PATTERNS, *, title: str = "aio candle patterns"
) -> str:
    """An overlay indicator that marks each pattern on the chart and exposes it.

    For every name: a variable ``pat_<name>``, a marker (``plotshape``: bullish below the
    bar, bearish above, neutral as a small cross), a 0/1 ``plot`` titled ``<name>`` in the
    data window (what parity checks read) and an ``alertcondition``.
    """
    names = list(names)
    if not names:
        raise PinePatternError("patterns_indicator: at least one pattern is needed")
    for n in names:
        _check(n)
    if len(set(names)) != len(names):
        raise PinePatternError(f"patterns_indicator: duplicate patterns in {names}")
    safe_title = "".join(ch for ch in title if ch.isalnum() or ch in " _-.:/()")[:60] or "aio"
    lines = [
        "//@version=6",
        "// Generated by aio-ray: candlestick patterns with the thresholds of",
        f"// aio_ray.patterns.detectors (a tie tolerance of {_f(d.PRICE_EPS)} in price).",
        f'indicator("{safe_title}", shorttitle="aio patterns", overlay=true)',
        "",
    ]
    for n in names:
        lines.append(f"{pattern_variable(n)} = {pattern_condition(n)}")
    lines.append("")
    for n in names:
        v = pattern_variable(n)
        if n in BULLISH:
            shape = (
                f'plotshape({v}, "{n} marker", shape.triangleup, location.belowbar, '
                "color.green, size=size.tiny)"
            )
        elif n in BEARISH:
            shape = (
                f'plotshape({v}, "{n} marker", shape.triangledown, location.abovebar, '
                "color.red, size=size.tiny)"
            )
        else:
            shape = (
                f'plotshape({v}, "{n} marker", shape.xcross, location.abovebar, '
                "color.gray, size=size.tiny)"
            )
        lines.append(shape)
        lines.append(f'plot({v} ? 1 : 0, "{n}", display=display.data_window)')
        lines.append(f'alertcondition({v}, title="{n}", message="{safe_title}: {n}")')
    return "\n".join(lines) + "\n"
