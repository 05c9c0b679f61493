"""The strategy search at population scale: Ray Tune runs islands, Optuna proposes, numba scores.

How Ray Tune and Optuna fit together in :func:`run_search`:

1. Bars of every timeframe are read once. The final holdout (the last ``holdout_fraction`` of
   the calendar span, cut at a boundary shared by every timeframe) is split off in the driver:
   nothing of it reaches a trial. The walk-forward bars go into the object store once
   (``tune.with_parameters``); every worker on a node reads the same copy.
2. The budget (``n_trials`` candidates) is cut into *islands*
   (:func:`aio_ray.strategies.islands.plan_islands`): timeframe x family streams, each split
   into islands of at most ``island_size`` candidates. **One Tune trial is one island**: Tune
   gives it a CPU, retries it from its last checkpoint when its worker dies
   (``max_failures``), and restores the experiment on ``resume`` (``Tuner.restore``).
3. Inside a trial, an in-process population sampler (:mod:`aio_ray.strategies.sampling`:
   Optuna TPE / CMA-ES / NSGA-II proposing neighbourhood centres with batched ``ask``, or a
   random, Sobol or grid sweep) proposes ``population_size`` parameter sets per generation;
   :func:`aio_ray.strategies.population.evaluate_population` scores them all on every
   walk-forward window in one numba call; the :class:`~aio_ray.strategies.recorder.CandidateRecorder`
   actor writes every candidate (ok or failed, with its metrics and per-period returns) to the
   library in one bulk upsert; the sampler is told the scores; the trial reports once per
   generation (``tune.report`` with a checkpoint of the island's state). A generation is
   hundreds of milliseconds to seconds of work, so Tune's own cost per report is a small
   fraction of it.
4. After the search, each island's best ``finalists`` (bounded, whatever ``n_trials`` is)
   are ranked (``ranking.rank``; the DSR counts every ok candidate of the run, and the
   variance of their Sharpe ratios is merged from the islands' running statistics); the picks
   are evaluated on the holdout (reported beside the score, never part of it); strategies,
   fold metrics, holdout trades and the ranking are stored.

The plan depends on the configuration alone and an island's generations run in order, so the
same seed gives the same candidates and the same results whatever the number of workers.
Memory is bounded by the population, not by ``n_trials``: the driver holds island summaries
and finalists only.
"""

from __future__ import annotations

import contextlib
import json
import logging
import pickle
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import polars as pl
from ray import tune

from aio_ray.config import SearchConfig
from aio_ray.strategies.evaluate import HoldoutResult, MarketBars, evaluate_holdout, split_holdout
from aio_ray.strategies.islands import (
    Island,
    IslandState,
    SharpeStats,
    island_windows,
    plan_islands,
)
from aio_ray.strategies.ranking import RankedStrategy
from aio_ray.strategies.walkforward import SearchError

log = logging.getLogger(__name__)

__all__ = [
    "CONFIG_FILE",
    "IslandSummary",
    "SearchConfig",
    "SearchError",
    "SearchOutcome",
    "SearchProgress",
    "run_search",
    "search_frames",
    "split_holdout",
]

