"""What the two Bollinger-band families share: the band parameters, the bands (in numpy and in
Pine) and rules made of the close crossing a band.

A Bollinger family declares only its name, its space (:func:`bollinger_space`) and
:attr:`BollingerFamily.crosses`, its four conditions as ``(direction, band)`` pairs: the
numpy rules and the Pine template are both read from that table, so they cannot drift apart.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np

from aio_ray import indicators as ind
from aio_ray.bars.arrays import BarArrays
from aio_ray.pine import templates as pt
from aio_ray.pine.builder import Expr, ScriptBuilder
from aio_ray.pine.templates import PineParts
from aio_ray.strategies.families.base import Family, Rules, crossover, crossunder, memo
from aio_ray.strategies.params import FloatParam, IntParam, Space, family_space

__all__ = ["BollingerFamily", "Cross", "bollinger_space"]

Band = Literal["bb_upper", "bb_middle", "bb_lower"]
Cross = tuple[Literal["over", "under"], Band]
"""``("over", "bb_upper")``: the close crosses over the upper band (Pine ``ta.crossover``)."""


def bollinger_space(family: str, doc: str) -> Space:
    """The space of a Bollinger family: band ``length`` and ``mult``, then the shared ones."""
    return family_space(
        family,
        doc,
        (
            IntParam("length", 5, 100, 1, default=20, doc="band length, bars"),
            FloatParam("mult", 1.0, 4.0, 0.1, default=2.0, doc="band width, standard deviations"),
        ),
    )


class BollingerFamily(Family):
    """A family trading the close crossing its Bollinger bands (``ta.bb(close, length, mult)``,
    plotted as ``bb_upper``, ``bb_middle`` and ``bb_lower`` on the price chart)."""

    crosses: ClassVar[tuple[Cross, Cross, Cross, Cross]]
    """Long entry, short entry, long exit and short exit, each the close crossing a band."""

    def _indicators(self, bars: BarArrays, p: dict[str, Any]) -> dict[str, np.ndarray]:
        n, k = p["length"], p["mult"]
        up, mid, lo = memo(bars, ("bbands", "close", n, k), lambda: ind.bbands(bars.close, n, k))
        return {"bb_upper": up, "bb_middle": mid, "bb_lower": lo}

    def _rules(self, bars: BarArrays, i: dict[str, np.ndarray], p: dict[str, Any]) -> Rules:
        c = bars.close
        le, se, lx, sx = (
            (crossover if way == "over" else crossunder)(c, i[band]) for way, band in self.crosses
        )
        return Rules(long_entry=le, short_entry=se, long_exit=lx, short_exit=sx)

    def pine(self, b: ScriptBuilder, i: dict[str, Expr]) -> PineParts:
        c = pt.SERIES["close"]
        mid, up, lo = b.unpack(
            ("bb_middle", "bb_upper", "bb_lower"), "ta.bb", c, i["length"], i["mult"]
        )
        bands = {"bb_upper": up, "bb_middle": mid, "bb_lower": lo}
        le, se, lx, sx = (pt.call(f"ta.cross{way}", c, bands[band]) for way, band in self.crosses)
        return pt.PineParts(True, bands, le, se, lx, sx)
