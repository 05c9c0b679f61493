"""Pattern statistics in the strategy library: upserts, filters, latest run, NaN round trip.

Runs on SQLite (a temp file) and on PostgreSQL when ``AIO_TEST_POSTGRES_URL`` is set (each
test in a private schema; under ``CI`` a missing PostgreSQL is a failure, as in
tests/integration/test_library.py).
"""

from __future__ import annotations

import dataclasses
import math
import os
import uuid

import polars as pl
import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.engine import make_url

from aio_ray.bars.arrays import BarArrays
from aio_ray.library import open_library
from aio_ray.library.patterns import (
    PatternOccurrenceRow,
    PatternStatRow,
    load_occurrences,
    load_pattern_stats,
    save_mining,
    save_occurrences,
    save_pattern_stats,
    stats_from_rows,
)
from aio_ray.patterns.mining import mine_bars
from aio_ray.patterns.stats import DIRECTIONS, PatternStats
from aio_ray.patterns.synthetic_windows import random_walk_ohlc

PG_ENV = "AIO_TEST_POSTGRES_URL"


@pytest.fixture(params=["sqlite", "postgresql"])
def lib(request, tmp_path):
    if request.param == "sqlite":
        library = open_library(f"sqlite:///{tmp_path / 'library.db'}")
        yield library
        library.close()
        return
    base = os.environ.get(PG_ENV)
    if not base:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but {PG_ENV} is not: run .ci/postgres.sh before the tests")
        pytest.skip(f'{PG_ENV} not set: run `eval "$(.ci/postgres.sh)"` to test PostgreSQL too')
    schema = f"aio_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    library = open_library(url.render_as_string(hide_password=False))
    try:
        yield library
    finally:
        library.close()
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


def _row(pattern: str, timeframe: str = "1h", horizon: int = 5, **kw) -> PatternStats:
    base = PatternStats(
        symbol="EURUSD",
        timeframe=timeframe,
        pattern=pattern,
        direction=DIRECTIONS[pattern],
        horizon=horizon,
        occurrences=120,
        count=118,
        n_independent=90,
        mean_bps=1.25,
        median_bps=0.75,
        std_bps=6.5,
        mean_raw_bps=-1.25,
        hit_rate=0.56,
        t_stat=2.5,
        baseline_count=5000,
        baseline_mean_bps=0.02,
        baseline_hit_rate=0.5,
        bars=5005,
        first_ts_ms=1_549_238_400_000,
        last_ts_ms=1_549_411_200_000,
    )
    return dataclasses.replace(base, **kw)


def _count(lib, model) -> int:
    t = model.__table__
    with lib.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(t)).scalar_one())


def test_save_twice_upserts_without_duplicates(lib) -> None:
    rows = [_row("double_top"), _row("doji", t_stat=0.4), _row("hammer", horizon=20)]
    assert save_pattern_stats(lib, "run-a", rows) == 3
    assert save_pattern_stats(lib, "run-a", rows) == 3
    assert _count(lib, PatternStatRow) == 3
    # a rerun with other numbers replaces them
    save_pattern_stats(lib, "run-a", [dataclasses.replace(rows[0], mean_bps=-7.5, t_stat=-4.0)])
    assert _count(lib, PatternStatRow) == 3
    got = {(r["pattern"], r["horizon"]): r for r in load_pattern_stats(lib, run_key="run-a")}
    assert got[("double_top", 5)]["mean_bps"] == -7.5
    assert got[("double_top", 5)]["t_stat"] == -4.0
    assert got[("doji", 5)]["validated"] is False  # |t| 0.4
    assert got[("double_top", 5)]["validated"] is True
    assert got[("hammer", 20)]["min_count"] == 30 and got[("hammer", 20)]["min_abs_t"] == 2.0