Progress = Callable[..., None]
_STATE_FILE = "island.pkl"


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
    """The result of :func:`run_search`.

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


# ----------------------------------------------------------------------------- the trial


def _island_trainable(
    config: dict[str, Any], bars: Mapping[str, MarketBars], search: SearchConfig, recorder: Any
) -> None:
    """One Tune trial: the generations of one island (see module docstring)."""

    from aio_ray.strategies.islands import run_generation
    from aio_ray.strategies.population import window_layout
    from aio_ray.strategies.recorder import population_rows

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
    import ray

    done, blob = -1, b""
    ckpt = tune.get_checkpoint()
    if ckpt is not None:
        with ckpt.as_directory() as d:
            blob = (Path(d) / _STATE_FILE).read_bytes()
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
    import ray

    if ref is not None:
        t0 = time.perf_counter()
        ray.get(ref)
        metrics = dict(metrics, record_wait_s=time.perf_counter() - t0)
    with tempfile.TemporaryDirectory(prefix="aio-island-") as d:
        (Path(d) / _STATE_FILE).write_bytes(state_bytes)
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(d))


# ----------------------------------------------------------------------------- progress


_SINKS: dict[str, Progress] = {}
"""run_id -> the progress function of the search running it in this process (the callback
itself is pickled with the experiment, so it looks its sink up by run id)."""


class SearchProgress(tune.Callback):
    """Calls ``progress(message, done, total)`` at most every ``interval_s`` seconds (and at
    the end) with candidates done / total, candidates per second, the best objective so far
    and the time left. A :class:`aio_ray.progress.StageProgress` also gets them as fields.

    Pickled with the experiment, so it holds only the run id and finds the progress function
    of the search now running that id in this process in :data:`_SINKS`.
    """

    def __init__(self, run_id: str, total: int, interval_s: float = 3.0) -> None:
        self.run_id, self.total, self.interval_s = run_id, total, interval_s
        self._t0: float | None = None
        self._done0 = 0
        self._last = 0.0

    def setup(self, *args: Any, **info: Any) -> None:
        self._t0, self._last = None, 0.0

    def _emit(self, trials: list[Any], force: bool = False) -> None:
        sink = _SINKS.get(self.run_id)
        if sink is None:
            return
        results = [t.last_result for t in trials if t.last_result]
        done = min(self.total, sum(int(r.get("n_done", 0)) for r in results))
        now = time.monotonic()
        if self._t0 is None:
            self._t0, self._done0 = now, done
        if not force and now - self._last < self.interval_s:
            return
        self._last = now
        bests = [r["best"] for r in results if r.get("best") is not None]
        best = max(bests) if bests else None
        elapsed = max(now - self._t0, 1e-9)
        rate = (done - self._done0) / elapsed
        eta = (self.total - done) / rate if rate > 0 else None
        msg = (
            f"{done:,}/{self.total:,} candidates ({done / self.total:.0%}), {rate:,.0f}/s, "
            f"best objective {'-' if best is None else f'{best:.3f}'} (in-sample), "
            f"ETA {'-' if eta is None else f'{eta:.0f} s'}"
        )
        fields = {
            "candidates_per_s": round(rate, 1),
            "best_objective": best,
            "eta_s": None if eta is None else round(eta, 1),
        }
        _call(sink, msg, done, self.total, fields)

    def on_trial_result(
        self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any], **info: Any
    ) -> None:
        self._emit(trials)

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._emit(trials, force=all(t.status in ("TERMINATED", "ERROR") for t in trials))

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._emit(trials, force=True)


def _call(sink: Progress, msg: str, done: int, total: int, fields: dict[str, Any]) -> None:
    from aio_ray.progress import StageProgress

    if isinstance(sink, StageProgress):
        sink(msg, done, total, **fields)
    else:
        sink(msg, done, total)


# ----------------------------------------------------------------------------- the run


CONFIG_FILE = "aio_search_config.json"
"""The search configuration, saved beside Tune's state so a resume can check it is unchanged."""


def _check_same_config(path: Path, cfg: SearchConfig) -> None:
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


def _experiment_dir(storage_path: Path, run_id: str, cfg: SearchConfig, resume: bool) -> bool:
    """Check the run's experiment directory before anything runs; True when Tune can restore it.

    Raises SearchError when the run exists and ``resume`` is False, or when a resume would
    change the configuration the run started with.
    """
    exp_path = storage_path / run_id
    if resume and tune.Tuner.can_restore(str(exp_path)):
        _check_same_config(exp_path / CONFIG_FILE, cfg)
        return True
    if exp_path.exists() and any(p.name != CONFIG_FILE for p in exp_path.iterdir()):
        raise SearchError(
            f"{exp_path}: a search with run id {run_id!r} exists; pass resume=True to continue "
            "it or choose another run id"
        )
    return False


def _trial_name(trial: Any) -> str:
    return f"island_{int(trial.config['island']['index']):05d}"


def _run_tune(
    wf: dict[str, MarketBars],
    cfg: SearchConfig,
    islands: list[Island],
    recorder: Any,
    storage_path: Path,
    run_id: str,
    restore: bool,
) -> tuple[list[Any], str]:
    import os

    import ray

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
        cpus = int(ray.cluster_resources().get("CPU", 1))
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


def _summaries(
    results: Sequence[Any], islands: list[Island]
) -> tuple[list[IslandSummary], list[dict[str, Any]], SharpeStats]:
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


