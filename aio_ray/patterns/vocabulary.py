"""The fixed vocabulary shared by the rule-based detectors, the vision backends and Pine.

A pattern name is a stable snake_case string; new names are only ever appended, so stored
analyses and statistics keep their meaning. ``CANDLE_PATTERNS`` are defined on one to three
bars; ``CHART_PATTERNS`` on a window of swing points. :class:`PatternError` is the error of
every pattern function (detectors, synthetic windows, mining), defined here at the bottom of
the package so that each of those modules can raise it without importing another.
"""

from __future__ import annotations

from typing import Literal

from aio_ray.errors import AioError

__all__ = [
    "BEARISH",
    "BULLISH",
    "CANDLE_PATTERNS",
    "CHART_PATTERNS",
    "PATTERNS",
    "TRENDS",
    "PatternError",
    "PatternName",
    "Trend",
]


class PatternError(AioError, ValueError):
    """A pattern function was called with invalid input (names the function and argument)."""


Trend = Literal["up", "down", "sideways"]
TRENDS: tuple[str, ...] = ("up", "down", "sideways")

CANDLE_PATTERNS: tuple[str, ...] = (
    "bullish_engulfing",
    "bearish_engulfing",
    "hammer",
    "shooting_star",
    "doji",
)

CHART_PATTERNS: tuple[str, ...] = (
    "double_top",
    "double_bottom",
    "head_and_shoulders",
    "inverse_head_and_shoulders",
    "ascending_triangle",
    "descending_triangle",
    "symmetric_triangle",
    "bull_flag",
    "bear_flag",
)

PATTERNS: tuple[str, ...] = CANDLE_PATTERNS + CHART_PATTERNS

PatternName = Literal[
    "bullish_engulfing",
    "bearish_engulfing",
    "hammer",
    "shooting_star",
    "doji",
    "double_top",
    "double_bottom",
    "head_and_shoulders",
    "inverse_head_and_shoulders",
    "ascending_triangle",
    "descending_triangle",
    "symmetric_triangle",
    "bull_flag",
    "bear_flag",
]

BULLISH: frozenset[str] = frozenset(
    {
        "bullish_engulfing",
        "hammer",
        "double_bottom",
        "inverse_head_and_shoulders",
        "ascending_triangle",
        "bull_flag",
    }
)
BEARISH: frozenset[str] = frozenset(
    {
        "bearish_engulfing",
        "shooting_star",
        "double_top",
        "head_and_shoulders",
        "descending_triangle",
        "bear_flag",
    }
)
"""The direction each pattern conventionally signals; the rest (doji, symmetric triangle) is neutral."""
