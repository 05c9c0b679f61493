"""Strategy families: one file per family behind :class:`~.base.Family`, registered here.

Stable public API::

    FAMILIES: dict[str, Family]                 # "ma_cross", "rsi_reversion", "macd_cross",
                                                # "bb_breakout", "bb_reversion", "stoch_adx"
    get_family(name) -> Family                  # ParameterError naming the known ones
    Family.signals(bars: BarArrays, params) -> Signals
    Family.indicators(bars: BarArrays, params) -> dict[str, ndarray]
    Family.space -> Space                       # aio_ray.strategies.space.SPACES[name]
    Family.pine(builder, inputs) -> PineParts   # the Pine template (aio_ray.pine.templates)
    crossover(a, b), crossunder(a, b)           # Pine's ta.crossover / ta.crossunder

A family is one file: its parameter space (declared with
:func:`aio_ray.strategies.params.family_space`, which Optuna, the grids, the Pine generator and
the dashboard read), its rules (``_indicators`` and ``_rules``; the module docstring holds
them written in Pine v6) and its Pine template (``pine``). Adding a family is that file, one
line in :data:`FAMILIES` below (the one list: :data:`aio_ray.strategies.space.SPACES` and the
generator read it) and its tests. ``bb_breakout`` and ``bb_reversion`` share their code in
:mod:`._bollinger`.
"""

from __future__ import annotations

from aio_ray.strategies.families.base import Family, Rules, crossover, crossunder
from aio_ray.strategies.families.bb_breakout import BbBreakout
from aio_ray.strategies.families.bb_reversion import BbReversion
from aio_ray.strategies.families.ma_cross import MaCross
from aio_ray.strategies.families.macd_cross import MacdCross
from aio_ray.strategies.families.rsi_reversion import RsiReversion
from aio_ray.strategies.families.stoch_adx import StochAdx
from aio_ray.strategies.params import ParameterError

__all__ = ["FAMILIES", "Family", "Rules", "crossover", "crossunder", "get_family"]


def _registry(*families: Family) -> dict[str, Family]:
    out: dict[str, Family] = {}
    for f in families:
        if f.name in out:
            raise TypeError(f"strategy family {f.name!r} is registered twice")
        if f.space.family != f.name:
            raise TypeError(f"{f!r}: its space is declared for {f.space.family!r}")
        out[f.name] = f
    return out


FAMILIES: dict[str, Family] = _registry(
    MaCross(), RsiReversion(), MacdCross(), BbBreakout(), BbReversion(), StochAdx()
)
"""Every strategy family by name: the one list (``SPACES`` and the Pine generator read it)."""


def get_family(name: str) -> Family:
    """The family registered as ``name``; ParameterError listing the known names otherwise."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise ParameterError(
            str(name), f"unknown strategy family {name!r}; known: {', '.join(sorted(FAMILIES))}"
        ) from None
