"""The parameter machinery of the strategy families (family-agnostic; imports no family).

Each family declares its space in its own file (:mod:`aio_ray.strategies.families`, one file
per family, with :func:`family_space`); this module holds the parameter classes and the
functions over one :class:`Space`. The family-aware API (``SPACES``, ``validate(family,
params)``, ``sample_optuna``, ``grid``, ``describe`` ...) is :mod:`aio_ray.strategies.space`,
which reads the families registry. The declarations are plain frozen data (no lambdas) so that
the Optuna search, the grid of the benchmarks, the Pine generator and the dashboard all read
the same ranges, steps, defaults and constraints. Stable public API::

    IntParam(name, low, high, step=1, default=..., doc="", optional=False)  # inclusive range
    FloatParam(name, low, high, step, default=..., doc="", optional=False)
    ChoiceParam(name, choices, default=..., doc="", optional=False)
    Less(left, right)                                          # constraint: params[left] < params[right]
    InactiveWhen(param, parent, value)                         # param is inert while parent == value
    Space(family, params, constraints=(), doc="", conditions=())
    family_space(family, doc, params, constraints=()) -> Space # + the risk and pattern params
    RISK_PARAMS                                                # atr_length, stop_atr, take_atr (all families)
    PATTERN_PARAMS                                             # pattern_filter, pattern_lookback (all families)
    PATTERN_NONE                                               # "none": the filter is off
    validate_params(space, params) -> dict                     # raises ParameterError
    space_defaults(space) -> dict
    grid_levels(free, max_product) -> dict                     # levels per parameter of a grid

Units: moving-average, RSI, MACD, Bollinger, stochastic, DMI and ATR lengths are in bars of the
timeframe being tested; RSI/ADX thresholds in indicator points (0..100); Bollinger ``mult`` in
standard deviations; ``stop_atr``/``take_atr`` in multiples of ATR (0 = off);
``pattern_lookback`` in bars.

Pattern filter (every family)
-----------------------------
``pattern_filter`` names one candlestick pattern of
:data:`aio_ray.patterns.vocabulary.CANDLE_PATTERNS` (or ``"none"``, the default: no filter).
With a pattern set, the family's entries, long and short alike, are only taken when that
pattern completed on the entry's signal bar or on one of the ``pattern_lookback - 1`` bars
before it: an entry decided on the close of bar ``i`` needs the pattern on one of bars
``i - pattern_lookback + 1 .. i``. A pattern is judged on its own bar and the bars before it
(:func:`aio_ray.patterns.detectors.detect_candles`), so the filter never looks ahead. Exits,
stops and targets are not filtered. In trading terms: "take the MA cross only when a bullish
engulfing printed within the last 3 bars". The same condition is written into the Pine script
(``ta.barssince(pattern) < pattern_lookback``).

Optional and conditional parameters
-----------------------------------
- ``optional=True`` marks a parameter added after strategies were stored (the two pattern
  parameters): :func:`validate_params` fills it with its default when a parameter set omits
  it, so stored parameter sets stay valid, and ``space.identity_params`` leaves it out while
  it sits at its default, so the id of every strategy defined before it existed does not
  change.
- ``InactiveWhen("pattern_lookback", "pattern_filter", "none")``: the lookback has no effect
  without a pattern. :func:`validate_params` pins it to its default then (two sets that trade
  alike are one strategy), ``space.sample_optuna`` does not draw it (no trial is spent on an
  inert dimension; Optuna's TPE handles such define-by-run conditional parameters), and
  ``space.grid`` does not vary it (``space``: :mod:`aio_ray.strategies.space`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from aio_ray.errors import AioError
from aio_ray.patterns.vocabulary import CANDLE_PATTERNS

__all__ = [
    "PATTERN_CONDITIONS",
    "PATTERN_NONE",
    "PATTERN_PARAMS",
    "RISK_PARAMS",
    "ChoiceParam",
    "Constraint",
    "FloatParam",
    "InactiveWhen",
    "IntParam",
    "Less",
    "Param",
    "ParameterError",
    "Space",
    "family_space",
    "grid_levels",
    "space_defaults",
    "validate_params",
]

_STEP_TOL = 1e-9


class ParameterError(AioError, ValueError):
    """A strategy parameter set is invalid. Names the family, the parameter, its value and
    what is accepted (``param``/``value``/``accepted`` are None where they do not apply)."""

    def __init__(
        self,
        family: str,
        problem: str,
        param: str | None = None,
        value: Any = None,
        accepted: str | None = None,
    ) -> None:
        super().__init__(f"{family}: {problem}")
        self.family = family
        self.param = param
        self.value = value
        self.accepted = accepted


def _fmt(x: float) -> str:
    return f"{x:g}"


@dataclass(frozen=True)
class IntParam:
    """An integer parameter taking ``low, low + step, ..., <= high`` (inclusive)."""

    name: str
    low: int
    high: int
    step: int = 1
    default: int = 0
    doc: str = ""
    optional: bool = False
    kind: Literal["int"] = field(default="int", init=False)

    def __post_init__(self) -> None:
        if not (self.step >= 1 and self.low <= self.high):
            raise ValueError(f"IntParam {self.name}: need step >= 1 and low <= high")
        if not self.contains(self.default):
            raise ValueError(
                f"IntParam {self.name}: default {self.default} not in {self.accepted()}"
            )

    def accepted(self) -> str:
        step = f" step {self.step}" if self.step != 1 else ""
        return f"int in [{self.low}, {self.high}]{step}"

    def contains(self, v: int) -> bool:
        return self.low <= v <= self.high and (v - self.low) % self.step == 0

    def values(self) -> list[int]:
        return list(range(self.low, self.high + 1, self.step))

    def below(self, bound: float) -> int | None:
        """The largest on-step value strictly below ``bound`` (None if there is none)."""
        k = math.ceil((bound - self.low) / self.step) - 1
        v = self.low + min(k, (self.high - self.low) // self.step) * self.step
        return v if k >= 0 else None


@dataclass(frozen=True)
class FloatParam:
    """A float parameter taking ``low + k * step`` for ``k = 0, 1, ...`` up to ``high``."""

    name: str
    low: float
    high: float
    step: float
    default: float = 0.0
    doc: str = ""
    optional: bool = False
    kind: Literal["float"] = field(default="float", init=False)

    def __post_init__(self) -> None:
        if not (self.step > 0 and self.low <= self.high):
            raise ValueError(f"FloatParam {self.name}: need step > 0 and low <= high")
        span = (self.high - self.low) / self.step
        if abs(span - round(span)) > _STEP_TOL:
            raise ValueError(f"FloatParam {self.name}: high - low must be a multiple of step")
        if not self.contains(self.default):
            raise ValueError(
                f"FloatParam {self.name}: default {self.default} not in {self.accepted()}"
            )

    def accepted(self) -> str:
        return f"float in [{_fmt(self.low)}, {_fmt(self.high)}] step {_fmt(self.step)}"

    def _k(self, v: float) -> float:
        return (v - self.low) / self.step

    def contains(self, v: float) -> bool:
        k = self._k(v)
        eps = _STEP_TOL * max(1.0, abs(k))
        return -eps <= k <= self._k(self.high) + eps and abs(k - round(k)) <= eps

    def snap(self, v: float) -> float:
        """``v`` moved onto the step grid (removes float noise such as 0.30000000000000004)."""
        return round(self.low + round(self._k(v)) * self.step, 10)

    def values(self) -> list[float]:
        n = round(self._k(self.high))
        return [self.snap(self.low + i * self.step) for i in range(n + 1)]

    def below(self, bound: float) -> float | None:
        k = math.ceil(self._k(bound) - _STEP_TOL) - 1
        k = min(k, round(self._k(self.high)))
        return self.snap(self.low + k * self.step) if k >= 0 else None


@dataclass(frozen=True)
class ChoiceParam:
    """A categorical parameter (strings)."""

    name: str
    choices: tuple[str, ...]
    default: str = ""
    doc: str = ""
    optional: bool = False
    kind: Literal["choice"] = field(default="choice", init=False)

    def __post_init__(self) -> None:
        if not self.choices or self.default not in self.choices:
            raise ValueError(f"ChoiceParam {self.name}: default must be one of {self.choices}")

    def accepted(self) -> str:
        return "one of " + ", ".join(repr(c) for c in self.choices)

    def contains(self, v: str) -> bool:
        return v in self.choices

    def values(self) -> list[str]:
        return list(self.choices)


Param = IntParam | FloatParam | ChoiceParam


@dataclass(frozen=True)
class Less:
    """Constraint ``params[left] < params[right]`` (both numeric).

    The sampler draws ``right`` first and then ``left`` below it, so it never proposes a
    violation; ``expr`` is the same rule as a Pine/Python expression.
    """

    left: str
    right: str
    kind: Literal["less"] = field(default="less", init=False)

    @property
    def expr(self) -> str:
        return f"{self.left} < {self.right}"

    def holds(self, params: Mapping[str, Any]) -> bool:
        return bool(params[self.left] < params[self.right])


Constraint = Less


@dataclass(frozen=True)
class InactiveWhen:
    """Condition: ``param`` has no effect while ``params[parent] == value`` (a choice).

    Then :func:`validate_params` pins ``param`` to its default, ``space.sample_optuna`` does
    not draw it and ``space.grid`` does not vary it.
    """

    param: str
    parent: str
    value: str
    kind: Literal["inactive_when"] = field(default="inactive_when", init=False)

    def inactive(self, params: Mapping[str, Any]) -> bool:
        return bool(params.get(self.parent) == self.value)


@dataclass(frozen=True)
class Space:
    """One family's parameters (in sampling order), constraints and conditional parameters."""

    family: str
    params: tuple[Param, ...]
    constraints: tuple[Constraint, ...] = ()
    doc: str = ""
    conditions: tuple[InactiveWhen, ...] = ()

    def __post_init__(self) -> None:
        names = [p.name for p in self.params]
        if len(set(names)) != len(names):
            raise ValueError(f"space {self.family}: duplicate parameter names {names}")
        by = dict(zip(names, self.params, strict=True))
        for c in self.constraints:
            lo, hi = by.get(c.left), by.get(c.right)
            if not isinstance(lo, (IntParam, FloatParam)) or not isinstance(
                hi, (IntParam, FloatParam)
            ):
                raise TypeError(
                    f"space {self.family}: constraint {c.expr} needs two numeric parameters"
                )
            # Every value of `right` must leave room for `left`: the sampler never gets stuck.
            if lo.low >= hi.low:
                raise ValueError(
                    f"space {self.family}: {c.expr} needs {c.left}.low < {c.right}.low"
                )
            if not c.holds({p.name: p.default for p in self.params}):
                raise ValueError(f"space {self.family}: defaults violate {c.expr}")
        for w in self.conditions:
            parent = by.get(w.parent)
            if w.param not in by or not isinstance(parent, ChoiceParam):
                raise TypeError(
                    f"space {self.family}: {w.param} inactive when {w.parent} == {w.value!r} "
                    "needs a declared parameter and a declared choice parameter"
                )
            if w.value not in parent.choices:
                raise ValueError(f"space {self.family}: {w.value!r} is not a choice of {w.parent}")
            if names.index(w.parent) > names.index(w.param):
                raise ValueError(
                    f"space {self.family}: {w.parent} must be declared before {w.param}"
                )
            if w.param in {n for c in self.constraints for n in (c.left, c.right)}:
                raise ValueError(
                    f"space {self.family}: conditional {w.param} cannot be in a constraint"
                )

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise ParameterError(
            self.family, f"unknown parameter {name!r}; accepted: {', '.join(self.names)}", name
        )


