"""The strategy families' parameter spaces by family name: the family-aware API.

The parameter machinery (the parameter classes, :class:`Space`, :func:`family_space`,
:class:`ParameterError`, validation of a set against one space) lives in
:mod:`aio_ray.strategies.params`, which the family files import; this module reads the
families registry (:data:`aio_ray.strategies.families.FAMILIES`) and offers the functions by
family name. Every name of :mod:`~aio_ray.strategies.params` listed below is re-exported here.
Stable public API::

    IntParam(name, low, high, step=1, default=..., doc="", optional=False)  # inclusive range
    FloatParam(name, low, high, step, default=..., doc="", optional=False)
    ChoiceParam(name, choices, default=..., doc="", optional=False)
    Less(left, right)                                          # constraint: params[left] < params[right]
    InactiveWhen(param, parent, value)                         # param is inert while parent == value
    Space(family, params, constraints=(), doc="", conditions=())
    family_space(family, doc, params, constraints=()) -> Space # + the risk and pattern params
    SPACES: dict[str, Space]                                   # every family's space (registry order)
    RISK_PARAMS                                                # atr_length, stop_atr, take_atr (all families)
    PATTERN_PARAMS                                             # pattern_filter, pattern_lookback (all families)
    PATTERN_NONE                                               # "none": the filter is off
    validate(family, params) -> dict                           # raises ParameterError
    defaults(family) -> dict
    identity_params(family, params) -> dict                    # what a strategy id should hash
    sample_optuna(trial, family) -> dict                       # always valid
    grid(family, max_points, fixed=None) -> list[dict]         # deterministic, for benchmarks
    describe(family) -> dict                                   # JSON-able

Units, the pattern filter and the optional and conditional parameters are documented in
:mod:`aio_ray.strategies.params`.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

from aio_ray.strategies.families import FAMILIES
from aio_ray.strategies.params import (
    PATTERN_CONDITIONS,
    PATTERN_NONE,
    PATTERN_PARAMS,
    RISK_PARAMS,
    ChoiceParam,
    Constraint,
    FloatParam,
    InactiveWhen,
    IntParam,
    Less,
    Param,
    ParameterError,
    Space,
    _levels,
    _sampling_order,
    family_space,
    grid_levels,
    space_defaults,
    validate_params,
)

__all__ = [
    "PATTERN_CONDITIONS",
    "PATTERN_NONE",
    "PATTERN_PARAMS",
    "RISK_PARAMS",
    "SPACES",
    "ChoiceParam",
    "Constraint",
    "FloatParam",
    "InactiveWhen",
    "IntParam",
    "Less",
    "Param",
    "ParameterError",
    "Space",
    "defaults",
    "describe",
    "family_space",
    "grid",
    "grid_levels",
    "identity_params",
    "sample_optuna",
    "space_of",
    "validate",
]

SPACES: dict[str, Space] = {name: fam.space for name, fam in FAMILIES.items()}
"""Every family's space by family name, in registry order (``Family.space`` of each entry of
:data:`aio_ray.strategies.families.FAMILIES`)."""


# --------------------------------------------------------------------------- functions


def space_of(family: str) -> Space:
    """The parameter space of ``family``; ParameterError listing the known families otherwise."""
    try:
        return SPACES[family]
    except (KeyError, TypeError):
        raise ParameterError(
            str(family), f"unknown strategy family {family!r}; known: {', '.join(sorted(SPACES))}"
        ) from None


def validate(family: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Check a full parameter set of ``family`` and return it normalized
    (:func:`aio_ray.strategies.params.validate_params` on the family's space).

    Ints come back as ``int`` (an integral float such as ``14.0`` is accepted), floats snapped
    onto their step grid, keys in declaration order. An omitted ``optional`` parameter gets
    its default; a parameter made inactive by an :class:`InactiveWhen` (``pattern_lookback``
    without a pattern filter) is checked, then set to its default.

    Raises
    ------
    ParameterError
        For an unknown family, an unknown or missing parameter, a wrong type, a value out of
        range or off the step grid, a choice not offered, or a violated constraint; the message
        names the family, the parameter, the value and what is accepted.
    """
    return validate_params(space_of(family), params)


def defaults(family: str) -> dict[str, Any]:
    """The declared default of every parameter of ``family`` (a valid set)."""
    return space_defaults(space_of(family))


