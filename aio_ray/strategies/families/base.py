"""The small interface every strategy family implements, and the Pine-style helpers they share.

A family is one file with a :class:`Family` subclass, registered in
:data:`aio_ray.strategies.families.FAMILIES`: ``name`` (its key there and in
:data:`aio_ray.strategies.space.SPACES`), ``space`` (its parameters, declared with
:func:`aio_ray.strategies.params.family_space`), ``_indicators`` (the series a Pine script would
plot), ``_rules`` (four boolean arrays) and ``pine`` (the same indicators and rules written
with the Pine builder, see :mod:`aio_ray.pine.templates`). The base class validates
parameters, adds the optional ATR stop / target and enforces the bar-close, no-look-ahead
contract of :class:`aio_ray.strategies.signals.Signals`.

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
* Pattern filter (``pattern_filter``, ``pattern_lookback``; see
  :mod:`aio_ray.strategies.params`): with a candlestick pattern set, a raw entry on bar ``i``
  (long or short) stands only when the pattern fired on one of bars
  ``i - pattern_lookback + 1 .. i`` (:func:`pattern_gate`); exits are not filtered. It is
  applied before the cleaning above, so an entry the filter removes no longer clears the exits
  of its bar. Pine: ``ta.barssince(pattern) < pattern_lookback`` (false while the pattern
  has never fired, as ``na < n`` is).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from aio_ray import indicators as ind
from aio_ray.bars.arrays import BarArrays
from aio_ray.patterns.detectors import detect_candles
from aio_ray.pine.builder import Expr, ScriptBuilder
from aio_ray.pine.templates import PineParts
from aio_ray.strategies.params import PATTERN_NONE, ParameterError, Space, validate_params
from aio_ray.strategies.signals import Signals

__all__ = [
    "PATTERN_KEY",
    "Family",
    "MemoBars",
    "Rules",
    "crossover",
    "crossunder",
    "memo",
    "pattern_gate",
]

PATTERN_KEY = "pattern"
"""Key of the 0/1 pattern series in :meth:`Family.indicators` (and plot title in Pine)."""


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


def pattern_gate(fired: np.ndarray, lookback: int) -> np.ndarray:
    """Bars on which an entry is allowed: ``fired`` on that bar or one of the ``lookback - 1``
    bars before it (``lookback`` in bars, >= 1). Pine ``ta.barssince(fired) < lookback``."""
    if lookback < 1:
        raise ValueError(f"pattern_gate: lookback must be >= 1 bar, got {lookback}")
    f = np.asarray(fired, dtype=bool)
    c = np.concatenate([[0], np.cumsum(f, dtype=np.int64)])
    n = f.shape[0]
    hi = np.arange(1, n + 1)
    lo = np.maximum(hi - lookback, 0)
    return np.asarray(c[hi] - c[lo] > 0)


@dataclass(frozen=True, eq=False)
class MemoBars(BarArrays):
    """Bars that remember the series computed on them (see :func:`memo`).

    A population of candidates of one family on one timeframe shares one ``MemoBars``: an SMA
    of length 20, an ATR of length 14 or a candle pattern is computed once for all of them.
    Slicing gives plain :class:`BarArrays` (a slice never sees its parent's series).
    """

    memo: dict[Any, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, bars: BarArrays) -> MemoBars:
        """The same arrays (no copy) with an empty memo."""
        return cls(bars.ts, bars.open, bars.high, bars.low, bars.close)


def memo(bars: BarArrays, key: tuple[Any, ...], compute: Callable[[], Any]) -> Any:
    """``compute()``, remembered under ``key`` when ``bars`` is a :class:`MemoBars`.

    ``key`` must name everything the value depends on besides the bars (function and
    parameters), e.g. ``("sma", "close", 20)``. Callers must not modify the returned arrays.
    """
    store = getattr(bars, "memo", None)
    if store is None:
        return compute()
    try:
        return store[key]
    except KeyError:
        value = store[key] = compute()
        return value


def pattern_series(bars: BarArrays, name: str) -> np.ndarray:
    """Where the candlestick pattern ``name`` completes (bool per bar, from bars <= it)."""
    table = memo(
        bars, ("candles",), lambda: detect_candles(bars.open, bars.high, bars.low, bars.close)
    )
    fired: np.ndarray = memo(bars, ("candle", name), lambda: np.asarray(table[name], dtype=bool))
    return fired


def _atr(bars: BarArrays, length: int) -> np.ndarray:
    out: np.ndarray = memo(
        bars, ("atr", length), lambda: ind.atr(bars.high, bars.low, bars.close, length)
    )
    return out


@dataclass(frozen=True)
class Rules:
    """The four raw per-bar conditions a family decides on each bar's close."""

    long_entry: np.ndarray
    short_entry: np.ndarray
    long_exit: np.ndarray
    short_exit: np.ndarray


class Family(ABC):
    """A strategy family: rules over indicators, its parameter space and its Pine template."""

    name: ClassVar[str]
    space: ClassVar[Space]
    """The declared parameter space (ranges, steps, defaults, constraints); ``SPACES[name]``."""

    @property
    def doc(self) -> str:
        return self.space.doc

    def indicators(self, bars: BarArrays, params: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """The series the family's Pine script plots (for parity checks), each of ``len(bars)``:
        the family's own plus ``atr`` (``atr_length``) used for stops and targets and, with a
        pattern filter set, ``pattern`` (:data:`PATTERN_KEY`): 1.0 on the bars where the
        pattern completes, else 0.0."""
        p = validate_params(self.space, params)
        out = self._indicators(bars, p)
        out["atr"] = _atr(bars, p["atr_length"])
        if p["pattern_filter"] != PATTERN_NONE:
            out[PATTERN_KEY] = pattern_series(bars, p["pattern_filter"]).astype(np.float64)
        return out

    def warmup_bars(self, bars: BarArrays, params: Mapping[str, Any]) -> int:
        """Bars before every indicator the rules use is defined (first index with all finite).

        Raises ParameterError when ``bars`` are too few for some indicator to be defined at
        all, naming the family, the number of bars and the indicator.
        """
        p = validate_params(self.space, params)
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

    def signals(
        self, bars: BarArrays, params: Mapping[str, Any], *, checked: bool = False
    ) -> Signals:
        """Orders decided on each bar's close from bars ``0..i`` only (see module docstring).

        Raises ParameterError (aio_ray.strategies.params) for an invalid parameter set.
        ``checked=True`` says ``params`` is already the output of ``validate`` (a population
        validates each set once) and skips the check.
        """
        p = dict(params) if checked else validate_params(self.space, params)
        r = self._rules(bars, self._indicators(bars, p), p)
        raw_long, raw_short = r.long_entry, r.short_entry
        if p["pattern_filter"] != PATTERN_NONE:
            name, look = p["pattern_filter"], p["pattern_lookback"]
            ok = memo(
                bars,
                ("pattern_gate", name, look),
                lambda: pattern_gate(pattern_series(bars, name), look),
            )
            raw_long, raw_short = raw_long & ok, raw_short & ok
        both = raw_long & raw_short
        long_entry = raw_long & ~both
        short_entry = raw_short & ~both
        entry = long_entry | short_entry
        n = len(bars)
        if p["stop_atr"] > 0 or p["take_atr"] > 0:
            atr = _atr(bars, p["atr_length"])
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

    @abstractmethod
    def pine(self, b: ScriptBuilder, i: dict[str, Expr]) -> PineParts:
        """The Pine template: write the indicators into ``b`` from the inputs ``i`` (one
        ``input.*`` variable per parameter, by name) and return their plots (titled as the
        keys of :meth:`indicators`) and the four raw conditions of :meth:`_rules`."""

    def __repr__(self) -> str:
        return f"<Family {self.name}>"