# --------------------------------------------------------------------------- declarations

RISK_PARAMS: tuple[Param, ...] = (
    IntParam("atr_length", 5, 50, 1, default=14, doc="ATR length for stop/target distances, bars"),
    FloatParam(
        "stop_atr", 0.0, 5.0, 0.25, default=0.0, doc="stop-loss distance in ATRs; 0 = no stop"
    ),
    FloatParam(
        "take_atr", 0.0, 10.0, 0.25, default=0.0, doc="take-profit distance in ATRs; 0 = no target"
    ),
)

PATTERN_NONE = "none"
"""``pattern_filter`` value that turns the filter off (the default)."""

PATTERN_PARAMS: tuple[Param, ...] = (
    ChoiceParam(
        "pattern_filter",
        (PATTERN_NONE, *CANDLE_PATTERNS),
        default=PATTERN_NONE,
        doc="enter (long or short) only if this candle pattern completed within the last "
        "pattern_lookback bars; none = no filter",
        optional=True,
    ),
    IntParam(
        "pattern_lookback",
        1,
        10,
        1,
        default=3,
        doc="bars a pattern keeps entries allowed, its own bar included (1 = that bar only); "
        "unused without a filter",
        optional=True,
    ),
)
PATTERN_CONDITIONS: tuple[InactiveWhen, ...] = (
    InactiveWhen("pattern_lookback", "pattern_filter", PATTERN_NONE),
)


