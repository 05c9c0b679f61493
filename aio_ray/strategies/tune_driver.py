"""The Ray Tune side of the search: the experiment directory, the run and its island summaries.

One Tune trial is one island (:mod:`aio_ray.strategies.island_trial`); Tune gives it a CPU,
retries it from its last checkpoint when its worker dies (``max_failures``) and restores the
experiment on resume (``Tuner.restore``). The run's experiment lives in
``storage_path/run_id`` beside :data:`CONFIG_FILE`, the configuration it started with.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import ray
from ray import tune
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from aio_ray.bars.arrays import BarArrays
from aio_ray.strategies.config import SearchConfig
from aio_ray.strategies.island_trial import run_island
from aio_ray.strategies.islands import Island, SharpeStats
from aio_ray.strategies.recorder import CandidateRecorder
from aio_ray.strategies.search_outcome import IslandSummary
from aio_ray.strategies.search_progress import SearchProgress
from aio_ray.strategies.walkforward import SearchError

log = logging.getLogger(__name__)

__all__ = [
    "CONFIG_FILE",
    "check_same_config",
    "island_summaries",
    "prepare_experiment",
    "run_tune",
    "start_recorder",
]

CONFIG_FILE = "aio_search_config.json"
"""The search configuration, saved beside Tune's state so a resume can check it is unchanged."""


def _island_trainable(
    config: dict[str, Any], bars: Mapping[str, BarArrays], search: SearchConfig, recorder: Any
) -> None:
    """One Tune trial: the generations of one island (named so for Tune: a restored
    experiment must get a trainable of the name it was started with)."""
    run_island(config, bars, search, recorder)


def check_same_config(path: Path, cfg: SearchConfig) -> None:
    """Raise SearchError when ``cfg`` differs from the configuration the run started with."""
    if not path.is_file():
        return
    before = SearchConfig.model_validate_json(path.read_text())
    if before != cfg:
        old, new = before.model_dump(), cfg.model_dump()
        diff = sorted(k for k in new if old.get(k) != new[k])
        raise SearchError(
            f"{path.parent}: cannot resume with a different configuration (changed: {diff}); "
            "resume with the original one or start a new run id"
        )


def prepare_experiment(storage_path: Path, run_id: str, cfg: SearchConfig, resume: bool) -> bool:
    """Check the run's experiment directory before anything runs; True when Tune can restore it.

    Raises SearchError when the run exists and ``resume`` is False, or when a resume would
    change the configuration the run started with.
    """
    exp_path = storage_path / run_id
    if resume and tune.Tuner.can_restore(str(exp_path)):
        check_same_config(exp_path / CONFIG_FILE, cfg)
        return True
    if exp_path.exists() and any(p.name != CONFIG_FILE for p in exp_path.iterdir()):
        raise SearchError(
            f"{exp_path}: a search with run id {run_id!r} exists; pass resume=True to continue "
            "it or choose another run id"
        )
    return False


def _trial_name(trial: Any) -> str:
    return f"island_{int(trial.config['island']['index']):05d}"


