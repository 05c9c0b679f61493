"""Islands: how a search budget is cut into Tune trials, and what one trial does (pure core).

The budget of ``N`` candidates is split evenly over the *streams* (timeframe x family, in a
fixed order); a stream larger than ``island_size`` is cut into several *islands* of equal
size. An island is one Ray Tune trial: its own population sampler (seeded from the run's seed,
the family, the timeframe and the island's number), a loop of generations (ask a population,
evaluate it in one kernel call, record every candidate, tell the sampler) and one
``tune.report`` per generation with a checkpoint of its state. The plan depends on the
configuration only, never on the number of workers, and an island's generations run in
order, so the same seed gives the same candidates and the same results on any cluster.

Candidate numbers are global and deterministic: island ``i`` owns numbers
``[first, first + budget)``, in the order its candidates were evaluated.

Guides (what keeps a choice in-sample)
--------------------------------------
An adaptive sampler (TPE, CMA-ES, NSGA-II) learns from the objectives it is told, so the
candidates it proposes carry information about the data it was told about. An island with an
adaptive sampler therefore runs one sampler per *selection window* (each fold's in-sample
window, then the final one before the holdout), generation ``g`` asking sampler ``g mod S``;
sampler ``j`` is told only the objective on selection window ``j``, and every candidate records
its ``guide`` ``j``. Fold ``f``'s parameters may then be chosen among candidates of guides
``<= f`` only: none of them was proposed with knowledge of fold ``f``'s out-of-sample window
(:mod:`aio_ray.strategies.selection`). Random, Sobol and grid samplers learn nothing: one
sampler, guide ``-1``, eligible for every fold.
"""

from __future__ import annotations

import hashlib
import heapq
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from aio_ray.bars.arrays import BarArrays
from aio_ray.schema import SUMMARY_METRICS
from aio_ray.strategies.population import (
    METRIC_INDEX,
    PopulationResult,
    WindowLayout,
    evaluate_population,
)
from aio_ray.strategies.sampling import OPTUNA_SAMPLERS, PopulationSampler, make_sampler
from aio_ray.strategies.walkforward import Fold, SearchError, final_window, make_folds

__all__ = [
    "Finalist",
    "Island",
    "IslandState",
    "SharpeStats",
    "island_folds",
    "island_windows",
    "plan_islands",
    "run_generation",
]


@dataclass(frozen=True)
class Island:
    """One Tune trial's share of the search (JSON-able: it is the trial's config)."""

    index: int
    family: str
    timeframe: str
    part: int
    parts: int
    budget: int
    first: int
    seed: int
    stream_budget: int


def _seed(seed: int, *parts: Any) -> int:
    h = hashlib.sha256(repr((seed, *parts)).encode()).digest()
    return int.from_bytes(h[:4], "little") & 0x7FFFFFFF


def plan_islands(
    n_candidates: int,
    timeframes: tuple[str, ...],
    families: tuple[str, ...],
    seed: int,
    island_size: int,
) -> list[Island]:
    """Cut ``n_candidates`` into islands (see module docstring); every island gets >= 1."""
    streams = [(tf, fam) for tf in timeframes for fam in families]
    if n_candidates < 1 or not streams:
        raise SearchError(f"nothing to search: {n_candidates} candidates, {len(streams)} streams")
    base, extra = divmod(n_candidates, len(streams))
    islands: list[Island] = []
    first = 0
    for s, (tf, fam) in enumerate(streams):
        budget = base + (1 if s < extra else 0)
        if budget == 0:
            continue
        parts = max(1, math.ceil(budget / max(1, island_size)))
        b0, b1 = divmod(budget, parts)
        for k in range(parts):
            size = b0 + (1 if k < b1 else 0)
            islands.append(
                Island(
                    len(islands), fam, tf, k, parts, size, first, _seed(seed, fam, tf, k), budget
                )
            )
            first += size
    return islands


