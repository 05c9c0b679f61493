"""Populations of parameter sets for one family: grid, random, Sobol, and Optuna-guided (pure).

A *population sampler* proposes a batch of valid, distinct parameter sets, then is told how
each scored. Each one is deterministic for its seed: the same seed and the same results give
the same populations, whatever else runs beside it.

- ``grid``: the finest grid of the family's space that fits the budget (evenly spaced on-step
  levels per parameter, grown round-robin), enumerated in a fixed order; ``tell`` is a no-op.
- ``random``: independent uniform draws of each parameter's levels; ``sobol``: a scrambled
  Sobol sequence over the same unit cube (more even coverage for sweeps). A ``Less(left,
  right)`` constraint is met by construction (``right`` first, then ``left`` among the levels
  below it), an inactive parameter takes its default.
- ``tpe`` / ``cmaes`` / ``nsga2``: an Optuna study (ask-and-tell, batched ``ask``) proposes
  ``centres`` parameter sets per generation (TPE multivariate with ``constant_liar`` so a
  batch does not collapse onto one point, CMA-ES with ``popsize = centres``, NSGA-II with
  ``population_size = centres`` over OOS Sharpe and worst drawdown); each centre is expanded
  into a neighbourhood of on-step perturbations (a few steps per parameter) that the numba
  kernel evaluates in the same batch. The study is told each centre's best neighbourhood
  result: Optuna models "how good is the region around this point", and the sampler's own
  cost (milliseconds per ask) is paid once per neighbourhood instead of once per candidate.

Every sampler keeps the keys of what it proposed, so a population never repeats a parameter
set the same sampler proposed before (duplicates would inflate the number of trials).
"""

from __future__ import annotations

import itertools
import math
import pickle
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from aio_ray.strategies.params import (
    ChoiceParam,
    Param,
    ParameterError,
    Space,
    _levels,
    _sampling_order,
    grid_levels,
)
from aio_ray.strategies.space import sample_optuna, space_of

__all__ = [
    "OPTUNA_SAMPLERS",
    "SAMPLERS",
    "GridSampler",
    "OptunaSampler",
    "PopulationSampler",
    "UnitCubeSampler",
    "make_sampler",
    "params_key",
]

SamplerName = Literal["tpe", "cmaes", "nsga2", "random", "sobol", "grid"]
SAMPLERS: tuple[str, ...] = ("tpe", "cmaes", "nsga2", "random", "sobol", "grid")
OPTUNA_SAMPLERS: tuple[str, ...] = ("tpe", "cmaes", "nsga2")


def params_key(params: Mapping[str, Any]) -> tuple[Any, ...]:
    """A hashable key of a normalized parameter set (sorted items)."""
    return tuple(sorted(params.items()))


