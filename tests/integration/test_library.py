"""The strategy library, run for real against SQLite (a temp file) and PostgreSQL.

PostgreSQL comes from ``AIO_TEST_POSTGRES_URL`` (start one with ``eval "$(.ci/postgres.sh)"``);
each test gets its own schema. Without the variable the PostgreSQL half skips, unless ``CI``
is set: then it fails, so CI cannot pass without a real PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import math
import multiprocessing as mp
import os
import pickle
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from aio_ray.library import (
    METRIC_COLUMNS,
    Library,
    LibraryError,
    LibraryUnavailableError,
    open_library,
    strategy_id,
)

REPO = Path(__file__).resolve().parents[2]
PG_ENV = "AIO_TEST_POSTGRES_URL"


def _postgres_base_url() -> str:
    url = os.environ.get(PG_ENV)
    if not url:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but {PG_ENV} is not: run .ci/postgres.sh before the tests")
        pytest.skip(f'{PG_ENV} not set: run `eval "$(.ci/postgres.sh)"` to test PostgreSQL too')
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """A fresh, empty library database URL: a SQLite file, or a private PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'library.db'}"
        return
    base = _postgres_base_url()
    schema = f"aio_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


@pytest.fixture
def lib(db_url):
    library = open_library(db_url)
    yield library
    library.close()


# ----------------------------------------------------------------------------- a whole run


FOLD_METRICS = {
    "net_profit": 125.5,
    "sharpe": 1.25,
    "sortino": 1.9,
    "max_drawdown": 0.061,
    "profit_factor": 1.45,
    "win_rate": 0.52,
    "trades": 31,
    "exposure": 0.37,
    "avg_trade": 4.05,
    "cagr": 0.11,
}


def _trades(n: int, scale: float = 1.0) -> list[dict]:
    t0 = 1_549_238_400_000  # 2019-02-04 00:00 UTC, ms
    return [
        {
            "side": "long" if i % 2 == 0 else "short",
            "entry_ts": t0 + i * 3_600_000,
            "exit_ts": t0 + i * 3_600_000 + 1_800_000,
            "entry_price": 1.14263 + i * 1e-5,
            "exit_price": 1.14301 + i * 1e-5,
            "size": 10_000.0,
            "pnl": scale * (3.8 - i),
            "pnl_pips": scale * (3.8 - i),
            "exit_reason": ["signal", "stop", "take"][i % 3],
        }
        for i in range(n)
    ]


def _populate(lib: Library, run_id: str, *, version: int = 1) -> list[str]:
    """Record a complete small run; ``version`` 2 rewrites it with other values and fewer rows."""
    lib.start_run(run_id, {"search": {"trials": 6}, "v": version}, {"search": 7, "synthetic": 11})
    families = [
        ("ema_cross", {"fast": 10, "slow": 50}),
        ("ema_cross", {"fast": 20, "slow": 120}),
        ("rsi_revert", {"length": 14, "lower": 30.0, "upper": 70.0}),
    ]
    ids = []
    for k, (family, params) in enumerate(families):
        sid = lib.upsert_strategy(run_id, family, params, "1h", "EURUSD")
        ids.append(sid)
        lib.record_trial(run_id, k, strategy_id=sid, objective=1.0 + k, duration_s=0.5)
        folds = [
            dict(
                fold=f,
                sample=s,
                **{m: v * (1 + f) * version for m, v in FOLD_METRICS.items() if m != "trades"},
                trades=31 + f,
            )
            for f in range(3 if version == 1 else 2)
            for s in ("is", "oos")
        ]
        lib.record_fold_metrics(run_id, sid, folds)
        lib.record_holdout(run_id, sid, {**FOLD_METRICS, "sharpe": 0.8 * version})
        lib.record_trades(run_id, sid, "holdout", _trades(5 if version == 1 else 3, scale=version))
        lib.record_trades(run_id, sid, "full", _trades(12))
    lib.record_trial(run_id, 3, status="failed", error="ValueError: slow <= fast")
    lib.record_trial(run_id, 4, status="failed", error="timeout after 30 s")
    rows = [
        {
            "strategy_id": sid,
            "score": 0.9 - 0.1 * i,
            "criteria": {"dsr": 0.95 - i / 10, "trades": 93.0},
            "contributions": {"dsr": 0.28},
            "rationale": f"pick {i}",
        }
        for i, sid in enumerate(ids)
    ]
    lib.save_ranking(run_id, rows if version == 1 else rows[:2])
    lib.finish_run(run_id)
    return ids