@dataclass
class SharpeStats:
    """Running count / mean / M2 (Welford) of the per-period Sharpe ratios of ok candidates,
    mergeable across islands: the DSR's variance of trial Sharpes without keeping them."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0

    def add(self, x: np.ndarray) -> None:
        x = x[np.isfinite(x)]
        if x.size == 0:
            return
        n_b, mean_b = int(x.size), float(np.mean(x))
        m2_b = float(np.sum((x - mean_b) ** 2))
        self.merge(SharpeStats(n_b, mean_b, m2_b))

    def merge(self, o: SharpeStats) -> None:
        if o.n == 0:
            return
        n = self.n + o.n
        d = o.mean - self.mean
        self.mean += d * o.n / n
        self.m2 += o.m2 + d * d * self.n * o.n / n
        self.n = n

    @property
    def variance(self) -> float:
        """Sample variance (ddof=1); 0 with fewer than two values."""
        return self.m2 / (self.n - 1) if self.n >= 2 else 0.0


@dataclass(frozen=True)
class Finalist:
    """An island's best candidate as the driver needs it for ranking (JSON-able)."""

    number: int
    family: str
    timeframe: str
    params: dict[str, Any]
    objective: float
    oos_sharpe: float
    oos_max_drawdown: float
    oos_trades: int
    oos_end_exits: int
    folds: list[dict[str, Any]]
    moments: dict[str, float]


@dataclass
class IslandState:
    """Everything an island carries from one generation to the next (its checkpoint).

    ``samplers`` holds one sampler per guide (see module docstring); ``adaptive`` False: one
    data-blind sampler whose candidates have guide -1."""

    samplers: list[PopulationSampler]
    adaptive: bool = False
    generation: int = 0
    done: int = 0
    ok: int = 0
    failed: int = 0
    exhausted: bool = False
    best: float | None = None
    finalists: list[tuple[float, int, dict[str, Any]]] = field(default_factory=list)
    stats: SharpeStats = field(default_factory=SharpeStats)
    compute_s: float = 0.0
    sample_s: float = 0.0
    record_s: float = 0.0

    @classmethod
    def fresh(cls, isl: Island, cfg: Any) -> IslandState:
        pins = None if cfg.pattern_filter else {"pattern_filter": "none"}
        name = cfg.sampler_name()
        adaptive = name in OPTUNA_SAMPLERS
        n = cfg.n_folds + 1 if adaptive else 1
        samplers = [
            make_sampler(
                name,
                isl.family,
                isl.seed if j == 0 else _seed(isl.seed, "guide", j),
                budget=isl.stream_budget,
                centres=cfg.centres,
                radius=cfg.neighbourhood_radius,
                pins=pins,
                island=isl.part,
                n_islands=isl.parts,
            )
            for j in range(n)
        ]
        return cls(samplers=samplers, adaptive=adaptive)

    @property
    def guide(self) -> int:
        """The guide of the next generation (-1: a data-blind sampler)."""
        return self.generation % len(self.samplers) if self.adaptive else -1

    def report(self) -> dict[str, Any]:
        """What the island reports to Tune (small; finalists as plain data)."""
        return {
            "generation": self.generation,
            "done": self.done,
            "ok": self.ok,
            "failed": self.failed,
            "exhausted": self.exhausted,
            "best": self.best,
            "finalists": [f for _, _, f in sorted(self.finalists, key=lambda t: (-t[0], t[1]))],
            "sharpe_stats": asdict(self.stats),
            "compute_s": self.compute_s,
            "sample_s": self.sample_s,
            "record_s": self.record_s,
        }


def island_folds(n_bars: int, cfg: Any) -> tuple[Fold, ...]:
    """The walk-forward folds of a timeframe's ``n_bars`` (holdout already cut off), each
    in-sample window ``cfg.embargo()`` bars before its out-of-sample window."""
    folds, _ = make_folds(
        n_bars,
        cfg.n_folds,
        cfg.scheme,
        oos_fraction=cfg.oos_fraction,
        holdout_fraction=0.0,
        warmup_bars=cfg.warmup_bars,
        embargo_bars=cfg.embargo(),
    )
    return folds


def island_windows(n_bars: int, cfg: Any) -> tuple[tuple[Fold, ...], tuple[int, int]]:
    """The folds and the final in-sample window (ending ``cfg.embargo()`` bars before the
    holdout, i.e. before bar ``n_bars`` of the walk-forward bars)."""
    folds = island_folds(n_bars, cfg)
    return folds, final_window(folds, n_bars, cfg.scheme, cfg.embargo())


