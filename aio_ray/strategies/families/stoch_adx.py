"""``stoch_adx``: stochastic %K/%D cross taken only in a trend confirmed by ADX and +DI/-DI.

The cross must agree with the DI direction: a pullback entry in the trend's direction. The
position is closed when +DI/-DI cross against it (the trend has turned). Pine::

    k = ta.sma(ta.stoch(close, high, low, kLen), smoothK)
    d = ta.sma(k, dLen)
    [plusDI, minusDI, adx] = ta.dmi(diLength, adxSmoothing)
    trending = adx > adxThreshold
    if ta.crossover(k, d) and trending and plusDI > minusDI
        strategy.entry("L", strategy.long)
    if ta.crossunder(k, d) and trending and minusDI > plusDI
        strategy.entry("S", strategy.short)
    if ta.crossunder(plusDI, minusDI)
        strategy.close("L")
    if ta.crossover(plusDI, minusDI)
        strategy.close("S")
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
from aio_ray.strategies.params import FloatParam, IntParam, family_space

__all__ = ["StochAdx"]


class StochAdx(Family):
    name = "stoch_adx"
    space = family_space(
        name,
        "Stochastic %K/%D cross in the trend's direction: long on %K crossing above %D while "
        "ADX > threshold and +DI > -DI, short on the mirror; exit when +DI/-DI cross against "
        "the position.",
        (
            IntParam("k", 5, 50, 1, default=14, doc="stochastic length, bars"),
            IntParam("smooth_k", 1, 10, 1, default=3, doc="%K smoothing, bars"),
            IntParam("d", 1, 10, 1, default=3, doc="%D length, bars"),
            IntParam("di_length", 5, 50, 1, default=14, doc="+DI/-DI length, bars"),
            IntParam("adx_smoothing", 5, 50, 1, default=14, doc="ADX smoothing, bars"),
            FloatParam("adx_threshold", 10.0, 50.0, 1.0, default=20.0, doc="minimum ADX, points"),
        ),
    )

    def _indicators(self, bars: BarArrays, p: dict[str, Any]) -> dict[str, np.ndarray]:
        kn, sk, dn, di, ax = p["k"], p["smooth_k"], p["d"], p["di_length"], p["adx_smoothing"]
        k, d = memo(
            bars,
            ("stoch", kn, sk, dn),
            lambda: ind.stoch(bars.high, bars.low, bars.close, kn, sk, dn),
        )
        plus, minus, adx = memo(
            bars, ("dmi", di, ax), lambda: ind.dmi(bars.high, bars.low, bars.close, di, ax)
        )
        return {"stoch_k": k, "stoch_d": d, "plus_di": plus, "minus_di": minus, "adx": adx}

    def _rules(self, bars: BarArrays, i: dict[str, np.ndarray], p: dict[str, Any]) -> Rules:
        trending = i["adx"] > p["adx_threshold"]
        up = i["plus_di"] > i["minus_di"]
        down = i["minus_di"] > i["plus_di"]
        return Rules(
            long_entry=crossover(i["stoch_k"], i["stoch_d"]) & trending & up,
            short_entry=crossunder(i["stoch_k"], i["stoch_d"]) & trending & down,
            long_exit=crossunder(i["plus_di"], i["minus_di"]),
            short_exit=crossover(i["plus_di"], i["minus_di"]),
        )

    def pine(self, b: ScriptBuilder, i: dict[str, Expr]) -> PineParts:
        s = pt.SERIES
        raw = pt.call("ta.stoch", s["close"], s["high"], s["low"], i["k"])
        k = b.let("stoch_k", pt.call("ta.sma", raw, i["smooth_k"]))
        d = b.let("stoch_d", pt.call("ta.sma", k, i["d"]))
        plus, minus, adx = b.unpack(
            ("plus_di", "minus_di", "adx_value"), "ta.dmi", i["di_length"], i["adx_smoothing"]
        )
        trending = b.let("trending", adx.gt(i["adx_threshold"]))
        return pt.PineParts(
            False,
            {"stoch_k": k, "stoch_d": d, "plus_di": plus, "minus_di": minus, "adx": adx},
            pt.call("ta.crossover", k, d).and_(trending, plus.gt(minus)),
            pt.call("ta.crossunder", k, d).and_(trending, minus.gt(plus)),
            pt.call("ta.crossunder", plus, minus),
            pt.call("ta.crossover", plus, minus),
        )
