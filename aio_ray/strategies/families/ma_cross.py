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
from aio_ray.bars.arrays import BarArrays
from aio_ray.pine import templates as pt
from aio_ray.pine.builder import Expr, ScriptBuilder
from aio_ray.pine.templates import PineParts
from aio_ray.strategies.families.base import Family, Rules, crossover, crossunder, memo
from aio_ray.strategies.params import ChoiceParam, IntParam, Less, family_space

__all__ = ["MaCross"]


class MaCross(Family):
    name = "ma_cross"
    space = family_space(
        name,
        "Moving-average crossover, always in the market: long when the fast MA crosses above "
        "the slow one, short when it crosses below.",
        (
            IntParam("fast", 2, 100, 1, default=10, doc="fast MA length, bars"),
            IntParam("slow", 5, 300, 1, default=30, doc="slow MA length, bars"),
            ChoiceParam("ma", ("sma", "ema"), default="ema", doc="moving-average type"),
        ),
        (Less("fast", "slow"),),
    )

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

    def pine(self, b: ScriptBuilder, i: dict[str, Expr]) -> PineParts:
        close = pt.SERIES["close"]
        sma_f = b.let("sma_fast", pt.call("ta.sma", close, i["fast"]))
        ema_f = b.let("ema_fast", pt.call("ta.ema", close, i["fast"]))
        sma_s = b.let("sma_slow", pt.call("ta.sma", close, i["slow"]))
        ema_s = b.let("ema_slow", pt.call("ta.ema", close, i["slow"]))
        is_sma = i["ma"].eq_str(pt.string("sma"))
        fast = b.let("fast_ma", is_sma.choose(sma_f, ema_f))
        slow = b.let("slow_ma", is_sma.choose(sma_s, ema_s))
        return pt.PineParts(
            True,
            {"fast_ma": fast, "slow_ma": slow},
            pt.call("ta.crossover", fast, slow),
            pt.call("ta.crossunder", fast, slow),
            pt.FALSE,
            pt.FALSE,
        )