class _Codec:
    """Maps a family's parameters to level indices and back, many sets at a time.

    The free parameters (not pinned) are the coordinates, in sampling order (the ``right`` of
    a ``Less`` constraint before its ``left``); a pinned one keeps its value. A *level row* is
    one int64 index per coordinate; two valid rows are the same set iff they are equal (an
    inactive parameter sits at its default's level), so rows are the keys of "seen".
    """

    def __init__(self, family: str, pins: Mapping[str, Any] | None = None) -> None:
        self.family = family
        self.space: Space = space_of(family)
        self.pins = dict(pins or {})
        for name in self.pins:
            self.space.param(name)
        self.order: list[Param] = [
            p for p in _sampling_order(self.space) if p.name not in self.pins
        ]
        self.col = {p.name: d for d, p in enumerate(self.order)}
        self.values: dict[str, list[Any]] = {p.name: p.values() for p in self.space.params}
        self.index: dict[str, dict[Any, int]] = {
            k: {v: i for i, v in enumerate(vs)} for k, vs in self.values.items()
        }
        self.num: dict[str, np.ndarray] = {
            p.name: np.asarray(self.values[p.name], dtype=np.float64)
            for p in self.space.params
            if not isinstance(p, ChoiceParam)
        }
        self.span = np.array([len(self.values[p.name]) for p in self.order], dtype=np.int64)
        self.numeric = np.array([not isinstance(p, ChoiceParam) for p in self.order], dtype=bool)
        self.default_level = np.array(
            [self.index[p.name][p.default] for p in self.order], dtype=np.int64
        )
        for c in self.space.constraints:
            for name in (c.left, c.right):
                if name in self.pins:
                    raise ParameterError(family, f"cannot pin {name!r}: it is in {c.expr}")

    @property
    def dims(self) -> int:
        return len(self.order)

    def _value(self, lv: np.ndarray, name: str) -> np.ndarray:
        """Numeric values of ``name`` for level column ``lv`` (or its pin)."""
        if name in self.pins:
            return np.full(lv.shape[0], float(self.pins[name]))
        values: np.ndarray = self.num[name][lv[:, self.col[name]]]
        return values

    def _inactive(self, lv: np.ndarray) -> None:
        """Pin inactive parameters to their default level, in place."""
        for w in self.space.conditions:
            if w.param not in self.col:
                continue
            if w.parent in self.pins:
                off = np.full(lv.shape[0], self.pins[w.parent] == w.value)
            else:
                off = lv[:, self.col[w.parent]] == self.index[w.parent][w.value]
            lv[off, self.col[w.param]] = self.default_level[self.col[w.param]]

    def decode(self, u: np.ndarray) -> np.ndarray:
        """Level rows from points of the unit cube ``u`` (n, dims): ``right`` first, then
        ``left`` uniform among its levels below ``right``. Rows that cannot meet a constraint
        are dropped."""
        n = u.shape[0]
        lv = np.zeros((n, self.dims), dtype=np.int64)
        keep = np.ones(n, dtype=bool)
        for d, p in enumerate(self.order):
            n_lv = np.full(n, self.span[d])
            for c in self.space.constraints:
                if c.left == p.name:
                    below = np.searchsorted(self.num[p.name], self._value(lv, c.right), "left")
                    n_lv = np.minimum(n_lv, below)
            keep &= n_lv >= 1
            lv[:, d] = np.minimum(
                np.floor(u[:, d] * n_lv).astype(np.int64), np.maximum(n_lv - 1, 0)
            )
        self._inactive(lv)
        return lv[keep]

    def repair(self, lv: np.ndarray) -> np.ndarray:
        """Level rows clipped to range, constraint violations repaired (``left`` moves to
        the largest level below ``right``, ``right`` up when nothing is below it) and
        inactive parameters pinned; a new array."""
        lv = np.clip(lv, 0, self.span - 1)
        for c in self.space.constraints:
            il, ir = self.col[c.left], self.col[c.right]
            vl, vr = self.num[c.left], self.num[c.right]
            bad = vl[lv[:, il]] >= vr[lv[:, ir]]
            if not bad.any():
                continue
            floor_r = int(np.searchsorted(vr, vl[0], "right"))  # first right level above min left
            lv[bad, ir] = np.maximum(lv[bad, ir], min(floor_r, len(vr) - 1))
            k = np.searchsorted(vl, vr[lv[bad, ir]], "left")
            lv[bad, il] = np.maximum(k - 1, 0)
        self._inactive(lv)
        return lv

    def levels_of(self, params: Mapping[str, Any]) -> np.ndarray:
        """The level row of a valid set."""
        return np.array([self.index[p.name][params[p.name]] for p in self.order], dtype=np.int64)

    def to_params(self, lv: np.ndarray) -> list[dict[str, Any]]:
        """Parameter sets (keys in declaration order, as ``validate`` gives them)."""
        names = [p.name for p in self.space.params]
        cols = []
        for name in names:
            if name in self.pins:
                cols.append([self.pins[name]] * lv.shape[0])
            else:
                vals = self.values[name]
                cols.append([vals[i] for i in lv[:, self.col[name]].tolist()])
        return [dict(zip(names, row, strict=True)) for row in zip(*cols, strict=True)]

    def fresh(self, lv: np.ndarray, seen: set[bytes], limit: int) -> np.ndarray:
        """Up to ``limit`` rows of ``lv`` not in ``seen`` (nor repeated), added to it."""
        out: list[int] = []
        for j in range(lv.shape[0]):
            if len(out) == limit:
                break
            key = lv[j].tobytes()
            if key not in seen:
                seen.add(key)
                out.append(j)
        return lv[out]


