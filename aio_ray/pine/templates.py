"""What a strategy family's Pine template returns, and the builder pieces templates use.

A template is the ``pine`` method of a :class:`aio_ray.strategies.families.base.Family`: it
writes the family's indicators with the typed builder of :mod:`aio_ray.pine.builder` and
returns their plots and its four raw conditions as :class:`PineParts`;
:func:`aio_ray.pine.generate.generate` adds everything the families share (inputs, ATR
stops and targets, the pattern filter, the cleaning of the conditions, orders, plots).

Stable public API::

    PineParts(overlay, indicators, long_entry, short_entry, long_exit, short_exit)
    PineTemplate                  # (ScriptBuilder, inputs by parameter name) -> PineParts
    FALSE                         # the Pine literal false (a condition that never fires)
    call, string, float_, SERIES  # re-exported from aio_ray.pine.builder

This module imports only :mod:`aio_ray.pine.builder` (never the strategies), so the families
and the generator can both depend on it. A family imports it inside its ``pine`` method: the
``aio_ray.pine`` package imports the families (generate, verify), and a backtest never needs
Pine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aio_ray.pine import builder as pb
from aio_ray.pine.builder import SERIES, Expr, ScriptBuilder, call, float_, string

__all__ = ["FALSE", "SERIES", "PineParts", "PineTemplate", "call", "float_", "string"]


@dataclass(frozen=True)
class PineParts:
    """A family's share of a script, as its template wrote it.

    Attributes
    ----------
    overlay
        Whether the indicators belong on the price chart (``indicator(overlay=...)``).
    indicators
        Plot title (the key of the same series in ``Family.indicators``) -> value, in plot
        order.
    long_entry, short_entry, long_exit, short_exit
        The four raw conditions, before the pattern filter and the cleaning.
    """

    overlay: bool
    indicators: dict[str, Expr]
    long_entry: Expr
    short_entry: Expr
    long_exit: Expr
    short_exit: Expr


PineTemplate = Callable[[ScriptBuilder, dict[str, Expr]], PineParts]
"""A template: the builder to write into and the inputs (``i_<param>`` variables) by name."""

FALSE: Expr = pb.boolean(False)
"""The literal ``false``: the exit of a family that has none (always in the market)."""