def _param_ranges(families: Sequence[str]) -> dict[str, dict[str, tuple[float, float]]]:
    from aio_ray.strategies.space import describe

    out: dict[str, dict[str, tuple[float, float]]] = {}
    for fam in families:
        out[fam] = {
            p["name"]: (float(p["low"]), float(p["high"]))
            for p in describe(fam)["params"]
            if "low" in p
        }
    return out


def _start_recorder(run_id: str, db_url: str | None, spool: Path) -> Any:
    """The run's candidate writer, pinned to this (the driver's) node."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from aio_ray.strategies.recorder import CandidateRecorder

    node = ray.get_runtime_context().get_node_id()
    rec = CandidateRecorder.options(  # type: ignore[attr-defined]
        scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False)
    ).remote(run_id, db_url, str(spool))
    # not awaited: it starts while Tune starts (the library was opened by the driver already)
    return rec


def search_frames(
    frames: Mapping[str, pl.DataFrame],
    config: SearchConfig,
    *,
    storage_path: str | Path,
    run_id: str,
    resume: bool = False,
    db_url: str | None = None,
    progress: Progress | None = None,
) -> SearchOutcome:
    """Run the search on in-memory bar frames (timeframe -> BAR_SCHEMA frame); see :func:`run_search`."""
    import ray

    from aio_ray.raycluster import ensure_ray

    missing = [tf for tf in config.timeframes if tf not in frames]
    if missing:
        raise SearchError(f"no bars for timeframe(s) {missing}; have {sorted(frames)}")
    storage = Path(storage_path).resolve()
    restore = _experiment_dir(storage, run_id, config, resume)
    ensure_ray()
    t0 = time.perf_counter()
    seeds = {"sampler": config.seed}
    islands = plan_islands(
        config.n_trials, config.timeframes, config.family_names(), config.seed, config.island_size
    )
    log.info(
        "search %s: seeds %s, %d candidates in %d islands (%s sampler, populations of %d)",
        run_id,
        seeds,
        config.n_trials,
        len(islands),
        config.sampler_name(),
        config.population_size,
    )
    lib = None
    if db_url is not None:
        from aio_ray.config import config_id
        from aio_ray.library import Library

        lib = Library(db_url)
        lib.start_run(run_id, config, seeds, config_id=config_id(config))
    recorder = None
    try:
        wf, full, cut, hold_ranges = split_holdout(
            {tf: frames[tf] for tf in config.timeframes}, config.holdout_fraction
        )
        log.info(
            "search %s: holdout from %s ms; walk-forward bars %s",
            run_id,
            cut,
            {tf: len(b) for tf, b in wf.items()},
        )
        layouts = _layouts(wf, config)
        if lib is not None:
            from aio_ray.library.candidates import record_layout

            for tf, lay in layouts.items():
                record_layout(lib, run_id, tf, lay)
        recorder = _start_recorder(run_id, db_url, storage / run_id / "spool")
        if progress is not None:
            _SINKS[run_id] = progress
        try:
            t_fit = time.perf_counter()
            results, exp_path = _run_tune(wf, config, islands, recorder, storage, run_id, restore)
            log.info("search %s: Tune finished in %.1f s", run_id, time.perf_counter() - t_fit)
        finally:
            _SINKS.pop(run_id, None)
        summaries, finalists, _stats = _summaries(results, islands)
        from aio_ray.library import strategy_id

        for f in finalists:
            f["strategy_id"] = strategy_id(f["family"], f["params"], f["timeframe"], config.symbol)
        judgement = _judge(lib, run_id, layouts, storage / run_id / "spool", config)
        ranking = list(judgement.ranking)
        by_sid = judgement.candidates
        holdout: dict[str, HoldoutResult] = {}
        for r in ranking:
            c = by_sid[r.strategy_id]
            h0, h1 = hold_ranges[c.timeframe]
            if h1 - h0 >= 2:
                holdout[r.strategy_id] = evaluate_holdout(
                    full[c.timeframe], c.family, c.params, (h0, h1), config.backtest, c.timeframe
                )
        verdict = _with_holdout(judgement.verdict, holdout, run_id, config, cut)
        complete = all(s.status in ("finished", "exhausted") for s in summaries)
        outcome = SearchOutcome(
            run_id,
            exp_path,
            seeds,
            config.n_trials,
            tuple(summaries),
            tuple(finalists),
            tuple(ranking),
            holdout,
            cut,
            config,
            complete,
            time.perf_counter() - t0,
            verdict,
        )
        for e in outcome.errors:
            log.error("search %s: %s", run_id, e)
        if not complete:
            log.warning(
                "search %s: %d of %d candidates done; resume=True continues it",
                run_id,
                outcome.n_done,
                config.n_trials,
            )
        log.info("search %s: %s", run_id, verdict["message"])
        if lib is not None:
            _store(lib, outcome, judgement)
            lib.finish_run(run_id, "finished" if complete else "cancelled")
        if progress is not None:
            best = outcome.best
            _call(
                progress,
                f"search done: {outcome.n_ok:,} candidates ok, {outcome.n_failed:,} failed in "
                f"{outcome.wall_s:.1f} s; best objective "
                f"{'-' if best is None else round(best['objective'], 3)} (in-sample); "
                f"{outcome.verdict['message'] if outcome.verdict else ''}",
                outcome.n_done,
                config.n_trials,
                {"candidates_per_s": round(outcome.n_done / max(outcome.wall_s, 1e-9), 1)},
            )
        return outcome
    except BaseException:
        if lib is not None:
            try:
                lib.finish_run(run_id, "failed")
            except Exception:
                log.exception("search %s: could not mark the run failed", run_id)
        raise
    finally:
        if recorder is not None:
            with contextlib.suppress(Exception):
                ray.kill(recorder)


def _layouts(wf: Mapping[str, MarketBars], cfg: SearchConfig) -> dict[str, dict[str, Any]]:
    """Each timeframe's window / return-column layout (where the folds can be made)."""
    from aio_ray.strategies.population import window_layout

    out: dict[str, dict[str, Any]] = {}
    for tf, mb in wf.items():
        try:
            folds, final = island_windows(len(mb), cfg)
            lay = window_layout(mb.ts, folds, cfg.objective_config.period_ms, final)
        except SearchError:
            continue
        out[tf] = lay.describe()
    return out


