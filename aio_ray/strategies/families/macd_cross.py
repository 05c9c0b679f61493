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
from aio_ray.bars.arrays import BarArrays
from aio_ray.pine import templates as pt
from aio_ray.pine.builder import Expr, ScriptBuilder
from aio_ray.pine.templates import PineParts
from aio_ray.strategies.families.base import Family, Rules, crossover, crossunder, memo
from aio_ray.strategies.params import IntParam, Less, family_space

__all__ = ["MacdCross"]


class MacdCross(Family):
    name = "macd_cross"
    space = family_space(
        name,
        "MACD line crossing its signal line, always in the market.",
        (
            IntParam("fast", 2, 50, 1, default=12, doc="fast EMA length, bars"),
            IntParam("slow", 5, 100, 1, default=26, doc="slow EMA length, bars"),
            IntParam("signal", 2, 50, 1, default=9, doc="signal EMA length, bars"),
        ),
        (Less("fast", "slow"),),
    )

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

    def pine(self, b: ScriptBuilder, i: dict[str, Expr]) -> PineParts:
        m, s, h = b.unpack(
            ("macd_line", "signal_line", "hist_line"),
            "ta.macd",
            pt.SERIES["close"],
            i["fast"],
            i["slow"],
            i["signal"],
        )
        return pt.PineParts(
            False,
            {"macd": m, "signal": s, "hist": h},
            pt.call("ta.crossover", m, s),
            pt.call("ta.crossunder", m, s),
            pt.FALSE,
            pt.FALSE,
        )