def test_a_run_round_trips_with_strategies_folds_holdout_trades_and_ranking(lib):
    ids = _populate(lib, "run-1")
    run = lib.get_run("run-1")
    assert run.status == "finished" and run.finished_ms >= run.created_ms
    assert run.config == {"search": {"trials": 6}, "v": 1} and run.seeds == {
        "search": 7,
        "synthetic": 11,
    }
    assert (run.trials_done, run.trials_failed) == (3, 2)
    assert len(run.config_id) == 12

    s = lib.get_strategy(ids[2])
    assert (s.family, s.params, s.timeframe, s.symbol, s.run_id) == (
        "rsi_revert",
        {"length": 14, "lower": 30.0, "upper": 70.0},
        "1h",
        "EURUSD",
        "run-1",
    )
    assert s.id == strategy_id(
        "rsi_revert", {"upper": 70.0, "lower": 30.0, "length": 14}, "1h", "EURUSD"
    )
    assert lib.get_strategy("missing") is None

    folds = lib.fold_metrics("run-1", ids[0])
    assert [(f["fold"], f["sample"]) for f in folds] == [
        (0, "is"),
        (0, "oos"),
        (1, "is"),
        (1, "oos"),
        (2, "is"),
        (2, "oos"),
    ]
    assert folds[3]["sharpe"] == pytest.approx(2.5) and folds[3]["trades"] == 32
    assert folds[5]["max_drawdown"] == pytest.approx(0.183)

    trades = lib.trades("run-1", ids[1], "holdout")
    assert [t["seq"] for t in trades] == [0, 1, 2, 3, 4]
    want = _trades(5)
    for got, exp in zip(trades, want):
        assert {k: got[k] for k in exp} == exp  # exact: ms ints, floats, strings

    top = lib.top()  # the newest ranked run by default
    assert [(r.rank, r.strategy.id) for r in top] == [(1, ids[0]), (2, ids[1]), (3, ids[2])]
    assert top[0].criteria == {"dsr": 0.95, "trades": 93.0} and top[0].rationale == "pick 0"
    assert top[0].holdout["sharpe"] == pytest.approx(0.8) and top[0].holdout["trades"] == 31
    assert [r.strategy.id for r in lib.top("run-1", n=2)] == ids[:2]
    trials = lib.trials("run-1")
    assert [t["status"] for t in trials] == ["ok", "ok", "ok", "failed", "failed"]
    assert trials[3]["error"] == "ValueError: slow <= fast" and trials[3]["strategy_id"] is None


def test_rerunning_the_same_run_id_replaces_rows_instead_of_duplicating(lib):
    ids = _populate(lib, "run-1")
    created = lib.get_run("run-1").created_ms
    counts = {
        t: lib.count(t, "run-1")
        for t in (
            "strategies",
            "trial_results",
            "fold_metrics",
            "holdout_metrics",
            "trades",
            "rankings",
        )
    }
    assert counts == {
        "strategies": 3,
        "trial_results": 5,
        "fold_metrics": 18,
        "holdout_metrics": 3,
        "trades": 51,
        "rankings": 3,
    }
    assert _populate(lib, "run-1") == ids  # identical rerun
    assert {t: lib.count(t, "run-1") for t in counts} == counts

    _populate(lib, "run-1", version=2)  # same keys, new values; fewer folds, trades and picks
    assert lib.count("runs") == 1 and lib.count("strategies") == 3
    assert lib.count("trades", "run-1") == 3 * (3 + 12)
    assert lib.count("rankings", "run-1") == 2
    assert lib.count("fold_metrics", "run-1") == 3 * 2 * 3  # upserts never delete folds
    run = lib.get_run("run-1")
    assert run.created_ms == created and run.config["v"] == 2
    assert lib.holdout("run-1", ids[0])["sharpe"] == pytest.approx(1.6)
    assert [t["pnl"] for t in lib.trades("run-1", ids[0], "holdout")] == [
        t["pnl"] for t in _trades(3, scale=2)
    ]
    assert len(lib.top("run-1", n=5)) == 2
    # replace=True makes the given folds the complete set for that strategy
    lib.record_fold_metrics(
        "run-1", ids[0], [{"fold": 0, "sample": "oos", "sharpe": 9.0}], replace=True
    )
    assert [(f["fold"], f["sample"], f["sharpe"]) for f in lib.fold_metrics("run-1", ids[0])] == [
        (0, "oos", 9.0)
    ]
    assert lib.count("fold_metrics", "run-1") == 2 * 2 * 3 + 1