def test_values_round_trip_and_nan_becomes_none(lib) -> None:
    row = _row("bull_flag", t_stat=math.nan, std_bps=math.nan, hit_rate=0.0)
    save_pattern_stats(lib, "k1", [row])
    [stored] = load_pattern_stats(lib)
    assert stored["t_stat"] is None and stored["std_bps"] is None and stored["hit_rate"] == 0.0
    assert stored["source_key"] == "k1" and stored["validated"] is False
    back = stats_from_rows([stored])[0]
    assert math.isnan(back.t_stat)
    assert dataclasses.replace(back, t_stat=0.0, std_bps=0.0) == dataclasses.replace(
        row, t_stat=0.0, std_bps=0.0
    )
    assert stored["first_ts_ms"] == 1_549_238_400_000  # BIGINT, exact


def test_filters_and_latest_run_per_timeframe(lib) -> None:
    save_pattern_stats(lib, "old", [_row("doji", "1h", mean_bps=1.0), _row("doji", "4h")])
    save_pattern_stats(
        lib, "new", [_row("doji", "1h", mean_bps=2.0, t_stat=0.1), _row("hammer", "1h")]
    )
    latest = load_pattern_stats(lib)
    # 1h: only the newest run's rows; 4h: its only run
    assert sorted((r["timeframe"], r["pattern"], r["source_key"]) for r in latest) == [
        ("1h", "doji", "new"),
        ("1h", "hammer", "new"),
        ("4h", "doji", "old"),
    ]
    assert [r["pattern"] for r in load_pattern_stats(lib, timeframe=" 1H ")] == ["doji", "hammer"]
    assert [r["pattern"] for r in load_pattern_stats(lib, timeframe="1h", validated_only=True)] == [
        "hammer"
    ]
    assert load_pattern_stats(lib, run_key="old", timeframe="1h")[0]["mean_bps"] == 1.0
    assert load_pattern_stats(lib, symbol="GBPUSD") == []
    assert [r["timeframe"] for r in load_pattern_stats(lib, pattern="doji")] == ["1h", "4h"]


def test_explicit_kept_rows_and_duplicate_rows(lib) -> None:
    rows = [_row("doji", t_stat=0.1), _row("hammer", t_stat=9.0)]
    save_pattern_stats(lib, "k", rows, kept=[rows[0]])
    flags = {r["pattern"]: r["validated"] for r in load_pattern_stats(lib)}
    assert flags == {"doji": True, "hammer": False}
    with pytest.raises(ValueError, match="repeat"):
        save_pattern_stats(lib, "k", [rows[0], rows[0]])
    with pytest.raises(ValueError, match="run_key"):
        save_pattern_stats(lib, "", rows)


def test_mining_result_is_saved_per_timeframe_key(lib) -> None:
    o, h, lo, c = random_walk_ohlc(3000, seed=2)
    ts = 1_700_000_000_000 + 60_000 * __import__("numpy").arange(3000, dtype="int64")
    res = mine_bars(BarArrays(ts, o, h, lo, c), symbol="EURUSD", timeframe="1m", horizons=(1, 5))
    n = save_mining(lib, res)
    assert n == len(res.stats)
    save_mining(lib, res)  # rerun: same key, no duplicates
    assert _count(lib, PatternStatRow) == len(res.stats)
    assert _count(lib, PatternOccurrenceRow) == res.occurrences.height > 0
    key = res.keys["1m"]
    occ = load_occurrences(lib, run_key=key, pattern="doji")
    want = res.occurrences.filter(pl.col("pattern") == "doji")
    assert [r["ts_ms"] for r in occ] == want["ts"].dt.epoch("ms").to_list()
    assert save_occurrences(lib, key, res.occurrences.head(0)) == 0
    stored = stats_from_rows(load_pattern_stats(lib, run_key=key))
    want_stats = sorted(res.stats, key=lambda s: (s.pattern, s.horizon))
    assert [repr(s.to_dict()) for s in stored] == [repr(s.to_dict()) for s in want_stats]
