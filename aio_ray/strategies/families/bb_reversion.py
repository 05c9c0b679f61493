"""``bb_reversion``: fade a close that returns inside the Bollinger band; exit at the middle.

Pine::

    [mid, up, lo] = ta.bb(close, length, mult)
    if ta.crossover(close, lo)
        strategy.entry("L", strategy.long)     // back inside from below
    if ta.crossunder(close, up)
        strategy.entry("S", strategy.short)    // back inside from above
    if ta.crossover(close, mid)
        strategy.close("L")
    if ta.crossunder(close, mid)
        strategy.close("S")

Parameters, bands, rules and Pine template come from :mod:`._bollinger` (shared with
``bb_breakout``); this file states the space's doc and the four crosses.
"""

from __future__ import annotations

from aio_ray.strategies.families._bollinger import BollingerFamily, bollinger_space

__all__ = ["BbReversion"]


class BbReversion(BollingerFamily):
    name = "bb_reversion"
    space = bollinger_space(
        name,
        "Bollinger reversion: fade a close that crosses back inside the band (long from "
        "below the lower band, short from above the upper); exit at the middle band.",
    )
    crosses = (
        ("over", "bb_lower"),  # long entry: back inside from below
        ("under", "bb_upper"),  # short entry: back inside from above
        ("over", "bb_middle"),  # long exit
        ("under", "bb_middle"),  # short exit
    )