class PopulationSampler:
    """Interface: ``ask(n)`` proposes up to ``n`` new valid sets (fewer when the space is
    exhausted), ``tell(params, objective, sharpe, drawdown)`` reports their scores (NaN:
    failed). Picklable, so a search can checkpoint it between generations."""

    name: str = ""

    def ask(self, n: int) -> list[dict[str, Any]]:
        raise NotImplementedError

    def tell(
        self,
        params: Sequence[Mapping[str, Any]],
        objective: np.ndarray,
        sharpe: np.ndarray,
        drawdown: np.ndarray,
    ) -> None:
        """Default: nothing to learn."""


class GridSampler(PopulationSampler):
    """The grid of at most ``budget`` points (the whole stream's budget) of the family's
    space, sliced for one island:
    points ``island, island + n_islands, ...`` of the fixed enumeration order."""

    name = "grid"

    def __init__(
        self,
        family: str,
        budget: int,
        pins: Mapping[str, Any] | None = None,
        island: int = 0,
        n_islands: int = 1,
    ) -> None:
        self.family = family
        self.points = _grid(family, max(1, budget), pins)[island::n_islands]
        self.pos = 0

    def ask(self, n: int) -> list[dict[str, Any]]:
        out = self.points[self.pos : self.pos + n]
        self.pos += len(out)
        return out