def family_space(
    family: str, doc: str, params: Iterable[Param], constraints: Iterable[Constraint] = ()
) -> Space:
    """The space of ``family``: its own ``params`` (in sampling order) and ``constraints``,
    then :data:`RISK_PARAMS` and :data:`PATTERN_PARAMS` (with their condition), which every
    family shares. ``doc`` says in one or two sentences what the family trades."""
    return Space(
        family,
        tuple(params) + RISK_PARAMS + PATTERN_PARAMS,
        tuple(constraints),
        doc,
        PATTERN_CONDITIONS,
    )


# --------------------------------------------------------------------------- functions


def _coerce(family: str, p: Param, v: Any) -> Any:
    def bad(problem: str) -> ParameterError:
        return ParameterError(
            family, f"parameter {p.name!r} = {v!r} {problem}", p.name, v, p.accepted()
        )

    if isinstance(p, ChoiceParam):
        if not isinstance(v, str) or v not in p.choices:
            raise bad(f"is not {p.accepted()}")
        return v
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise bad(f"must be a number ({p.accepted()})")
    if not math.isfinite(v):
        raise bad(f"must be finite ({p.accepted()})")
    if isinstance(p, IntParam):
        if v != int(v):
            raise bad(f"must be an int ({p.accepted()})")
        iv = int(v)
        if not p.low <= iv <= p.high:
            raise bad(f"is out of range [{p.low}, {p.high}]")
        if not p.contains(iv):
            raise bad(f"is off the step grid: {p.low} + k * {p.step}")
        return iv
    fv = float(v)
    if not p.low - _STEP_TOL * p.step <= fv <= p.high + _STEP_TOL * p.step:
        raise bad(f"is out of range [{_fmt(p.low)}, {_fmt(p.high)}]")
    if not p.contains(fv):
        raise bad(f"is off the step grid: {_fmt(p.low)} + k * {_fmt(p.step)}")
    return p.snap(fv)


