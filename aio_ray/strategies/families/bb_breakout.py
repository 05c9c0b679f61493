"""``bb_breakout``: trade in the direction of a close breaking out of the Bollinger band.

Pine::

    [mid, up, lo] = ta.bb(close, length, mult)
    if ta.crossover(close, up)
        strategy.entry("L", strategy.long)
    if ta.crossunder(close, lo)
        strategy.entry("S", strategy.short)
    if ta.crossunder(close, mid)
        strategy.close("L")
    if ta.crossover(close, mid)
        strategy.close("S")
"""

from __future__ import annotations

from typing import Any

import numpy as np

from aio_ray import indicators as ind
from aio_ray.strategies.bars import BarArrays
from aio_ray.strategies.families.base import Family, Rules, crossover, crossunder, memo


class BbBreakout(Family):
    name = "bb_breakout"

    def _indicators(self, bars: BarArrays, p: dict[str, Any]) -> dict[str, np.ndarray]:
        n, k = p["length"], p["mult"]
        up, mid, lo = memo(bars, ("bbands", "close", n, k), lambda: ind.bbands(bars.close, n, k))
        return {"bb_upper": up, "bb_middle": mid, "bb_lower": lo}

    def _rules(self, bars: BarArrays, i: dict[str, np.ndarray], p: dict[str, Any]) -> Rules:
        c = bars.close
        return Rules(
            long_entry=crossover(c, i["bb_upper"]),
            short_entry=crossunder(c, i["bb_lower"]),
            long_exit=crossunder(c, i["bb_middle"]),
            short_exit=crossover(c, i["bb_middle"]),
        )
