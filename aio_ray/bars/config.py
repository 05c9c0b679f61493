"""Configuration of the bars stage: which timeframes are built and how days are cut."""

from __future__ import annotations

from typing import Literal

from aio_ray.frozen import Frozen

__all__ = ["BarsConfig"]


class BarsConfig(Frozen):
    """Which bars are built and how days are cut."""

    timeframes: tuple[str, ...] = ("1m", "5m", "15m", "30m", "1h", "4h", "1d")
    daily_close: Literal["utc", "new_york_close"] = "utc"