def validate_params(space: Space, params: Mapping[str, Any]) -> dict[str, Any]:
    """Check a full parameter set of ``space`` and return it normalized.

    Ints come back as ``int`` (an integral float such as ``14.0`` is accepted), floats snapped
    onto their step grid, keys in declaration order. An omitted ``optional`` parameter gets
    its default; a parameter made inactive by an :class:`InactiveWhen` (``pattern_lookback``
    without a pattern filter) is checked, then set to its default.

    Raises
    ------
    ParameterError
        For an unknown or missing parameter, a wrong type, a value out of
        range or off the step grid, a choice not offered, or a violated constraint; the message
        names the family, the parameter, the value and what is accepted.
    """
    family = space.family
    if not isinstance(params, Mapping):
        raise ParameterError(
            family, f"parameters must be a mapping of name to value, got {type(params).__name__}"
        )
    unknown = [k for k in params if k not in space.names]
    if unknown:
        raise ParameterError(
            family,
            f"unknown parameter {unknown[0]!r}; accepted: {', '.join(space.names)}",
            str(unknown[0]),
        )
    out: dict[str, Any] = {}
    for p in space.params:
        if p.name not in params:
            if p.optional:
                out[p.name] = p.default
                continue
            raise ParameterError(
                family, f"missing parameter {p.name!r} ({p.accepted()})", p.name, None, p.accepted()
            )
        out[p.name] = _coerce(family, p, params[p.name])
    for w in space.conditions:
        if w.inactive(out):
            out[w.param] = space.param(w.param).default
    for c in space.constraints:
        if not c.holds(out):
            raise ParameterError(
                family,
                f"constraint {c.expr} violated: {c.left} = {out[c.left]}, {c.right} = {out[c.right]}",
                c.left,
                out[c.left],
                c.expr,
            )
    return out


def space_defaults(space: Space) -> dict[str, Any]:
    """The declared default of every parameter of ``space`` (a valid set)."""
    return {p.name: p.default for p in space.params}


def _sampling_order(space: Space) -> list[Param]:
    order = list(space.params)
    for c in space.constraints:
        names = [p.name for p in order]
        li, ri = names.index(c.left), names.index(c.right)
        if li < ri:
            order.insert(ri, order.pop(li))  # left moves just after right
    return order


def _levels(p: Param, k: int) -> list[Any]:
    vals = p.values()
    if k == 1:
        return [p.default]
    idx = np.unique(np.round(np.linspace(0, len(vals) - 1, k)).astype(int))
    return [vals[i] for i in idx]


def grid_levels(free: Sequence[Param], max_product: int) -> dict[str, int]:
    """Levels per parameter of a grid: one each, then one more round-robin (fewest first)
    while the product of the levels stays within ``max_product`` and each parameter has that
    many distinct on-step values."""
    levels = {p.name: 1 for p in free}
    growing = True
    while growing:
        growing = False
        for p in sorted(free, key=lambda q: levels[q.name]):
            trial = dict(levels, **{p.name: levels[p.name] + 1})
            if trial[p.name] <= len(p.values()) and math.prod(trial.values()) <= max_product:
                levels = trial
                growing = True
    return levels
