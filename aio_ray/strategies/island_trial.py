"""One Tune trial of the search: the generations of one island, checkpointed after each.

Runs inside a Ray Tune worker. Each generation samples a population, scores it on every
walk-forward window (:func:`aio_ray.strategies.islands.run_generation`), hands its rows to the
run's :class:`~aio_ray.strategies.recorder.CandidateRecorder` actor and reports to Tune once
the write has landed, with a checkpoint of the island's state (pickled in :data:`STATE_FILE`).
A retried or resumed island continues from the newer of its Tune checkpoint and the state
the recorder kept with its last written population.
"""

from __future__ import annotations

import json
import pickle
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ray
from ray import tune

from aio_ray.bars.arrays import BarArrays
from aio_ray.strategies.config import SearchConfig
from aio_ray.strategies.islands import Island, IslandState, island_windows, run_generation
from aio_ray.strategies.population import window_layout
from aio_ray.strategies.recorder import population_rows

__all__ = ["STATE_FILE", "run_island"]

STATE_FILE = "island.pkl"
"""Name of the pickled :class:`~aio_ray.strategies.islands.IslandState` in a Tune checkpoint."""


def run_island(
    config: dict[str, Any], bars: Mapping[str, BarArrays], search: SearchConfig, recorder: Any
) -> None:
    """Run the generations of the island ``config["island"]`` (fields of
    :class:`~aio_ray.strategies.islands.Island`) on ``bars`` (timeframe -> walk-forward
    bars), writing every population through ``recorder`` and reporting each to Tune."""
    isl = Island(**config["island"])
    state = _restored_state(isl, search, recorder)
    mb = bars[isl.timeframe]
    folds, layout, fold_error = None, None, None
    try:
        folds, final = island_windows(len(mb), search)
        layout = window_layout(mb.ts, folds, search.objective_config.period_ms, final)
    except Exception as exc:  # noqa: BLE001 - e.g. too few bars: every candidate fails with it
        fold_error = f"{type(exc).__name__}: {exc}"

    pending: list[dict[str, list[Any]]] = []

    def record(
        res: Any,
        params: list[dict[str, Any]],
        errors: list[str | None],
        gen: int,
        first: int,
        guide: int,
    ) -> None:
        pending.append(
            population_rows(
                res,
                params,
                errors,
                family=isl.family,
                timeframe=isl.timeframe,
                island=isl.index,
                generation=gen,
                first=first,
                guide=guide,
            )
        )

    # The write of population g (with the island's state after it) overlaps the evaluation of
    # g + 1; g's checkpoint is reported only once its write has landed. A retried or resumed
    # island starts from the newer of its checkpoint and the state written with its last
    # population, so it repeats only a population whose write never landed.
    prev: tuple[Any, bytes, dict[str, Any]] | None = None
    more = True
    while more:
        more = run_generation(
            isl, state, mb, folds, fold_error, layout, search, record, n_finalists=search.finalists
        )
        blob = pickle.dumps(state)
        ref = None
        if pending:
            ref = recorder.record.remote(pending.pop(), isl.index, (state.done, blob))
        snap = (ref, blob, _metrics(isl, state, not more))
        if prev is not None:
            _report(*prev)
        prev = snap
    assert prev is not None
    _report(*prev)


def _restored_state(isl: Island, search: SearchConfig, recorder: Any) -> IslandState:
    """The island's state to continue from: the newer (by candidates done) of its Tune
    checkpoint and the state the recorder kept with its last written population; fresh when
    it has neither."""
    done, blob = -1, b""
    ckpt = tune.get_checkpoint()
    if ckpt is not None:
        with ckpt.as_directory() as d:
            blob = (Path(d) / STATE_FILE).read_bytes()
        done = pickle.loads(blob).done
    kept = ray.get(recorder.island_state.remote(isl.index))
    if kept is not None and kept[0] > done:
        done, blob = kept
    if done < 0:
        return IslandState.fresh(isl, search)
    state: IslandState = pickle.loads(blob)
    return state


def _metrics(isl: Island, state: IslandState, finished: bool) -> dict[str, Any]:
    rep = state.report()
    return {
        "island": isl.index,
        "n_done": rep["done"],  # not "done": Tune reads that key as "trial finished"
        "n_ok": rep["ok"],
        "n_failed": rep["failed"],
        "generation": rep["generation"],
        "best": rep["best"],
        "exhausted": rep["exhausted"],
        "finished": finished,
        "compute_s": rep["compute_s"],
        "sample_s": rep["sample_s"],
        "record_s": rep["record_s"],
        "finalists_json": json.dumps(rep["finalists"]),
        "stats_json": json.dumps(rep["sharpe_stats"]),
    }


def _report(ref: Any, state_bytes: bytes, metrics: dict[str, Any]) -> None:
    """Wait for a population's write, then report it with the island's checkpoint."""
    if ref is not None:
        t0 = time.perf_counter()
        ray.get(ref)
        metrics = dict(metrics, record_wait_s=time.perf_counter() - t0)
    with tempfile.TemporaryDirectory(prefix="aio-island-") as d:
        (Path(d) / STATE_FILE).write_bytes(state_bytes)
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(d))