def identity_params(family: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` without the ``optional`` parameters that sit at their defaults.

    What a strategy's id should hash: a strategy defined before an optional parameter existed
    (no pattern filter) keeps its id, and ``pattern_lookback`` without a pattern filter (inert,
    see :class:`InactiveWhen`) never enters it. Does not validate; an unknown family or
    parameter passes through unchanged, so it is safe on any stored parameter set.
    """
    space = SPACES.get(family) if isinstance(family, str) else None
    if space is None:
        return dict(params)
    by = {p.name: p for p in space.params}
    full = {p.name: p.default for p in space.params if p.optional}
    full.update(params)
    out = dict(params)
    for w in space.conditions:
        if w.inactive(full) and by[w.param].optional:
            out.pop(w.param, None)
    for name in list(out):
        p = by.get(name)
        v = out[name]
        if p is not None and p.optional and not isinstance(v, bool) and v == p.default:
            del out[name]
    return out


def sample_optuna(trial: Any, family: str, pins: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Draw a valid parameter set of ``family`` from an Optuna ``trial``.

    Uses ``suggest_int`` / ``suggest_float`` with the declared steps and ``suggest_categorical``.
    For each ``Less(left, right)`` it draws ``right`` first and then ``left`` from its range cut
    just below ``right`` (re-parameterization, so no trial is wasted). Should a cut range be
    empty anyway, the trial is pruned (``optuna.TrialPruned``). A parameter made inactive by
    an :class:`InactiveWhen` (``pattern_lookback`` while ``pattern_filter`` is ``"none"``) is
    not suggested: it takes its default and is absent from ``trial.params`` (:func:`validate`
    of ``trial.params`` still gives the same set, since it is ``optional``). ``pins`` fixes
    parameters to values (not suggested either), e.g. ``{"pattern_filter": "none"}``.
    """
    import optuna  # heavy, and needed only to sample: not loaded by importing this module

    space = space_of(family)
    out: dict[str, Any] = {}
    pins = dict(pins or {})
    for p in _sampling_order(space):
        if p.name in pins:
            out[p.name] = pins[p.name]
            continue
        if any(w.param == p.name and w.inactive(out) for w in space.conditions):
            out[p.name] = p.default  # inert: not drawn, not stored in the trial
            continue
        if isinstance(p, ChoiceParam):
            out[p.name] = trial.suggest_categorical(p.name, list(p.choices))
            continue
        high: float = p.high
        for c in space.constraints:
            if c.left == p.name and c.right in out:
                cut = p.below(out[c.right])
                if cut is None or cut < p.low:
                    raise optuna.TrialPruned(
                        f"{family}: no {p.name} below {c.right} = {out[c.right]}"
                    )
                high = min(high, cut)
        if isinstance(p, IntParam):
            out[p.name] = trial.suggest_int(p.name, p.low, int(high), step=p.step)
        else:
            out[p.name] = p.snap(trial.suggest_float(p.name, p.low, high, step=p.step))
    return validate(family, {p.name: out[p.name] for p in space.params})


def grid(
    family: str, max_points: int, fixed: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """A deterministic grid of at most ``max_points`` valid parameter sets of ``family``.

    Each free parameter gets evenly spaced on-step levels (its default when it has one level,
    both ends of its range from two on); levels are added round-robin while the Cartesian
    product stays within ``max_points``; sets that violate a constraint are dropped, and so
    are repeats (an inactive parameter is pinned to its default). ``fixed`` pins parameters
    to one value (validated), e.g. ``{"stop_atr": 0.0}``.
    """
    space = space_of(family)
    if max_points < 1:
        raise ParameterError(family, f"grid: max_points must be >= 1, got {max_points}")
    fixed = dict(fixed or {})
    for name in fixed:
        space.param(name)
    base = validate(family, {**defaults(family), **fixed})
    free = [p for p in space.params if p.name not in fixed]
    levels = grid_levels(free, max_points)
    axes = [_levels(p, levels[p.name]) for p in free]
    points: list[dict[str, Any]] = []
    for combo in itertools.product(*axes):
        cand = dict(base, **dict(zip([p.name for p in free], combo, strict=True)))
        if all(c.holds(cand) for c in space.constraints):
            point = validate(family, cand)  # pins inactive parameters: may repeat a point
            if point not in points:
                points.append(point)
    return points


def describe(family: str) -> dict[str, Any]:
    """The space of ``family`` as JSON-able data (for the API, the dashboard, Pine inputs)."""
    space = space_of(family)
    params = []
    for p in space.params:
        d: dict[str, Any] = {"name": p.name, "type": p.kind, "default": p.default, "doc": p.doc}
        if isinstance(p, ChoiceParam):
            d["choices"] = list(p.choices)
        else:
            d.update(low=p.low, high=p.high, step=p.step)
        if p.optional:
            d["optional"] = True
        params.append(d)
    constraints = [
        {"type": c.kind, "left": c.left, "right": c.right, "expr": c.expr}
        for c in space.constraints
    ]
    conditions = [
        {"type": w.kind, "param": w.param, "parent": w.parent, "value": w.value}
        for w in space.conditions
    ]
    return {
        "family": space.family,
        "doc": space.doc,
        "params": params,
        "constraints": constraints,
        "conditions": conditions,
    }
