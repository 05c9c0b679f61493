"""The small interface every strategy family implements, and the Pine-style helpers they share.

A family is one file with a :class:`Family` subclass: ``name`` (its key in
:data:`aio_ray.strategies.space.SPACES`), ``_indicators`` (the series a Pine script would plot)
and ``_rules`` (four boolean arrays). The base class validates parameters, adds the optional ATR
stop / target and enforces the bar-close, no-look-ahead contract of
:class:`aio_ray.strategies.signals.Signals`.

Conventions shared by all families (each is a few lines of Pine v6):

* Rules use only values up to and including the bar they fire on; the engine acts at the next
  bar's open, like ``strategy.entry`` with ``process_orders_on_close=false``.
* ``crossover(a, b)`` is Pine's ``ta.crossover``: ``a[i] > b[i] and a[i-1] <= b[i-1]``;
  ``crossunder`` the mirror. Any NaN among the four values (warm-up, missing data) gives
  false, as Pine's comparisons with ``na`` do; bar 0 never crosses.
* An entry reverses an opposite position. On a bar with an entry the exit flags are cleared,
  and a bar with both a long and a short entry (impossible in the six families) enters neither.
* ``stop_dist = stop_atr * atr(atr_length)`` and ``take_dist = take_atr * atr(atr_length)`` at
  every bar (price units), NaN when the multiple is 0 (off) or ATR is still warming up.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from aio_ray import indicators as ind
from aio_ray.strategies.bars import BarArrays
from aio_ray.strategies.signals import Signals
from aio_ray.strategies.space import SPACES, ParameterError, Space, validate

__all__ = ["Family", "Rules", "crossover", "crossunder"]


def crossover(a: np.ndarray, b: np.ndarray | float) -> np.ndarray:
    """Pine ``ta.crossover(a, b)`` per bar: ``a[i] > b[i] and a[i-1] <= b[i-1]`` (NaN: false)."""
    a = np.asarray(a, dtype=np.float64)
    bb = np.broadcast_to(np.asarray(b, dtype=np.float64), a.shape)
    out = np.zeros(a.shape, dtype=bool)
    out[1:] = (a[1:] > bb[1:]) & (a[:-1] <= bb[:-1])
    return out


def crossunder(a: np.ndarray, b: np.ndarray | float) -> np.ndarray:
    """Pine ``ta.crossunder(a, b)`` per bar: ``a[i] < b[i] and a[i-1] >= b[i-1]`` (NaN: false)."""
    a = np.asarray(a, dtype=np.float64)
    bb = np.broadcast_to(np.asarray(b, dtype=np.float64), a.shape)
    out = np.zeros(a.shape, dtype=bool)
    out[1:] = (a[1:] < bb[1:]) & (a[:-1] >= bb[:-1])
    return out


@dataclass(frozen=True)
class Rules:
    """The four raw per-bar conditions a family decides on each bar's close."""

    long_entry: np.ndarray
    short_entry: np.ndarray
    long_exit: np.ndarray
    short_exit: np.ndarray


class Family(ABC):
    """A strategy family: rules over indicators, parameters declared in ``SPACES[name]``."""

    name: ClassVar[str]

    @property
    def space(self) -> Space:
        """The declared parameter space (ranges, steps, defaults, constraints)."""
        return SPACES[self.name]

    @property
    def doc(self) -> str:
        return self.space.doc

    def indicators(self, bars: BarArrays, params: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """The series the family's Pine script plots (for parity checks), each of ``len(bars)``:
        the family's own plus ``atr`` (``atr_length``) used for stops and targets."""
        p = validate(self.name, params)
        out = self._indicators(bars, p)
        out["atr"] = ind.atr(bars.high, bars.low, bars.close, p["atr_length"])
        return out

    def warmup_bars(self, bars: BarArrays, params: Mapping[str, Any]) -> int:
        """Bars before every indicator the rules use is defined (first index with all finite).

        Raises ParameterError when ``bars`` are too few for some indicator to be defined at
        all, naming the family, the number of bars and the indicator.
        """
        p = validate(self.name, params)
        first = 0
        for name, series in self._indicators(bars, p).items():
            finite = np.flatnonzero(np.isfinite(series))
            if finite.size == 0:
                raise ParameterError(
                    self.name,
                    f"{len(bars)} bars are too few for the warm-up: {name!r} is undefined on every bar",
                )
            first = max(first, int(finite[0]))
        return first

    def signals(self, bars: BarArrays, params: Mapping[str, Any]) -> Signals:
        """Orders decided on each bar's close from bars ``0..i`` only (see module docstring).

        Raises ParameterError (aio_ray.strategies.space) for an invalid parameter set.
        """
        p = validate(self.name, params)
        r = self._rules(bars, self._indicators(bars, p), p)
        both = r.long_entry & r.short_entry
        long_entry = r.long_entry & ~both
        short_entry = r.short_entry & ~both
        entry = long_entry | short_entry
        n = len(bars)
        if p["stop_atr"] > 0 or p["take_atr"] > 0:
            atr = ind.atr(bars.high, bars.low, bars.close, p["atr_length"])
        else:
            atr = np.full(n, np.nan)
        return Signals(
            long_entry=long_entry,
            short_entry=short_entry,
            long_exit=r.long_exit & ~entry,
            short_exit=r.short_exit & ~entry,
            stop_dist=p["stop_atr"] * atr if p["stop_atr"] > 0 else np.full(n, np.nan),
            take_dist=p["take_atr"] * atr if p["take_atr"] > 0 else np.full(n, np.nan),
        )

    @abstractmethod
    def _indicators(self, bars: BarArrays, p: dict[str, Any]) -> dict[str, np.ndarray]:
        """Compute the family's indicator series from validated parameters ``p``."""

    @abstractmethod
    def _rules(self, bars: BarArrays, ind: dict[str, np.ndarray], p: dict[str, Any]) -> Rules:
        """Turn indicator series into the four raw conditions."""

    def __repr__(self) -> str:
        return f"<Family {self.name}>"