def _judge(
    lib: Any, run_id: str, layouts: Mapping[str, dict[str, Any]], spool: Path, cfg: SearchConfig
) -> Any:
    """Nested walk-forward selection over every recorded candidate, then the verdict."""
    from aio_ray.library import strategy_id
    from aio_ray.strategies.selection import Selector, spool_batches
    from aio_ray.strategies.verdict import judge

    t0 = time.perf_counter()
    sel = Selector(
        layouts, cfg.objective_config, matrix_candidates=cfg.matrix_candidates, seed=cfg.seed
    )
    cols = [
        "number",
        "family",
        "timeframe",
        "guide",
        "status",
        "error",
        "params_json",
        "returns",
        "window_metrics",
    ]
    batches: Iterable[list[dict[str, Any]]]
    if lib is not None:
        from aio_ray.library.candidates import iter_candidates

        batches = iter_candidates(lib, run_id, columns=cols)
    else:
        batches = spool_batches(spool)
    for b in batches:
        sel.add(b)
    records = sel.records()
    n_failed = sum(sel.errors.values())
    out = judge(
        records,
        sel.samples(),
        strategy_id=lambda fam, params, tf: strategy_id(fam, params, tf, cfg.symbol),
        config=cfg.ranking,
        top=cfg.top,
        param_ranges=_param_ranges(cfg.family_names()),
        n_failed=n_failed,
        errors=sel.errors,
        pbo_blocks=cfg.ranking.pbo_blocks,
        seed=cfg.seed,
    )
    log.info(
        "search %s: judged %d procedures in %.1f s", run_id, len(records), time.perf_counter() - t0
    )
    return out


def _with_holdout(
    v: dict[str, Any],
    holdout: Mapping[str, HoldoutResult],
    run_id: str,
    cfg: SearchConfig,
    cut: int | None,
) -> dict[str, Any]:
    """The verdict with the picks' holdout figures (touched once, after ranking), the run,
    the costs and how the parameters were chosen."""
    from aio_ray.strategies.verdict import _plain

    out = dict(v)
    out["run_id"] = run_id
    for s in out["strategies"]:
        h = holdout.get(s["strategy_id"])
        s["holdout"] = (
            None
            if h is None
            else _plain(
                {
                    k: h.metrics.get(k)
                    for k in ("net_profit", "sharpe", "max_drawdown", "profit_factor", "trades")
                }
            )
        )
    bt = cfg.backtest
    out["costs"] = _plain(
        {
            k: getattr(bt, k)
            for k in type(bt).model_fields
            if k
            in (
                "commission_type",
                "commission",
                "slippage_points",
                "swap_long",
                "swap_short",
                "price_model",
            )
        }
    )
    out["selection"] = {
        "method": "nested walk-forward: each fold's parameters chosen on its in-sample window "
        "only; exported parameters chosen on the last in-sample window before the "
        "holdout",
        "folds": cfg.n_folds,
        "scheme": cfg.scheme,
        "embargo_bars": cfg.embargo(),
        "sampler": cfg.sampler_name(),
        "holdout_start_ms": cut,
    }
    return out


