"""Strategy families: one file per family behind :class:`~.base.Family`.

Stable public API::

    FAMILIES: dict[str, Family]                 # "ma_cross", "rsi_reversion", "macd_cross",
                                                # "bb_breakout", "bb_reversion", "stoch_adx"
    get_family(name) -> Family                  # ParameterError naming the known ones
    Family.signals(bars: BarArrays, params) -> Signals
    Family.indicators(bars: BarArrays, params) -> dict[str, ndarray]
    Family.space -> Space                       # aio_ray.strategies.space.SPACES[name]
    crossover(a, b), crossunder(a, b)           # Pine's ta.crossover / ta.crossunder

Parameters are declared in :mod:`aio_ray.strategies.space` (one place for Optuna, grids and
the Pine generator); each module's docstring holds the family's rules written in Pine v6.
"""

from __future__ import annotations

from aio_ray.strategies.families.base import Family, Rules, crossover, crossunder
from aio_ray.strategies.families.bb_breakout import BbBreakout
from aio_ray.strategies.families.bb_reversion import BbReversion
from aio_ray.strategies.families.ma_cross import MaCross
from aio_ray.strategies.families.macd_cross import MacdCross
from aio_ray.strategies.families.rsi_reversion import RsiReversion
from aio_ray.strategies.families.stoch_adx import StochAdx
from aio_ray.strategies.space import SPACES, ParameterError

__all__ = ["FAMILIES", "Family", "Rules", "crossover", "crossunder", "get_family"]

FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (MaCross(), RsiReversion(), MacdCross(), BbBreakout(), BbReversion(), StochAdx())
}
assert set(FAMILIES) == set(SPACES), "every declared space needs a family and vice versa"


def get_family(name: str) -> Family:
    """The family registered as ``name``; ParameterError listing the known names otherwise."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise ParameterError(
            str(name), f"unknown strategy family {name!r}; known: {', '.join(sorted(FAMILIES))}"
        ) from None
