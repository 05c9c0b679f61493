"""``rsi_reversion``: RSI mean reversion with a midline exit.

Pine::

    r = ta.rsi(close, length)
    if ta.crossover(r, lower)
        strategy.entry("L", strategy.long)     // RSI leaves oversold upwards
    if ta.crossunder(r, upper)
        strategy.entry("S", strategy.short)    // RSI leaves overbought downwards
    if ta.crossover(r, 50)
        strategy.close("L")
    if ta.crossunder(r, 50)
        strategy.close("S")

``lower`` (10..45) and ``upper`` (55..90) lie on either side of the 50 midline by declaration.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from aio_ray import indicators as ind
from aio_ray.strategies.bars import BarArrays
from aio_ray.strategies.families.base import Family, Rules, crossover, crossunder, memo

MIDLINE = 50.0


class RsiReversion(Family):
    name = "rsi_reversion"

    def _indicators(self, bars: BarArrays, p: dict[str, Any]) -> dict[str, np.ndarray]:
        n = p["length"]
        return {"rsi": memo(bars, ("rsi", "close", n), lambda: ind.rsi(bars.close, n))}

    def _rules(self, bars: BarArrays, i: dict[str, np.ndarray], p: dict[str, Any]) -> Rules:
        r = i["rsi"]
        return Rules(
            long_entry=crossover(r, float(p["lower"])),
            short_entry=crossunder(r, float(p["upper"])),
            long_exit=crossover(r, MIDLINE),
            short_exit=crossunder(r, MIDLINE),
        )