def test_the_same_strategy_found_by_two_runs_is_one_row_owned_by_the_first(lib):
    lib.start_run("a", {}, {})
    lib.start_run("b", {}, {})
    sid_a = lib.upsert_strategy("a", "ema_cross", {"fast": 5, "slow": 9}, "15m", "EURUSD")
    sid_b = lib.upsert_strategy("b", "ema_cross", {"slow": 9, "fast": 5}, "15m", "EURUSD")
    assert sid_a == sid_b and lib.count("strategies") == 1
    assert lib.get_strategy(sid_a).run_id == "a"
    # a different value type, timeframe or symbol is a different strategy
    assert lib.upsert_strategy("b", "ema_cross", {"fast": 5.0, "slow": 9}, "15m", "EURUSD") != sid_a
    assert lib.upsert_strategy("b", "ema_cross", {"fast": 5, "slow": 9}, "1h", "EURUSD") != sid_a
    assert lib.count("strategies") == 3


def test_top_defaults_to_the_newest_ranked_run_and_lists_runs_newest_first(lib):
    assert lib.top() == []
    _populate(lib, "old")
    ids = _populate(lib, "new")
    lib.start_run("newest-unranked", {}, {})
    assert [r.id for r in lib.list_runs()] == ["newest-unranked", "new", "old"]
    assert {r.run_id for r in lib.top()} == {"new"}
    assert lib.top()[0].strategy.id == ids[0]


def test_ranking_output_is_saved_as_is(lib):
    # imported here: spawned writer processes import this module and need not load scipy
    from aio_ray.strategies.dsr import ReturnMoments
    from aio_ray.strategies.ranking import Candidate, FoldOOS, RankingConfig, rank

    lib.start_run("r", {}, {})
    cands = []
    for i in range(3):
        sid = lib.upsert_strategy("r", f"fam{i}", {"p": i}, "1h", "EURUSD")
        folds = tuple(FoldOOS(f, 1.0 + i, 0.05, 1.5, 20) for f in range(3))
        cands.append(
            Candidate(
                sid, f"fam{i}", {"p": i}, folds, ReturnMoments(0.05 + i / 100, 0.0, 3.0, 400), "1h"
            )
        )
    # significance gates off: the point here is storage, and three made-up candidates over
    # 400 periods are not significant after 30 trials
    gates_off = RankingConfig(min_dsr=0.0, max_pbo=1.0, min_trl_confidence=0.0)
    ranked = rank(cands, n_trials=30, top=3, config=gates_off)
    assert len(ranked) == 3
    lib.save_ranking("r", ranked)
    top = lib.top("r")
    assert [t.strategy.id for t in top] == [r.strategy_id for r in ranked]
    assert top[0].score == pytest.approx(ranked[0].score)
    # criteria not computable here (PBO with no return matrix, min TRL with the gate off) are NaN
    assert top[0].criteria == pytest.approx(dict(ranked[0].criteria), nan_ok=True)
    assert top[0].contributions == pytest.approx(dict(ranked[0].contributions), nan_ok=True)
    assert top[0].rationale == ranked[0].rationale and top[0].holdout is None


def test_nan_metrics_become_null_and_infinite_profit_factor_survives(lib):
    lib.start_run("r", {}, {})
    sid = lib.upsert_strategy("r", "f", {}, "1h", "EURUSD")
    lib.record_fold_metrics(
        "r",
        sid,
        [
            {
                "fold": 0,
                "sample": "oos",
                "sharpe": float("nan"),
                "profit_factor": math.inf,
                "trades": 0,
            }
        ],
    )
    [row] = lib.fold_metrics("r", sid)
    assert row["sharpe"] is None and row["profit_factor"] == math.inf and row["trades"] == 0
    assert all(
        row[m] is None for m in METRIC_COLUMNS if m not in ("sharpe", "profit_factor", "trades")
    )


def test_trades_accept_datetimes_and_arrow_tables(lib):
    import pyarrow as pa

    lib.start_run("r", {}, {})
    sid = lib.upsert_strategy("r", "f", {}, "1h", "EURUSD")
    t = dict(_trades(1)[0])
    t["entry_ts"] = dt.datetime(2019, 2, 4, 15, 0, 0, 64000, tzinfo=dt.UTC)
    t["exit_ts"] = dt.datetime(2019, 2, 4, 16, 0)  # naive = UTC
    assert lib.record_trades("r", sid, "full", pa.Table.from_pylist([t])) == 1
    [row] = lib.trades("r", sid, "full")
    assert (row["entry_ts"], row["exit_ts"]) == (1_549_292_400_064, 1_549_296_000_000)