def _finalist(res: PopulationResult, p: int, number: int) -> dict[str, Any]:
    lay = res.layout
    folds = []
    for w in range(lay.n_windows):
        m = res.window_metrics(p, w)
        folds.append(
            {
                "fold": lay.fold[w],
                "sample": lay.sample[w],
                "end_exits": int(res.end_exits[p, w]),
                **{k: m[k] for k in SUMMARY_METRICS},
            }
        )
    oos = [w for w in range(lay.n_windows) if lay.sample[w] == "oos"]
    return asdict(
        Finalist(
            number=number,
            family=res.family,
            timeframe=res.timeframe,
            params=dict(res.params[p]),
            objective=float(res.selection[p, -1]),  # in-sample, final window
            oos_sharpe=float(res.oos_sharpe[p]),
            oos_max_drawdown=float(res.oos_max_drawdown[p]),
            oos_trades=int(res.oos_trades[p]),
            oos_end_exits=int(res.end_exits[p, oos].sum()),
            folds=folds,
            moments={
                "sharpe": float(res.sharpe[p]),
                "skew": float(res.skew[p]),
                "kurtosis": float(res.kurtosis[p]),
                "n_obs": int(res.n_obs[p]),
            },
        )
    )


def run_generation(
    isl: Island,
    state: IslandState,
    bars: BarArrays,
    folds: tuple[Fold, ...] | None,
    fold_error: str | None,
    layout: WindowLayout | None,
    cfg: Any,
    record: Callable[
        [PopulationResult | None, list[dict[str, Any]], list[str | None], int, int, int], None
    ],
    *,
    n_finalists: int,
    threads: int = 1,
) -> bool:
    """Ask, evaluate, record and tell one population of ``isl``; False when nothing is left.

    ``record(result, params, errors, generation, first_number, guide)`` must persist the population
    (it raises when it cannot: the state is then unchanged, so a retry repeats exactly this
    population). ``fold_error`` (the folds cannot be made on these bars) fails every
    candidate with that reason.
    """
    left = isl.budget - state.done
    if left <= 0 or state.exhausted:
        return False
    t_ask = time.perf_counter()
    guide = state.guide
    sampler = state.samplers[max(guide, 0)]
    params = sampler.ask(min(cfg.population_size, left))
    t0 = time.perf_counter()
    state.sample_s += t0 - t_ask
    if not params:
        state.exhausted = True
        return False
    res: PopulationResult | None = None
    if folds is None:
        errors: list[str | None] = [fold_error or "no folds"] * len(params)
    else:
        res = evaluate_population(
            bars,
            isl.family,
            params,
            folds,
            cfg.backtest,
            cfg.objective_config,
            threads=threads,
            layout=layout,
        )
        params, errors = res.params, res.error
    t1 = time.perf_counter()
    state.compute_s += t1 - t0
    first = isl.first + state.done
    record(res, params, errors, state.generation, first, guide)
    t2 = time.perf_counter()
    state.record_s += t2 - t1
    n = len(params)
    nan = np.full(n, np.nan)
    if res is None:
        sampler.tell(params, nan, nan, nan)
    else:
        # told the in-sample objective of its own selection window (the final one when blind)
        j = guide if guide >= 0 else res.selection.shape[1] - 1
        w = res.layout.selection_windows[j]
        sampler.tell(
            params,
            res.selection[:, j],
            res.metrics[:, w, METRIC_INDEX["sharpe"]],
            res.metrics[:, w, METRIC_INDEX["max_drawdown"]],
        )
        final = res.selection[:, -1]  # the choice that is exported: the final window's
        ok = np.flatnonzero(res.ok & np.isfinite(final))
        state.stats.add(res.sharpe[res.ok])
        if ok.size:
            top = ok[np.argsort(-final[ok], kind="stable")[:n_finalists]]
            for p in top:
                item = (float(final[p]), first + int(p))
                if len(state.finalists) < n_finalists:
                    heapq.heappush(state.finalists, (*item, _finalist(res, int(p), item[1])))
                elif item[0] > state.finalists[0][0]:
                    heapq.heapreplace(state.finalists, (*item, _finalist(res, int(p), item[1])))
            b = float(final[ok].max())
            state.best = b if state.best is None else max(state.best, b)
    n_ok = sum(e is None for e in errors)
    state.ok += n_ok
    state.failed += n - n_ok
    state.done += n
    state.generation += 1
    state.sample_s += time.perf_counter() - t2  # telling the sampler
    return state.done < isl.budget
