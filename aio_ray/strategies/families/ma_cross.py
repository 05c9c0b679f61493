"""``ma_cross``: moving-average crossover, always in the market after the first cross.

Pine::

    fastMA = ma == "sma" ? ta.sma(close, fast) : ta.ema(close, fast)
    slowMA = ma == "sma" ? ta.sma(close, slow) : ta.ema(close, slow)
    if ta.crossover(fastMA, slowMA)
        strategy.entry("L", strategy.long)     // reverses a short
    if ta.crossunder(fastMA, slowMA)
        strategy.entry("S", strategy.short)    // reverses a long

No exit rule: a position lasts until the opposite cross (or its ATR stop / target, after which
the strategy is flat until the next cross).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from aio_ray import indicators as ind
from aio_ray.strategies.bars import BarArrays
from aio_ray.strategies.families.base import Family, Rules, crossover, crossunder, memo


class MaCross(Family):
    name = "ma_cross"

    def _indicators(self, bars: BarArrays, p: dict[str, Any]) -> dict[str, np.ndarray]:
        ma = ind.sma if p["ma"] == "sma" else ind.ema
        kind, fast, slow = p["ma"], p["fast"], p["slow"]
        return {
            "fast_ma": memo(bars, (kind, "close", fast), lambda: ma(bars.close, fast)),
            "slow_ma": memo(bars, (kind, "close", slow), lambda: ma(bars.close, slow)),
        }

    def _rules(self, bars: BarArrays, i: dict[str, np.ndarray], p: dict[str, Any]) -> Rules:
        none = np.zeros(len(bars), dtype=bool)
        return Rules(
            long_entry=crossover(i["fast_ma"], i["slow_ma"]),
            short_entry=crossunder(i["fast_ma"], i["slow_ma"]),
            long_exit=none,
            short_exit=none.copy(),
        )