def test_bad_input_is_rejected_with_the_argument_named(lib):
    lib.start_run("r", {}, {})
    sid = lib.upsert_strategy("r", "f", {}, "1h", "EURUSD")
    with pytest.raises(ValueError, match="unknown metric"):
        lib.record_fold_metrics("r", sid, [{"fold": 0, "sample": "oos", "sharp": 1.0}])
    with pytest.raises(ValueError, match="sample must be"):
        lib.record_fold_metrics("r", sid, [{"fold": 0, "sample": "holdout", "sharpe": 1.0}])
    with pytest.raises(ValueError, match="side must be"):
        lib.record_trades("r", sid, "full", [{**_trades(1)[0], "side": "buy"}])
    with pytest.raises(ValueError, match="family must not contain NUL"):
        lib.upsert_strategy("r", "a\x00b", {}, "1h", "EURUSD")
    with pytest.raises(LibraryError, match="record fold metrics of nope") as exc:
        lib.record_fold_metrics("r", "nope", [{"fold": 0, "sample": "oos"}])  # unknown strategy
    assert "integrity" in str(exc.value)
    with pytest.raises(LibraryError, match="no such run"):
        lib.finish_run("never-started")


# ----------------------------------------------------------------------------- hostile values


HOSTILE = [
    "x'; DROP TABLE strategies; --",
    "quote \" and ' and `back` \\ slash",
    "line one\nline two\r\n\ttab",
    "Ελληνικά · 日本語 · emoji 🚀 · rtl עברית",
    "Robert'); DELETE FROM runs WHERE ('1'='1",
]


def test_hostile_names_and_params_are_stored_and_returned_verbatim(lib):
    run_id = HOSTILE[4]
    lib.start_run(run_id, {"note": HOSTILE[0]}, {"seed": 1})
    ids = []
    for i, h in enumerate(HOSTILE):
        params = {h: h, "n": i, f"k{i}": [h, {"nested": h}]}
        sid = lib.upsert_strategy(run_id, h, params, h, h, name=HOSTILE[(i + 1) % 5])
        ids.append(sid)
        back = lib.get_strategy(sid)
        assert (back.family, back.params, back.timeframe, back.symbol, back.name) == (
            h,
            params,
            h,
            h,
            HOSTILE[(i + 1) % 5],
        )
        lib.record_trial(run_id, i, strategy_id=sid, status="failed", error=h)
    assert lib.get_run(run_id).config == {"note": HOSTILE[0]}
    assert [t["error"] for t in lib.trials(run_id)] == HOSTILE
    lib.save_ranking(
        run_id,
        [
            {"strategy_id": s, "score": 0.5, "criteria": {h: 1.0}, "rationale": h}
            for s, h in zip(ids, HOSTILE)
        ],
    )
    assert [r.rationale for r in lib.top(run_id, n=10)] == HOSTILE
    # every table is still there and nothing was deleted
    names = set(inspect(lib.engine).get_table_names())
    assert {"strategies", "runs", "rankings"} <= names
    assert lib.count("strategies") == 5 and lib.count("runs") == 1


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    family=st.text(
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
        min_size=1,
        max_size=30,
    ),
    params=st.dictionaries(
        st.text(st.characters(blacklist_categories=("Cs",)), max_size=10),
        st.one_of(
            st.integers(-(10**12), 10**12),
            st.floats(allow_nan=False, allow_infinity=False),
            st.booleans(),
            st.text(st.characters(blacklist_categories=("Cs",)), max_size=20),
        ),
        max_size=5,
    ),
)
def test_any_text_round_trips_on_sqlite(tmp_path_factory, family, params):
    path = tmp_path_factory.getbasetemp() / "hypothesis_library.db"
    with Library(f"sqlite:///{path}") as library:
        library.start_run("h", {}, {})
        sid = library.upsert_strategy("h", family, params, "1h", "EURUSD")
        back = library.get_strategy(sid)
        assert (back.family, back.params) == (family, params)


# ----------------------------------------------------------------------------- concurrency


N_PROCS, N_SHARED, N_OWN, N_FOLDS, N_TRADES = 4, 6, 5, 3, 8


