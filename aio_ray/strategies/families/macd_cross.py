"""``macd_cross``: MACD line crossing its signal line, always in the market.

Pine::

    [m, s, h] = ta.macd(close, fast, slow, signal)
    if ta.crossover(m, s)
        strategy.entry("L", strategy.long)
    if ta.crossunder(m, s)
        strategy.entry("S", strategy.short)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from aio_ray import indicators as ind
from aio_ray.strategies.bars import BarArrays
from aio_ray.strategies.families.base import Family, Rules, crossover, crossunder, memo


class MacdCross(Family):
    name = "macd_cross"

    def _indicators(self, bars: BarArrays, p: dict[str, Any]) -> dict[str, np.ndarray]:
        f, s, g = p["fast"], p["slow"], p["signal"]
        line, sig, hist = memo(
            bars, ("macd", "close", f, s, g), lambda: ind.macd(bars.close, f, s, g)
        )
        return {"macd": line, "signal": sig, "hist": hist}

    def _rules(self, bars: BarArrays, i: dict[str, np.ndarray], p: dict[str, Any]) -> Rules:
        none = np.zeros(len(bars), dtype=bool)
        return Rules(
            long_entry=crossover(i["macd"], i["signal"]),
            short_entry=crossunder(i["macd"], i["signal"]),
            long_exit=none,
            short_exit=none.copy(),
        )
