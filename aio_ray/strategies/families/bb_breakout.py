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

Parameters, bands, rules and Pine template come from :mod:`._bollinger` (shared with
``bb_reversion``); this file states the space's doc and the four crosses.
"""

from __future__ import annotations

from aio_ray.strategies.families._bollinger import BollingerFamily, bollinger_space

__all__ = ["BbBreakout"]


class BbBreakout(BollingerFamily):
    name = "bb_breakout"
    space = bollinger_space(
        name,
        "Bollinger breakout: long when the close crosses above the upper band, short below "
        "the lower band; exit when the close crosses back through the middle band.",
    )
    crosses = (
        ("over", "bb_upper"),  # long entry
        ("under", "bb_lower"),  # short entry
        ("under", "bb_middle"),  # long exit
        ("over", "bb_middle"),  # short exit
    )
