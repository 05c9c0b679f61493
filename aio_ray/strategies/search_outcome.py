"""What a strategy search returns: one summary per island and the run's outcome.

Plain frozen records built by :func:`aio_ray.strategies.search.search_frames`; timestamps are
UTC ms, objectives in-sample, holdout figures for reporting only (never part of a score).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aio_ray.strategies.config import SearchConfig
from aio_ray.strategies.evaluate import HoldoutResult
from aio_ray.strategies.ranking import RankedStrategy

__all__ = ["IslandSummary", "SearchOutcome"]


@dataclass(frozen=True)
class IslandSummary:
    """What one island (Tune trial) did: ``status`` is "finished", "exhausted" (its space had
    fewer distinct sets than its budget), "interrupted" or "error" (then ``error`` says why)."""

    index: int
    family: str
    timeframe: str
    budget: int
    done: int
    ok: int
    failed: int
    status: str
    error: str | None
    compute_s: float
    sample_s: float = 0.0
    record_s: float = 0.0


@dataclass(frozen=True)
class SearchOutcome:
    """The result of :func:`aio_ray.strategies.search.run_search`.

    Attributes
    ----------
    run_id, experiment_path
        The run and its Tune experiment directory (what ``resume=True`` continues).
    seeds
        Every seed used (the run's; each island derives its own from it).
    n_candidates
        The budget (``config.n_trials``).
    islands
        One summary per island.
    finalists
        The islands' best candidates (plain data: number, family, timeframe, params,
        objective, fold rows, moments), best first; ``strategy_id`` added.
    ranking
        The top strategies (best first) from ``ranking.rank``.
    holdout
        ``strategy_id`` -> holdout result of each ranked strategy (reporting only).
    holdout_start_ms
        UTC ms where the holdout starts; None without a holdout.
    config
        The search configuration.
    complete
        True when every island finished; False after an interruption or an island error
        (run again with ``resume=True`` to finish).
    wall_s
        Seconds the search took (Tune start to ranking stored).
    verdict
        What passed and why the rest did not (:mod:`aio_ray.strategies.verdict`): verdict,
        passed, candidates, effective_trials, pbo, strategies, best_rejected, message.
    """

    run_id: str
    experiment_path: str
    seeds: dict[str, int]
    n_candidates: int
    islands: tuple[IslandSummary, ...]
    finalists: tuple[dict[str, Any], ...]
    ranking: tuple[RankedStrategy, ...]
    holdout: dict[str, HoldoutResult]
    holdout_start_ms: int | None
    config: SearchConfig
    complete: bool = True
    wall_s: float = 0.0
    verdict: dict[str, Any] | None = None

    @property
    def n_ok(self) -> int:
        """Candidates evaluated."""
        return sum(i.ok for i in self.islands)

    @property
    def n_failed(self) -> int:
        """Candidates recorded as failed."""
        return sum(i.failed for i in self.islands)

    @property
    def n_done(self) -> int:
        """Candidates evaluated or failed (each one is in the library)."""
        return sum(i.done for i in self.islands)

    @property
    def best(self) -> dict[str, Any] | None:
        """The finalist with the highest objective."""
        return self.finalists[0] if self.finalists else None

    @property
    def errors(self) -> list[str]:
        """The errors of islands that failed."""
        return [
            f"island {i.index} ({i.family}@{i.timeframe}): {i.error}"
            for i in self.islands
            if i.status == "error"
        ]