def _grid(family: str, max_points: int, pins: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The finest grid of the family's space with about ``max_points`` distinct valid sets.

    Levels per parameter are evenly spaced and grown round-robin (as
    :func:`aio_ray.strategies.space.grid` does) until the valid, distinct points (after
    constraints and inactive parameters) reach ``max_points``; a grid with more is thinned to
    ``max_points`` evenly spaced points of its enumeration order. Linear in the grid's size.
    """
    codec = _Codec(family, pins)
    target = max(1, max_points)
    points: list[dict[str, Any]] = []
    for _round in range(6):
        points = _enumerate(codec, grid_levels(codec.order, target))
        if len(points) >= max_points or target >= 10 * max_points * 64:
            break
        target = int(target * max_points / max(len(points), 1) * 1.1) + 1
    if len(points) > max_points:
        idx = np.unique(np.round(np.linspace(0, len(points) - 1, max_points)).astype(int))
        points = [points[i] for i in idx]
    return points


def _enumerate(codec: _Codec, levels: Mapping[str, int]) -> list[dict[str, Any]]:
    free = codec.order
    axes = [_levels(p, levels[p.name]) for p in free]
    seen: set[tuple[Any, ...]] = set()
    points: list[dict[str, Any]] = []
    names = [p.name for p in free]
    space = codec.space
    for combo in itertools.product(*axes):
        cand = dict(codec.pins, **dict(zip(names, combo, strict=True)))
        if not all(c.holds(cand) for c in space.constraints):
            continue
        for w in space.conditions:
            if w.inactive(cand):
                cand[w.param] = space.param(w.param).default
        key = params_key(cand)
        if key not in seen:
            seen.add(key)
            points.append({p.name: cand[p.name] for p in space.params})
    return points


class UnitCubeSampler(PopulationSampler):
    """Uniform random (``kind="random"``) or scrambled Sobol (``kind="sobol"``) points of the
    unit cube, decoded to valid sets; repeats of earlier proposals are skipped."""

    def __init__(
        self,
        family: str,
        seed: int,
        kind: Literal["random", "sobol"] = "random",
        pins: Mapping[str, Any] | None = None,
    ) -> None:
        self.name = kind
        self.codec = _Codec(family, pins)
        self.rng = np.random.default_rng(seed)
        self.seen: set[bytes] = set()
        self._sobol: Any = None
        if kind == "sobol":
            from scipy.stats import qmc  # optional heavy dependency: scipy.stats only for sobol

            self._sobol = qmc.Sobol(d=max(1, self.codec.dims), scramble=True, seed=seed)

    def _cube(self, n: int) -> np.ndarray:
        if self._sobol is not None:
            return np.asarray(self._sobol.random(n))
        return self.rng.random((n, max(1, self.codec.dims)))

    def ask(self, n: int) -> list[dict[str, Any]]:
        got: list[np.ndarray] = []
        have = 0
        for attempt in range(8):
            lv = self.codec.fresh(
                self.codec.decode(self._cube((n - have) * (1 + attempt))), self.seen, n - have
            )
            got.append(lv)
            have += lv.shape[0]
            if have >= n:
                break
        return self.codec.to_params(np.concatenate(got)) if have else []  # fewer: exhausted


@dataclass
class _Pending:
    trial: Any
    members: list[int]


class OptunaSampler(PopulationSampler):
    """Optuna proposes neighbourhood centres; the population is their neighbourhoods.

    Parameters
    ----------
    family
        The family (one study per family keeps its space continuous for CMA-ES / TPE).
    sampler
        "tpe", "cmaes" or "nsga2".
    seed
        Seed of the Optuna sampler and of the neighbourhoods.
    centres
        Sets Optuna proposes per generation (each one a neighbourhood).
    radius
        Standard deviation of a neighbour's perturbation, as a fraction of each numeric
        parameter's number of levels (at least one step).
    """

    def __init__(
        self,
        family: str,
        sampler: Literal["tpe", "cmaes", "nsga2"],
        seed: int,
        centres: int = 16,
        radius: float = 0.05,
        pins: Mapping[str, Any] | None = None,
    ) -> None:
        import optuna  # optional heavy dependency: only the Optuna samplers need it

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.name = sampler
        self.family = family
        self.codec = _Codec(family, pins)
        self.centres = max(1, int(centres))
        self.radius = float(radius)
        self.rng = np.random.default_rng(seed)
        self.seen: set[bytes] = set()
        self.pending: list[_Pending] = []
        self._fallback = UnitCubeSampler(family, seed + 1, "random", pins)
        if sampler == "tpe":
            s: Any = optuna.samplers.TPESampler(
                seed=seed, multivariate=True, constant_liar=True, n_startup_trials=self.centres
            )
        elif sampler == "cmaes":
            s = optuna.samplers.CmaEsSampler(
                seed=seed, popsize=self.centres, warn_independent_sampling=False
            )
        elif sampler == "nsga2":
            s = optuna.samplers.NSGAIISampler(seed=seed, population_size=max(2, self.centres))
        else:
            raise ValueError(f"sampler: {sampler!r} is not one of {OPTUNA_SAMPLERS}")
        self.multi = sampler == "nsga2"
        self.study = optuna.create_study(
            directions=["maximize", "minimize"] if self.multi else ["maximize"], sampler=s
        )

    # Optuna's genetic samplers (NSGA-II) hold a thread lock: pickle the study without it
    # (an island checkpoints its sampler between generations) and give it a new one back.
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        sampler: Any = self.study.sampler  # Optuna's samplers keep a private lock
        lock = getattr(sampler, "_thread_lock", None)
        if lock is not None:
            sampler._thread_lock = None
            try:
                state["study"] = pickle.dumps(self.study)
            finally:
                sampler._thread_lock = lock
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:

        self.__dict__.update(state)
        if isinstance(self.study, bytes):
            self.study = pickle.loads(self.study)
            sampler: Any = self.study.sampler
            sampler._thread_lock = threading.Lock()

    def _neighbours(self, centre: dict[str, Any], k: int) -> list[dict[str, Any]]:
        """Up to ``k`` unseen on-step perturbations of ``centre`` (a few steps per numeric
        parameter; a categorical one changes with probability 0.1)."""
        if k <= 0:
            return []
        c = self.codec
        base = c.levels_of(centre)
        sigma = np.maximum(1.0, self.radius * c.span)
        m = 2 * k + 8
        lv = np.broadcast_to(base, (m, base.size)).copy()
        step = np.rint(self.rng.normal(0.0, 1.0, (m, base.size)) * sigma).astype(np.int64)
        lv[:, c.numeric] += step[:, c.numeric]
        flip = (~c.numeric) & (self.rng.random((m, base.size)) < 0.1)
        lv[flip] = (
            self.rng.random(int(flip.sum())) * np.broadcast_to(c.span, flip.shape)[flip]
        ).astype(np.int64)
        return c.to_params(c.fresh(c.repair(lv), self.seen, k))

    def ask(self, n: int) -> list[dict[str, Any]]:
        import optuna  # optional heavy dependency: only the Optuna samplers need it

        population: list[dict[str, Any]] = []
        per = max(1, n // self.centres)
        for _ in range(self.centres):
            if len(population) >= n:
                break
            trial = self.study.ask()
            try:
                centre = sample_optuna(trial, self.family, self.codec.pins)
            except optuna.TrialPruned:
                self.study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                continue
            members: list[int] = []
            key = self.codec.levels_of(centre).tobytes()
            if key not in self.seen:
                self.seen.add(key)
                members.append(len(population))
                population.append(centre)
            for nb_params in self._neighbours(centre, min(per, n - len(population)) - len(members)):
                members.append(len(population))
                population.append(nb_params)
            self.pending.append(_Pending(trial, members))
        if len(population) < n:  # centres fell on explored ground: fill with fresh points
            self._fallback.seen = self.seen
            population += self._fallback.ask(n - len(population))
        return population

    def tell(
        self,
        params: Sequence[Mapping[str, Any]],
        objective: np.ndarray,
        sharpe: np.ndarray,
        drawdown: np.ndarray,
    ) -> None:
        import optuna  # optional heavy dependency: only the Optuna samplers need it

        for pend in self.pending:
            idx = [i for i in pend.members if math.isfinite(objective[i])]
            if not idx:
                self.study.tell(pend.trial, state=optuna.trial.TrialState.FAIL)
                continue
            best = max(idx, key=lambda i: (objective[i], -i))
            if self.multi:
                dd = float(drawdown[best]) if math.isfinite(drawdown[best]) else 1.0
                self.study.tell(pend.trial, [float(sharpe[best]), dd])
            else:
                self.study.tell(pend.trial, float(objective[best]))
        self.pending = []


def make_sampler(
    name: str,
    family: str,
    seed: int,
    *,
    budget: int,
    centres: int = 16,
    radius: float = 0.05,
    pins: Mapping[str, Any] | None = None,
    island: int = 0,
    n_islands: int = 1,
) -> PopulationSampler:
    """The population sampler ``name`` (one of :data:`SAMPLERS`) for one island of a search.

    ``budget`` is used by the grid only: the number of points of the whole stream (family x
    timeframe), of which island ``island`` of ``n_islands`` takes every ``n_islands``-th."""
    if name == "grid":
        return GridSampler(family, budget, pins, island, n_islands)
    if name in ("random", "sobol"):
        return UnitCubeSampler(family, seed, name, pins)  # type: ignore[arg-type]
    if name in OPTUNA_SAMPLERS:
        return OptunaSampler(family, name, seed, centres, radius, pins)  # type: ignore[arg-type]
    raise ValueError(f"sampler: {name!r} is not one of {SAMPLERS}")