def run_tune(
    wf: dict[str, BarArrays],
    cfg: SearchConfig,
    islands: list[Island],
    recorder: Any,
    storage_path: Path,
    run_id: str,
    restore: bool,
) -> tuple[list[Any], str]:
    """Run (or, with ``restore``, continue) the islands as Tune trials on the walk-forward
    bars ``wf``; the trial results in island order of the grid and the experiment path."""
    # Candidates go to the library; Tune's per-trial CSV/JSON/TensorBoard files only cost time.
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    # Snapshot the experiment state after every step: a population reported before an
    # interruption is never evaluated again on resume (a step is a whole population).
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "0")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    exp_path = storage_path / run_id
    trainable = tune.with_resources(
        tune.with_parameters(_island_trainable, bars=wf, search=cfg, recorder=recorder),
        {"cpu": 1},
    )
    if restore:
        log.info("search %s: resuming %s", run_id, exp_path)
        tuner = tune.Tuner.restore(
            str(exp_path),
            trainable=trainable,
            resume_unfinished=True,
            resume_errored=True,
            restart_errored=False,
        )
    else:
        exp_path.mkdir(parents=True, exist_ok=True)
        (exp_path / CONFIG_FILE).write_text(cfg.model_dump_json(indent=2))
        cpus = int(ray.cluster_resources().get("CPU", 1))  # type: ignore[no-untyped-call]
        tuner = tune.Tuner(
            trainable,
            param_space={"island": tune.grid_search([asdict(i) for i in islands])},
            tune_config=tune.TuneConfig(
                num_samples=1,
                max_concurrent_trials=cfg.max_concurrent or max(1, cpus),
                reuse_actors=True,
                trial_name_creator=_trial_name,
                trial_dirname_creator=_trial_name,
            ),
            run_config=tune.RunConfig(
                name=run_id,
                storage_path=str(storage_path),
                callbacks=[SearchProgress(run_id, cfg.n_trials, cfg.progress_interval_s)],
                failure_config=tune.FailureConfig(max_failures=cfg.max_failures, fail_fast=False),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
                verbose=0,
            ),
        )
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    with contextlib.redirect_stdout(sys.stderr):  # Tune prints its banners; keep stdout clean
        grid = tuner.fit()
    return [grid[i] for i in range(len(grid))], str(exp_path)


def island_summaries(
    results: Sequence[Any], islands: list[Island]
) -> tuple[list[IslandSummary], list[dict[str, Any]], SharpeStats]:
    """Per island (in plan order): its summary; the finalists of all islands, best objective
    first (ties: lower candidate number); the merged running Sharpe statistics."""
    by_index: dict[int, Any] = {}
    for r in results:
        cfg = (r.config or {}).get("island")
        if cfg is not None:
            by_index[int(cfg["index"])] = r
    out: list[IslandSummary] = []
    finalists: list[dict[str, Any]] = []
    stats = SharpeStats()
    for isl in islands:
        r = by_index.get(isl.index)
        m = (r.metrics or {}) if r is not None else {}
        done, ok, failed = (int(m.get(k, 0)) for k in ("n_done", "n_ok", "n_failed"))
        error = None
        if r is not None and r.error is not None:
            status, error = "error", _short_error(r.error)
        elif m.get("finished"):
            status = "exhausted" if m.get("exhausted") and done < isl.budget else "finished"
        else:
            status = "interrupted"
        out.append(
            IslandSummary(
                isl.index,
                isl.family,
                isl.timeframe,
                isl.budget,
                done,
                ok,
                failed,
                status,
                error,
                float(m.get("compute_s", 0.0)),
                float(m.get("sample_s", 0.0)),
                float(m.get("record_s", 0.0)),
            )
        )
        finalists += json.loads(m.get("finalists_json") or "[]")
        st = json.loads(m.get("stats_json") or "{}")
        if st:
            stats.merge(SharpeStats(int(st["n"]), float(st["mean"]), float(st["m2"])))
    finalists.sort(key=lambda f: (-f["objective"], f["number"]))
    return out, finalists, stats


def _short_error(err: BaseException) -> str:
    """The root cause of a Tune trial error, in one line."""
    cause: BaseException = err
    while (nxt := getattr(cause, "cause", None)) is not None and cause is not nxt:  # RayTaskError
        cause = nxt
    text = f"{type(cause).__name__}: {cause}".strip()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return (lines[-1] if lines else text)[:500]


def start_recorder(run_id: str, db_url: str | None, spool: Path) -> Any:
    """The run's candidate writer, pinned to this (the driver's) node."""
    node = ray.get_runtime_context().get_node_id()
    rec = CandidateRecorder.options(  # type: ignore[attr-defined]
        scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False)
    ).remote(run_id, db_url, str(spool))
    # not awaited: it starts while Tune starts (the library was opened by the driver already)
    return rec