def _writer(url: str, proc: int, barrier) -> None:
    """One OS process recording its share of run "conc" (and re-recording the shared part)."""
    first = Library(url)
    library = pickle.loads(pickle.dumps(first))  # a Library travels by its URL
    first.close()
    barrier.wait(timeout=60)
    library.start_run("conc", {"procs": N_PROCS}, {"seed": 1})
    for j in range(N_SHARED):  # every process finds the same strategies
        sid = library.upsert_strategy("conc", "shared", {"j": j}, "1h", "EURUSD")
        library.record_fold_metrics(
            "conc",
            sid,
            [{"fold": f, "sample": "oos", "sharpe": 0.1 * f, "trades": 10} for f in range(N_FOLDS)],
        )
        library.record_trades("conc", sid, "full", _trades(N_TRADES))
        library.record_holdout("conc", sid, {"sharpe": 1.0})
    for j in range(N_OWN):  # and some of its own
        sid = library.upsert_strategy("conc", "own", {"proc": proc, "j": j}, "1h", "EURUSD")
        library.record_trial("conc", proc * 100 + j, strategy_id=sid, objective=float(j))
        library.record_fold_metrics(
            "conc",
            sid,
            [
                {"fold": f, "sample": s, "sharpe": 1.0}
                for f in range(N_FOLDS)
                for s in ("is", "oos")
            ],
        )
        library.record_trades("conc", sid, "holdout", _trades(j))
    library.close()


