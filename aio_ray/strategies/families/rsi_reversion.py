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
from aio_ray.bars.arrays import BarArrays
from aio_ray.pine import templates as pt
from aio_ray.pine.builder import Expr, ScriptBuilder
from aio_ray.pine.templates import PineParts
from aio_ray.strategies.families.base import Family, Rules, crossover, crossunder, memo
from aio_ray.strategies.params import IntParam, family_space

__all__ = ["MIDLINE", "RsiReversion"]

MIDLINE = 50.0


class RsiReversion(Family):
    name = "rsi_reversion"
    space = family_space(
        name,
        "RSI mean reversion: long when RSI crosses up through `lower`, short when it crosses "
        "down through `upper`; exit when RSI crosses the 50 midline.",
        (
            IntParam("length", 2, 50, 1, default=14, doc="RSI length, bars"),
            IntParam("lower", 10, 45, 1, default=30, doc="oversold level, RSI points"),
            IntParam("upper", 55, 90, 1, default=70, doc="overbought level, RSI points"),
        ),
    )

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

    def pine(self, b: ScriptBuilder, i: dict[str, Expr]) -> PineParts:
        r = b.let("rsi_value", pt.call("ta.rsi", pt.SERIES["close"], i["length"]))
        mid = pt.float_(MIDLINE)
        return pt.PineParts(
            False,
            {"rsi": r},
            pt.call("ta.crossover", r, i["lower"]),
            pt.call("ta.crossunder", r, i["upper"]),
            pt.call("ta.crossover", r, mid),
            pt.call("ta.crossunder", r, mid),
        )
