"""The population search on a real local Ray head: islands as Tune trials, every candidate in
the library, failures recorded, seeds reproduced on any number of workers, a killed worker
retried, resume, and a database that refuses writes."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from aio_ray.bars.store import write_bars
from aio_ray.bars.timeframes import parse_timeframe
from aio_ray.library import Library
from aio_ray.library.candidates import (
    WINDOW_METRICS,
    candidate_counts,
    iter_candidates,
    return_layout,
    unpack,
)
from aio_ray.schema import BAR_SCHEMA
from aio_ray.strategies.evaluate import evaluate_candidate
from aio_ray.strategies.ranking import RankingConfig
from aio_ray.strategies.search import (
    SearchConfig,
    SearchError,
    SearchOutcome,
    run_search,
    search_frames,
    split_holdout,
)
from aio_ray.strategies.sessions import trading_day_ms
from aio_ray.strategies.space import validate
from aio_ray.strategies.walkforward import make_folds
from tests.support.barsynth import hourly_bars, rollup

pytestmark = pytest.mark.ray

FAMILIES = ("ma_cross", "rsi_reversion")
Frames = dict[str, pl.DataFrame]
Searched = tuple[SearchOutcome, Library, list[tuple[str, int, int]]]


@pytest.fixture(scope="module")
def frames() -> dict[str, pl.DataFrame]:
    h1 = hourly_bars(3000, seed=11)  # 125 days
    return {"1h": h1, "4h": rollup(h1, "4h"), "1d": rollup(h1, "1d")}


@pytest.fixture(scope="module")
def bars_dir(frames: dict[str, pl.DataFrame], tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bars")
    for tf, df in frames.items():
        write_bars(root, tf, "EURUSD", df.to_arrow().cast(BAR_SCHEMA))
    return root


def config(**kw: object) -> SearchConfig:
    # warmup 100 bars: the 125 daily bars (100 after the holdout) cannot hold the folds, so
    # every candidate on "1d" fails for real (NotEnoughBarsError) and must be recorded.
    base: dict[str, object] = {
        "families": FAMILIES,
        "timeframes": ("1h", "4h", "1d"),
        "n_trials": 600,
        "seed": 3,
        "n_folds": 3,
        "warmup_bars": 100,
        "holdout_fraction": 0.2,
        "max_concurrent": 2,
        "population_size": 40,
        "centres": 4,
        "progress_interval_s": 0.01,
        # gates relaxed so that random bars still rank something: these tests are about
        # what is stored; the default gates are tested in test_verdict.py
        "ranking": RankingConfig(
            min_trades=10,
            min_dsr=0.0,
            min_sharpe=-1e9,
            min_profit_factor=0.0,
            max_pbo=1.0,
            min_trl_confidence=0.0,
        ),
    }
    return SearchConfig(**(base | kw))  # type: ignore[arg-type]


def rows(lib: Library, run_id: str, *cols: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for batch in iter_candidates(lib, run_id, columns=list(cols) or None):
        out += batch
    return out


@pytest.fixture(scope="module")
def searched(ray_local: Any, bars_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Searched:
    tmp = tmp_path_factory.mktemp("search")
    url = f"sqlite:///{tmp / 'library.db'}"
    calls: list[tuple[str, int, int]] = []
    out = run_search(
        bars_dir,
        config(),
        storage_path=tmp / "tune",
        run_id="run-a",
        db_url=url,
        progress=lambda msg, done, total: calls.append((msg, done, total)),
    )
    return out, Library(url), calls


def test_every_candidate_is_evaluated_once_and_kept_in_the_library(searched: Searched) -> None:
    out, lib, _ = searched
    assert out.complete and out.n_done == 600
    assert len(out.islands) == 6  # 3 timeframes x 2 families, 100 candidates each
    assert all(i.done == i.budget == 100 for i in out.islands)
    stored = rows(lib, "run-a", "number", "params_json", "family", "timeframe", "status")
    assert [r["number"] for r in stored] == list(range(600))
    assert candidate_counts(lib, "run-a") == {"ok": out.n_ok, "failed": out.n_failed}
    for fam in FAMILIES:  # within a stream no parameter set is tried twice
        for tf in ("1h", "4h"):
            keys = [
                json.dumps(r["params"], sort_keys=True)
                for r in stored
                if r["family"] == fam and r["timeframe"] == tf
            ]
            assert len(keys) == 100 and len(set(keys)) == 100
    assert all(validate(r["family"], r["params"]) == r["params"] for r in stored)
    run = lib.get_run("run-a")
    assert run is not None and run.status == "finished"
    assert run.trials_done == out.n_ok == 400 and run.trials_failed == out.n_failed == 200


def test_stored_candidates_equal_a_local_evaluation_of_the_same_parameters(
    searched: Searched, frames: Frames
) -> None:
    out, lib, _ = searched
    wf, _, _, _ = split_holdout(frames, 0.2)
    cfg = out.config
    ok = [r for r in rows(lib, "run-a") if r["status"] == "ok"]
    traded = [r for r in ok if r["sharpe"] is not None]
    rng = np.random.default_rng(0)
    picks = [traded[i] for i in rng.choice(len(traded), 5, replace=False)]
    picks.append(next(r for r in ok if r["sharpe"] is None) if len(traded) < len(ok) else ok[0])
    for r in picks:
        tf = r["timeframe"]
        folds, _ = make_folds(
            len(wf[tf]),
            cfg.n_folds,
            cfg.scheme,
            oos_fraction=cfg.oos_fraction,
            holdout_fraction=0.0,
            warmup_bars=cfg.warmup_bars,
            embargo_bars=cfg.embargo(),
        )
        local = evaluate_candidate(
            wf, r["family"], r["params"], tf, folds, cfg.backtest, cfg.objective_config
        )
        assert r["objective"] == pytest.approx(local.objective, rel=1e-12, abs=1e-12)
        assert r["oos_trades"] == local.oos_trades
        if np.isfinite(local.moments.sharpe):
            assert r["sharpe"] == pytest.approx(local.moments.sharpe, rel=1e-9, abs=1e-12)
        else:  # a candidate that never traded in the OOS windows has no Sharpe: NULL
            assert r["sharpe"] is None
        assert r["n_obs"] == local.moments.n_obs
        layout = return_layout(lib, "run-a", tf)
        assert layout is not None
        rets = unpack(r["returns"])
        assert rets.size == len(layout["period_start_ms"])
        oos = rets[layout["oos_columns"]]
        np.testing.assert_allclose(
            oos, local.period_returns.astype(np.float32), rtol=1e-6, atol=1e-9
        )
        wm = unpack(r["window_metrics"], (2 * cfg.n_folds + 1, len(WINDOW_METRICS)))
        for f in local.folds:
            for w, m in ((2 * f.fold, f.is_metrics), (2 * f.fold + 1, f.oos_metrics)):
                assert wm[w, WINDOW_METRICS.index("trades")] == m["trades"]
                assert wm[w, WINDOW_METRICS.index("net_profit")] == pytest.approx(
                    m["net_profit"], rel=1e-6, abs=1e-3
                )


def test_candidates_on_a_timeframe_too_short_for_the_folds_are_recorded_failed(
    searched: Searched,
) -> None:
    _out, lib, _ = searched
    failed = [r for r in rows(lib, "run-a") if r["status"] == "failed"]
    assert len(failed) == 200
    for r in failed:
        assert r["timeframe"] == "1d"
        assert "NotEnoughBarsError" in r["error"] and "fold(s)" in r["error"]
        assert r["objective"] is None and r["returns"] is None
    assert all(r["status"] == "ok" for r in rows(lib, "run-a") if r["timeframe"] != "1d")


def test_library_holds_the_ranking_finalists_folds_and_holdout(searched: Searched) -> None:
    out, lib, _ = searched
    assert 1 <= len(out.ranking) <= 5
    scores = [r.score for r in out.ranking]
    assert scores == sorted(scores, reverse=True)
    # the DSR counts every evaluated candidate (as effective trials), not the finalists
    v = out.verdict
    assert v is not None and v["candidates"] == out.n_ok == v["raw_trials"]
    assert 1 <= v["effective_trials"] <= out.n_ok
    assert all(f"after {v['trials_for_dsr']} trials" in r.rationale for r in out.ranking)
    assert v["verdict"] == "passed" and v["passed"] == len(out.ranking)
    assert [s["strategy_id"] for s in v["strategies"]] == [r.strategy_id for r in out.ranking]
    assert lib.verdict("run-a") == v
    top = lib.top("run-a", n=5)
    assert [r.strategy.id for r in top] == [r.strategy_id for r in out.ranking]
    for r in top:
        assert r.criteria["trades"] >= 10  # the gate held
        folds = lib.fold_metrics("run-a", r.strategy.id)
        # the nested record's OOS folds; in-sample folds (and the final window, fold 3) when
        # the exported parameters were also an island's finalist
        got = {(f["fold"], f["sample"]) for f in folds}
        assert (
            {(k, "oos") for k in range(3)}
            <= got
            <= ({(k, s) for k in range(3) for s in ("is", "oos")} | {(3, "is")})
        )
        h = out.holdout[r.strategy.id]
        assert r.holdout is not None and r.holdout["trades"] == int(h.metrics["trades"])
        trades = lib.trades("run-a", r.strategy.id, "holdout")
        assert len(trades) == h.trades.height
        assert all(t["entry_ts"] >= out.holdout_start_ms for t in trades)
    assert out.seeds == {"sampler": 3}


def test_holdout_bars_never_reach_an_island(searched: Searched, frames: Frames) -> None:
    out, lib, _ = searched
    cut = out.holdout_start_ms
    last_open = max(int(df["ts"].dt.epoch("ms").to_numpy().max()) for df in frames.values())
    assert cut is not None and cut < last_open
    for tf in ("1h", "4h"):
        layout = return_layout(lib, "run-a", tf)
        assert layout is not None
        # every return column's trading day is at most the one the last pre-cut bar falls in
        # (trading days are labelled by their date: the one ending 17:00 New York)
        assert max(layout["period_start_ms"]) <= int(trading_day_ms(np.array([cut - 1]))[0])
    wf, full, cut2, ranges = split_holdout(frames, 0.2)
    assert cut2 == cut
    for tf, b in wf.items():
        assert int(b.ts[-1]) + parse_timeframe(tf).ms <= cut
        h0, h1 = ranges[tf]
        assert int(full[tf].ts[h0]) >= cut and h1 == len(full[tf])


def test_progress_counts_candidates_with_rate_best_and_eta(searched: Searched) -> None:
    _out, _, calls = searched
    dones = [d for _, d, _ in calls]
    assert all(total == 600 for _, _, total in calls)
    assert dones == sorted(dones) and dones[-1] == 600 and len(calls) >= 3
    line = next(m for m, d, _ in calls if 0 < d < 600)
    assert "candidates" in line and "/s" in line and "best objective" in line and "ETA" in line
    assert calls[-1][0].startswith("search done: 400 candidates ok, 200 failed")


def test_rerunning_a_finished_run_id_is_refused_and_leaves_the_library_alone(
    searched: Searched, bars_dir: Path
) -> None:
    out, lib, _ = searched
    storage = Path(out.experiment_path).parent
    with pytest.raises(SearchError, match="exists; pass resume=True"):
        run_search(bars_dir, config(), storage_path=storage, run_id="run-a", db_url=lib.safe_url)
    run = lib.get_run("run-a")
    assert run is not None and run.status == "finished" and run.trials_done == out.n_ok


def test_the_same_seed_gives_the_same_candidates_on_one_or_two_workers(
    searched: Searched, frames: Frames, tmp_path: Path
) -> None:
    _out, lib, _ = searched
    url = f"sqlite:///{tmp_path / 'one.db'}"
    search_frames(frames, config(max_concurrent=1), storage_path=tmp_path, run_id="one", db_url=url)
    cols = ("number", "params_json", "objective", "status")
    assert rows(Library(url), "one", *cols) == rows(lib, "run-a", *cols)
    other = f"sqlite:///{tmp_path / 'other.db'}"
    search_frames(
        frames,
        config(seed=4, timeframes=("1h",)),
        storage_path=tmp_path,
        run_id="seed4",
        db_url=other,
    )
    assert [r["params"] for r in rows(Library(other), "seed4", "params_json")][:20] != [
        r["params"] for r in rows(lib, "run-a", "params_json")
    ][:20]


@pytest.mark.parametrize("sampler", ["grid", "sobol", "random", "cmaes"])
def test_sweep_and_cmaes_samplers_fill_their_budget_with_distinct_valid_sets(
    ray_local: Any, frames: Frames, tmp_path: Path, sampler: str
) -> None:
    url = f"sqlite:///{tmp_path / 'lib.db'}"
    out = search_frames(
        frames,
        config(sampler=sampler, timeframes=("4h",), n_trials=120),
        storage_path=tmp_path,
        run_id=sampler,
        db_url=url,
    )
    assert out.complete and out.n_ok == 120
    got = rows(Library(url), sampler, "family", "params_json")
    keys = {(r["family"], json.dumps(r["params"], sort_keys=True)) for r in got}
    assert len(keys) == 120
    assert all(validate(r["family"], r["params"]) == r["params"] for r in got)


def test_multi_objective_search_completes_with_nsga2(
    ray_local: Any, frames: Frames, tmp_path: Path
) -> None:
    cfg = config(n_trials=160, timeframes=("1h",), objective="sharpe_and_drawdown", seed=1)
    assert cfg.sampler_name() == "nsga2"
    out = search_frames(frames, cfg, storage_path=tmp_path, run_id="moo")
    assert out.complete and out.n_ok == 160
    assert out.finalists and all(f["oos_max_drawdown"] >= 0.0 for f in out.finalists)


def _island_pids() -> list[int]:
    """Tune's trial actors (``ray::ImplicitFunc``) of this test session's Ray head, which
    runs as children of this process."""
    import psutil

    out = []
    for proc in psutil.Process(os.getpid()).children(recursive=True):
        try:
            if "ImplicitFunc" in " ".join(proc.cmdline()):
                out.append(proc.pid)
        except psutil.Error:
            continue
    return out


@pytest.mark.slow
def test_a_killed_island_worker_is_retried_and_loses_nothing(
    searched: Searched, frames: Frames, tmp_path: Path
) -> None:
    _, lib, _ = searched
    killed: list[int] = []

    def kill_one(msg: str, done: int, total: int) -> None:
        if done >= 80 and not killed:
            pids = _island_pids()
            if pids:
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])

    url = f"sqlite:///{tmp_path / 'k.db'}"
    out = search_frames(
        frames, config(), storage_path=tmp_path, run_id="kill", db_url=url, progress=kill_one
    )
    assert killed, "no island worker was found to kill"
    assert out.complete and out.n_done == 600
    cols = ("number", "params_json", "objective", "status")
    # retried from its last checkpoint: the same candidates and results as the undisturbed run
    assert rows(Library(url), "kill", *cols) == rows(lib, "run-a", *cols)


@pytest.mark.slow
def test_an_interrupted_search_resumes_without_repeating_finished_populations(
    searched: Searched, frames: Frames, tmp_path: Path
) -> None:
    _, lib, _ = searched
    cfg = config()
    url = f"sqlite:///{tmp_path / 'r.db'}"
    sent: list[int] = []

    def interrupt(msg: str, done: int, total: int) -> None:
        # what Ctrl-C does: Tune catches the signal, saves the experiment and returns
        if done >= 200 and not sent:
            sent.append(done)
            os.kill(os.getpid(), signal.SIGUSR1)

    first = search_frames(
        frames, cfg, storage_path=tmp_path, run_id="resume", db_url=url, progress=interrupt
    )
    assert sent and not first.complete and 200 <= first.n_done < 600
    before = {r["number"]: r["recorded_ms"] for r in rows(Library(url), "resume", "recorded_ms")}
    with pytest.raises(SearchError, match="resume=True"):
        search_frames(frames, cfg, storage_path=tmp_path, run_id="resume", db_url=url)
    with pytest.raises(SearchError, match=r"different configuration \(changed: \['n_folds'\]\)"):
        search_frames(
            frames,
            config(n_folds=4),
            storage_path=tmp_path,
            run_id="resume",
            db_url=url,
            resume=True,
        )
    second = search_frames(
        frames, cfg, storage_path=tmp_path, run_id="resume", db_url=url, resume=True
    )
    assert second.complete and second.n_done == 600
    cols = ("number", "params_json", "objective", "status")
    assert rows(Library(url), "resume", *cols) == rows(lib, "run-a", *cols)
    after = {r["number"]: r["recorded_ms"] for r in rows(Library(url), "resume", "recorded_ms")}
    redone = [n for n, t in before.items() if after[n] != t]
    # only an island's last population, whose write was in flight when Tune stopped, may be
    # evaluated again (and it replaces itself): at most one population per island
    assert len(redone) <= len(first.islands) * cfg.population_size
    finished_before = [i for i in first.islands if i.status == "finished"]
    for isl in finished_before:
        assert not [n for n in redone if isl.index == _island_of(first, n)]


def _island_of(out: SearchOutcome, number: int) -> int:
    start = 0
    for isl in out.islands:
        if start <= number < start + isl.budget:
            return isl.index
        start += isl.budget
    raise AssertionError(number)


def test_bars_with_nan_fail_every_candidate_with_the_reason_and_rank_nothing(
    ray_local: Any, frames: Frames, tmp_path: Path
) -> None:
    bad = frames["1h"].with_columns(
        pl.when(pl.int_range(pl.len()) == 500)
        .then(float("nan"))
        .otherwise(pl.col("bid_close"))
        .alias("bid_close")
    )
    url = f"sqlite:///{tmp_path / 'nan.db'}"
    out = search_frames(
        {"1h": bad},
        config(timeframes=("1h",), n_trials=80),
        storage_path=tmp_path,
        run_id="nan",
        db_url=url,
    )
    assert out.complete and out.n_failed == 80 and out.n_ok == 0
    assert out.ranking == () and out.finalists == ()
    got = rows(Library(url), "nan", "error")
    assert len(got) == 80
    assert all("non-finite price nan at bar 500" in r["error"] for r in got)


def test_a_database_that_refuses_writes_loses_nothing_and_resume_finishes(
    ray_local: Any, frames: Frames, tmp_path: Path
) -> None:
    path = tmp_path / "refuse.db"
    url = f"sqlite:///{path}"
    Library(url)  # creates the tables
    con = sqlite3.connect(path)
    con.execute(
        "CREATE TRIGGER refuse BEFORE INSERT ON candidates "
        "BEGIN SELECT RAISE(ABORT, 'disk quota exceeded'); END"
    )
    con.commit()
    cfg = config(timeframes=("4h",), n_trials=80, max_failures=0)
    out = search_frames(frames, cfg, storage_path=tmp_path, run_id="refuse", db_url=url)
    assert not out.complete
    assert out.errors and all("disk quota exceeded" in e for e in out.errors)
    spooled = list((tmp_path / "refuse" / "spool").glob("*.parquet"))
    assert spooled, "the refused populations were not kept"
    kept = pl.concat([pl.read_parquet(p) for p in spooled])
    assert kept["status"].to_list() and set(kept["status"]) == {"ok"}
    assert candidate_counts(Library(url), "refuse") == {"ok": 0, "failed": 0}
    assert Library(url).get_run("refuse").status == "cancelled"  # type: ignore[union-attr]
    con.execute("DROP TRIGGER refuse")
    con.commit()
    con.close()
    again = search_frames(
        frames, cfg, storage_path=tmp_path, run_id="refuse", db_url=url, resume=True
    )
    assert again.complete and candidate_counts(Library(url), "refuse") == {"ok": 80, "failed": 0}


def test_unknown_family_and_missing_timeframe_are_rejected_up_front(
    frames: Frames, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="unknown families"):
        SearchConfig(families=("nope",))
    with pytest.raises(ValueError, match="population_size"):
        SearchConfig(population_size=0)
    with pytest.raises(SearchError, match="no bars for timeframe"):
        search_frames(
            {"1h": frames["1h"]}, config(timeframes=("1h", "4h")), storage_path=tmp_path, run_id="x"
        )
    with pytest.raises(SearchError, match="no walk-forward bars"):
        split_holdout({"1h": frames["1h"].head(3)}, 0.9)