def test_concurrent_processes_write_one_run_without_duplicates_or_losses(db_url):
    Library(db_url).close()  # tables exist before the race (creation is also race-safe)
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(N_PROCS)
    procs = [ctx.Process(target=_writer, args=(db_url, p, barrier)) for p in range(N_PROCS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=180)
    assert [p.exitcode for p in procs] == [0] * N_PROCS
    with Library(db_url) as library:
        assert library.count("runs") == 1
        assert library.count("strategies", "conc") == N_SHARED + N_PROCS * N_OWN
        assert library.count("trial_results", "conc") == N_PROCS * N_OWN
        assert (
            library.count("fold_metrics", "conc")
            == N_SHARED * N_FOLDS + N_PROCS * N_OWN * N_FOLDS * 2
        )
        assert library.count("holdout_metrics", "conc") == N_SHARED
        assert library.count("trades", "conc") == N_SHARED * N_TRADES + N_PROCS * sum(range(N_OWN))
        with library.engine.connect() as conn:  # and no key appears twice
            dupes = conn.execute(
                text(
                    "SELECT COUNT(*) FROM (SELECT strategy_id, segment, seq FROM trades "
                    "GROUP BY strategy_id, segment, seq HAVING COUNT(*) > 1) d"
                )
            ).scalar()
        assert dupes == 0
        run = library.finish_run("conc")
        assert (run.trials_done, run.trials_failed) == (N_PROCS * N_OWN, 0)


def test_a_locked_sqlite_write_is_retried_until_the_lock_is_released(tmp_path):
    import sqlite3
    import threading
    import time

    url = f"sqlite:///{tmp_path / 'locked.db'}"
    library = Library(url, busy_timeout_s=0.01, retries=20)  # give up waiting fast, then retry
    library.start_run("r", {}, {})
    blocker = sqlite3.connect(tmp_path / "locked.db", isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the write lock
    blocker.execute("UPDATE runs SET status = 'held' WHERE id = 'r'")
    release = threading.Timer(0.4, blocker.execute, args=("COMMIT",))
    release.start()
    t0 = time.monotonic()
    library.record_trial("r", 0, status="failed", error="x")  # must wait for the COMMIT
    waited = time.monotonic() - t0
    release.join()
    blocker.close()
    assert library.count("trial_results", "r") == 1 and waited > 0.1
    assert library.get_run("r").status == "held"  # the other writer's commit is intact
    # with no retries left the lock surfaces as a LibraryError naming the operation
    impatient = Library(url, busy_timeout_s=0.01, retries=0)
    blocker = sqlite3.connect(tmp_path / "locked.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    with pytest.raises(LibraryError, match="record trial 1 of run 'r'.*locked"):
        impatient.record_trial("r", 1, status="failed", error="x")
    blocker.execute("ROLLBACK")
    blocker.close()
    library.close()
    impatient.close()


def test_concurrent_first_opens_create_the_tables_once(db_url):
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(3)
    procs = [ctx.Process(target=_open_and_record, args=(db_url, i, barrier)) for i in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    with Library(db_url) as library:
        assert library.count("trial_results", "race") == 3


def _open_and_record(url: str, i: int, barrier) -> None:
    barrier.wait(timeout=60)
    with Library(url) as library:
        library.start_run("race", {}, {})
        library.record_trial("race", i, status="failed", error="x")


@pytest.mark.ray
def test_ray_tasks_write_through_a_library_handed_to_them(ray_local, tmp_path):
    url = f"sqlite:///{tmp_path / 'ray_library.db'}"
    library = Library(url)
    library.start_run("ray", {}, {})

    @ray_local.remote
    def trial(lib: Library, k: int) -> str:
        sid = lib.upsert_strategy("ray", "shared", {"k": k % 3}, "1h", "EURUSD")
        lib.record_trial("ray", k, strategy_id=sid, objective=float(k))
        return sid

    sids = ray_local.get([trial.remote(library, k) for k in range(12)])
    assert len(set(sids)) == 3
    assert library.count("strategies", "ray") == 3
    assert library.count("trial_results", "ray") == 12
    library.close()


# ----------------------------------------------------------------------------- unreachable


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_postgres_raises_a_library_error_naming_the_url_without_password():
    port = _closed_port()
    with pytest.raises(LibraryUnavailableError) as exc:
        open_library(f"postgresql+psycopg://aio:s3cr3t-pw@127.0.0.1:{port}/aio_test")
    msg = str(exc.value)
    assert f"127.0.0.1:{port}/aio_test" in msg and "s3cr3t-pw" not in msg
    assert isinstance(exc.value, LibraryError) and "s3cr3t-pw" not in exc.value.url


def test_a_sqlite_file_in_a_missing_directory_is_created_with_its_folders(tmp_path):
    path = tmp_path / "no" / "such" / "dir" / "library.db"
    with open_library(f"sqlite:///{path}") as lib:
        assert lib.list_runs() == []
    assert path.is_file()


def test_a_sqlite_file_whose_folder_cannot_be_created_raises_a_library_error(tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    url = f"sqlite:///{tmp_path / 'a-file' / 'dir' / 'library.db'}"
    with pytest.raises(LibraryUnavailableError, match="a-file/dir/library.db"):
        open_library(url)


def test_the_one_default_url_opens_in_an_empty_working_directory(tmp_path, monkeypatch):
    from aio_ray.config import AppConfig, LibraryConfig
    from aio_ray.library import DEFAULT_URL
    from aio_ray.library.config import DEFAULT_URL as CONFIG_DEFAULT
    from aio_ray.library.repo import DEFAULT_URL as REPO_DEFAULT

    assert DEFAULT_URL == CONFIG_DEFAULT == REPO_DEFAULT == "sqlite:///data/library.db"
    assert LibraryConfig().url == AppConfig().library.url == DEFAULT_URL
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AIO_LIBRARY_URL", raising=False)
    for lib in (open_library(), Library()):
        with lib:
            assert lib.safe_url == DEFAULT_URL and lib.list_runs() == []
    assert (tmp_path / "data" / "library.db").is_file()


def test_the_library_config_module_does_not_load_sqlmodel():
    code = (
        "import sys; import aio_ray.library.config, aio_ray.library; "
        "assert 'sqlmodel' not in sys.modules and 'sqlalchemy' not in sys.modules, 'loaded'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


@pytest.mark.parametrize(
    "url", ["not a url", "mysql://u:pw@127.0.0.1/db", "postgresql+nodriver://u:pw@h/db"]
)
def test_malformed_or_unsupported_urls_raise_a_library_error(url):
    with pytest.raises(LibraryUnavailableError) as exc:
        open_library(url)
    assert ":pw@" not in str(exc.value)


def test_wrong_postgres_password_is_reported_without_it():
    base = make_url(_postgres_base_url())
    bad = base.set(password="definitely-wrong").render_as_string(hide_password=False)
    with pytest.raises(LibraryUnavailableError) as exc:
        open_library(bad)
    assert "definitely-wrong" not in str(exc.value) and "password authentication failed" in str(
        exc.value
    )


def test_without_postgres_the_suite_fails_under_ci_instead_of_skipping():
    env = {k: v for k, v in os.environ.items() if k != PG_ENV}
    env["CI"] = "1"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:randomly",
            f"{Path(__file__)}::test_a_run_round_trips_with_strategies_folds_holdout_trades_and_ranking",
        ],
        check=False,
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0, proc.stdout
    assert "1 passed" in proc.stdout and ("1 failed" in proc.stdout or "1 error" in proc.stdout), (
        proc.stdout
    )
    assert "CI is set but AIO_TEST_POSTGRES_URL is not" in proc.stdout