def _store(lib: Any, out: SearchOutcome, judgement: Any) -> None:
    """Write the finalists (strategies and fold metrics), each procedure's exported pick with
    its nested walk-forward record as its OOS fold metrics, holdout metrics and trades of the
    ranked strategies, the ranking and the verdict (every candidate is already stored)."""
    from aio_ray.library import METRIC_COLUMNS

    run_id, symbol = out.run_id, out.config.symbol
    seen: set[str] = set()
    for f in out.finalists:  # best first: a strategy found twice keeps its best folds
        if f["strategy_id"] in seen:
            continue
        seen.add(f["strategy_id"])
        sid = lib.upsert_strategy(run_id, f["family"], f["params"], f["timeframe"], symbol)
        lib.record_fold_metrics(  # the final in-sample window is in-sample window k
            run_id,
            sid,
            [
                {
                    "fold": r["fold"],
                    "sample": "is" if r["sample"] == "final" else r["sample"],
                    **{k: r[k] for k in METRIC_COLUMNS},
                }
                for r in f["folds"]
            ],
        )
    for sid, c in judgement.candidates.items():
        rec = judgement.records[sid]
        lib.upsert_strategy(run_id, c.family, dict(c.params), c.timeframe, symbol)
        rows = [
            {"fold": f.fold, "sample": "oos", **{k: f.oos.get(k) for k in METRIC_COLUMNS}}
            for f in rec.folds
            if f.number >= 0
        ]
        lib.record_fold_metrics(run_id, sid, rows)
    for sid, h in out.holdout.items():
        lib.record_holdout(run_id, sid, {k: h.metrics[k] for k in METRIC_COLUMNS})
        lib.record_trades(
            run_id,
            sid,
            "holdout",
            h.trades.select(
                "side",
                "entry_ts",
                "exit_ts",
                "entry_price",
                "exit_price",
                "size",
                "pnl",
                "pnl_pips",
                "exit_reason",
            ),
        )
    lib.save_ranking(run_id, list(out.ranking))
    if out.verdict is not None:
        lib.save_verdict(run_id, out.verdict)


def run_search(
    bars_dir: str | Path,
    config: SearchConfig,
    *,
    storage_path: str | Path,
    run_id: str,
    resume: bool = False,
    db_url: str | None = None,
    progress: Progress | None = None,
) -> SearchOutcome:
    """Search strategies on the bars in ``bars_dir`` (written by ``aio_ray.bars``).

    Parameters
    ----------
    bars_dir
        Bars directory; ``config.timeframes`` of ``config.symbol`` are read once.
    config
        Families, timeframes, candidate budget (``n_trials``), sampler, population size,
        seed, folds, objective, costs and ranking.
    storage_path
        Directory of Tune experiments; this run lives in ``storage_path/run_id``.
    run_id
        Stable id of the run (Tune experiment name and library run id).
    resume
        Continue an interrupted run with the same id (no finished population is repeated).
    db_url
        Library URL (``sqlite:///...`` or ``postgresql+psycopg://...``); None: candidates are
        kept as Parquet under ``storage_path/run_id/spool``.
    progress
        ``progress(message, done, total)`` every ``config.progress_interval_s`` seconds and at
        the end (``done``/``total`` in candidates).

    Raises
    ------
    SearchError
        Missing timeframes, a holdout that leaves no bars, or an existing run without ``resume``.
    """
    from aio_ray.bars.store import read_bars

    frames = {tf: read_bars(bars_dir, tf, config.symbol) for tf in config.timeframes}
    return search_frames(
        frames,
        config,
        storage_path=storage_path,
        run_id=run_id,
        resume=resume,
        db_url=db_url,
        progress=progress,
    )
