"""Ticks -> bars in process: hand-made cases, a polars/pandas oracle, and exact merging of
partial bars over any split of the tick stream (hypothesis)."""

from __future__ import annotations

import datetime as dt
import itertools
import random

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aio_ray.bars import (
    SUPPORTED_TIMEFRAMES,
    bars_from_ticks,
    check_conservation,
    merge_partials,
    partial_bars,
    partials_to_bars,
)
from aio_ray.bars.resample import (
    bars_from_partial_blocks,
    block_partial_bars,
    partial_blocks,
    sorted_runs,
)
from aio_ray.errors import BarsError
from aio_ray.schema import BAR_SCHEMA, TICK_SCHEMA, TS_TYPE

ALL_TFS = SUPPORTED_TIMEFRAMES


def ms(*args: int) -> int:
    return int(dt.datetime(*args, tzinfo=dt.UTC).timestamp() * 1000)


def ticks_table(ts, bid, ask, bid_volume=None, ask_volume=None) -> pa.Table:
    n = len(ts)
    bv = np.ones(n, np.float32) if bid_volume is None else np.asarray(bid_volume, np.float32)
    av = np.ones(n, np.float32) if ask_volume is None else np.asarray(ask_volume, np.float32)
    return pa.Table.from_arrays(
        [
            pa.array(np.asarray(ts, np.int64)).cast(TS_TYPE),
            pa.array(np.asarray(bid, np.float64)),
            pa.array(np.asarray(ask, np.float64)),
            pa.array(bv),
            pa.array(av),
        ],
        schema=TICK_SCHEMA,
    )


def random_ticks(n: int, start_ms: int, seed: int, mean_gap_ms: float = 1500.0) -> pa.Table:
    """A random walk in whole points with realistic spreads, some same-millisecond ticks and
    some gaps of hours."""
    rng = np.random.default_rng(seed)
    gaps = rng.exponential(mean_gap_ms, n).astype(np.int64)
    gaps[rng.random(n) < 0.05] = 0  # same millisecond as the previous tick
    gaps[rng.random(n) < 0.001] += 3 * 3_600_000  # quiet hours without ticks
    ts = start_ms + np.cumsum(gaps)
    bid_pts = 110_000 + np.cumsum(rng.integers(-2, 3, n))
    spread_pts = rng.integers(0, 8, n)
    bid = bid_pts / 1e5
    ask = (bid_pts + spread_pts) / 1e5
    vols = np.round(rng.uniform(0.1, 9.0, (2, n)), 2).astype(np.float32)
    return ticks_table(ts, bid, ask, vols[0], vols[1])


# --- hand-made cases ------------------------------------------------------------------------


def test_one_minute_bar_by_hand() -> None:
    t0 = ms(2019, 2, 4, 10, 0)
    table = ticks_table(
        [t0 + 100, t0 + 20_000, t0 + 20_000, t0 + 59_999],
        [1.10000, 1.10010, 1.09990, 1.10005],
        [1.10002, 1.10013, 1.09991, 1.10009],
        [1.0, 2.5, 0.25, 4.0],
        [0.5, 0.5, 0.5, 0.5],
    )
    bar = bars_from_ticks(table, ["1m"])["1m"].to_pylist()
    assert len(bar) == 1
    b = bar[0]
    assert b["ts"] == dt.datetime(2019, 2, 4, 10, 0, tzinfo=dt.UTC)
    assert (b["bid_open"], b["bid_high"], b["bid_low"], b["bid_close"]) == (
        1.1,
        1.1001,
        1.0999,
        1.10005,
    )
    assert (b["ask_open"], b["ask_high"], b["ask_low"], b["ask_close"]) == (
        1.10002,
        1.10013,
        1.09991,
        1.10009,
    )
    mids = [
        (1.10000 + 1.10002) / 2,
        (1.10010 + 1.10013) / 2,
        (1.09990 + 1.09991) / 2,
        (1.10005 + 1.10009) / 2,
    ]
    assert (b["mid_open"], b["mid_high"], b["mid_low"], b["mid_close"]) == (
        mids[0],
        max(mids),
        min(mids),
        mids[3],
    )
    spreads = [1.10002 - 1.10000, 1.10013 - 1.10010, 1.09991 - 1.09990, 1.10009 - 1.10005]
    assert b["spread_mean"] == pytest.approx(sum(spreads) / 4, abs=1e-12)
    assert b["spread_max"] == max(spreads)
    assert b["ticks"] == 4
    assert b["bid_volume"] == 7.75 and b["ask_volume"] == 2.0


def test_minutes_without_ticks_produce_no_bar() -> None:
    t0 = ms(2019, 2, 4, 10, 0)
    table = ticks_table(
        [t0, t0 + 60_000 * 3 + 5, t0 + 3_600_000 * 5], [1.1, 1.2, 1.3], [1.1001, 1.2001, 1.3001]
    )
    bars = bars_from_ticks(table, ["1m", "5m", "1h", "1d"])
    assert bars["1m"].column("ts").cast(pa.int64()).to_pylist() == [
        t0,
        t0 + 180_000,
        t0 + 18_000_000,
    ]
    assert bars["5m"].num_rows == 2 and bars["1h"].num_rows == 2 and bars["1d"].num_rows == 1
    for table_ in bars.values():
        assert min(table_.column("ticks").to_pylist()) >= 1
    check_conservation(bars, 3, "hand")


def test_ticks_a_millisecond_apart_across_a_minute_boundary_make_two_bars() -> None:
    t = ms(2019, 2, 4, 10, 1)
    table = ticks_table([t - 1, t], [1.1, 1.2], [1.1001, 1.2001])
    bars = bars_from_ticks(table, ["1m", "5m"])
    assert bars["1m"].column("ts").cast(pa.int64()).to_pylist() == [t - 60_000, t]
    assert bars["5m"].column("bid_close").to_pylist() == [1.2]


def test_higher_timeframes_are_exact_rollups_of_one_minute_bars() -> None:
    table = random_ticks(20_000, ms(2019, 2, 4, 0, 0, 7), seed=3)
    bars = {tf: pl.from_arrow(t) for tf, t in bars_from_ticks(table, ALL_TFS).items()}
    one = bars["1m"]
    for tf in ("5m", "15m", "1h", "4h", "1d"):
        roll = (
            one.group_by_dynamic("ts", every=tf)
            .agg(
                pl.col("bid_open").first(), pl.col("bid_high").max(), pl.col("mid_low").min(),
                pl.col("ask_close").last(), pl.col("ticks").sum(), pl.col("spread_max").max(),
            )
        )  # fmt: skip
        got = bars[tf].select(roll.columns)
        assert got.equals(roll), tf


def test_empty_ticks_give_empty_bar_tables() -> None:
    bars = bars_from_ticks(TICK_SCHEMA.empty_table(), ["1m", "1d"], "new_york_close")
    assert set(bars) == {"1m", "1d"}
    for table in bars.values():
        assert table.num_rows == 0 and table.schema.equals(BAR_SCHEMA)


# --- oracle: polars (intraday, UTC day) and pandas time zones (New York day) ----------------


def oracle_bars(ticks: pa.Table, label: pl.Expr) -> pl.DataFrame:
    df = pl.from_arrow(ticks).with_columns(
        mid=(pl.col("bid") + pl.col("ask")) / 2, spread=pl.col("ask") - pl.col("bid")
    )
    aggs = []
    for side in ("bid", "ask", "mid"):
        aggs += [
            pl.col(side).first().alias(f"{side}_open"),
            pl.col(side).max().alias(f"{side}_high"),
            pl.col(side).min().alias(f"{side}_low"),
            pl.col(side).last().alias(f"{side}_close"),
        ]
    aggs += [
        pl.col("spread").mean().alias("spread_mean"),
        pl.col("spread").max().alias("spread_max"),
        pl.len().cast(pl.Int64).alias("ticks"),
        pl.col("bid_volume").cast(pl.Float64).sum().alias("bid_volume"),
        pl.col("ask_volume").cast(pl.Float64).sum().alias("ask_volume"),
    ]
    return df.with_columns(ts=label).group_by("ts", maintain_order=True).agg(aggs).sort("ts")


def assert_bars_match_oracle(ours: pa.Table, oracle: pl.DataFrame, what: str) -> None:
    got = pl.from_arrow(ours)
    assert got.columns == oracle.columns
    assert got.height == oracle.height, what
    exact = [c for c in got.columns if c not in ("spread_mean", "bid_volume", "ask_volume")]
    assert got.select(exact).equals(oracle.select(exact)), what
    np.testing.assert_allclose(
        got["spread_mean"].to_numpy(), oracle["spread_mean"].to_numpy(), rtol=0, atol=1e-12
    )
    for c in ("bid_volume", "ask_volume"):
        np.testing.assert_allclose(got[c].to_numpy(), oracle[c].to_numpy(), rtol=1e-12)


@pytest.mark.parametrize("tf", ["1m", "5m", "15m", "30m", "1h", "4h", "1d"])
def test_bars_equal_a_polars_group_by_on_truncated_times(tf: str) -> None:
    ticks = random_ticks(30_000, ms(2019, 2, 3, 21, 55, 1), seed=11)
    every = {"1d": "1d"}.get(tf, tf)
    oracle = oracle_bars(ticks, pl.col("ts").dt.truncate(every))
    assert_bars_match_oracle(bars_from_ticks(ticks, [tf])[tf], oracle, tf)


@pytest.mark.parametrize("start", [ms(2019, 3, 8, 12), ms(2019, 11, 1, 12), ms(2019, 2, 3, 20)])
def test_new_york_close_days_equal_a_pandas_time_zone_oracle(start: int) -> None:
    ticks = random_ticks(40_000, start, seed=5, mean_gap_ms=12_000)  # about 5 days
    ts = pd.Series(ticks.column("ts").cast(pa.int64()).to_numpy())
    wall = (
        pd.to_datetime(ts, unit="ms", utc=True)
        .dt.tz_convert("America/New_York")
        .dt.tz_localize(None)
    )
    open_wall = (wall - pd.Timedelta(hours=17)).dt.floor("D") + pd.Timedelta(hours=17)
    open_utc = open_wall.dt.tz_localize("America/New_York").dt.tz_convert("UTC")
    label = pl.Series(open_utc.dt.as_unit("ms").astype("int64")).cast(pl.Datetime("ms", "UTC"))
    oracle = oracle_bars(ticks, pl.lit(label))
    ours = bars_from_ticks(ticks, ["1d"], "new_york_close")["1d"]
    assert_bars_match_oracle(ours, oracle, "1d new_york_close")
    hours = sorted({t.hour for t in pl.from_arrow(ours)["ts"].to_list()})
    assert set(hours) <= {21, 22}


# --- exact merging of partial bars ----------------------------------------------------------

_GAPS = st.one_of(
    st.sampled_from(
        [0, 0, 1, 999, 59_999, 60_000, 61_000, 3_599_999, 3_600_000, 14_400_000, 86_400_000]
    ),
    st.integers(0, 400_000),
)
_START = st.sampled_from(
    [
        ms(2019, 2, 4, 21, 58, 30),
        ms(2019, 3, 10, 20, 59),
        ms(2019, 11, 3, 21, 30),
        ms(2019, 2, 4, 23, 59, 59),
    ]
)
_TICK = st.tuples(
    _GAPS,
    st.integers(100_000, 100_040),  # bid in points: narrow, so highs and lows tie often
    st.integers(0, 6),  # spread in points
    st.floats(0, 50, width=32, allow_nan=False),
    st.floats(0, 50, width=32, allow_nan=False),
)


def _table_from_draw(
    start: int, rows: list[tuple[int, int, int, float, float]], min_gap: int = 0
) -> pa.Table:
    gaps = np.array([max(r[0], min_gap) for r in rows], np.int64)
    bid_pts = np.array([r[1] for r in rows], np.int64)
    spread_pts = np.array([r[2] for r in rows], np.int64)
    return ticks_table(
        start + np.cumsum(gaps),
        bid_pts / 1e5,
        (bid_pts + spread_pts) / 1e5,
        [r[3] for r in rows],
        [r[4] for r in rows],
    )


def _assert_same_bars(a: dict[str, pa.Table], b: dict[str, pa.Table]) -> None:
    assert sorted(a) == sorted(b)
    for tf, table in a.items():
        assert table.equals(b[tf]), tf


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    start=_START,
    rows=st.lists(_TICK, min_size=1, max_size=120),
    cuts=st.lists(st.integers(0, 120), max_size=6),
    daily_close=st.sampled_from(["utc", "new_york_close"]),
)
def test_any_split_of_the_stream_merges_to_the_single_pass_bars(
    start, rows, cuts, daily_close
) -> None:
    """Pieces in stream order, cut anywhere (even inside a run of same-millisecond ticks)."""
    ticks = _table_from_draw(start, rows)
    whole = bars_from_ticks(ticks, ALL_TFS, daily_close)
    edges = sorted({0, ticks.num_rows, *[min(c, ticks.num_rows) for c in cuts]})
    parts = [
        partial_bars(ticks.slice(a, b - a), ALL_TFS, daily_close)
        for a, b in itertools.pairwise(edges)
    ]
    merged = partials_to_bars(merge_partials(parts))
    _assert_same_bars(merged, whole)
    check_conservation(merged, ticks.num_rows, "hypothesis")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    start=_START,
    rows=st.lists(_TICK, min_size=1, max_size=120),
    cuts=st.lists(st.integers(0, 120), max_size=8),
    n_bins=st.integers(1, 4),
    seed=st.integers(0, 2**16),
    daily_close=st.sampled_from(["utc", "new_york_close"]),
)
def test_pieces_packed_out_of_order_merge_to_the_single_pass_bars(
    start, rows, cuts, n_bins, seed, daily_close
) -> None:
    """Like a reader that packs file chunks into blocks in any order: pieces are dealt into
    bins, each bin concatenates its pieces in random order, bins arrive in random order.
    Timestamps are distinct here (order between same-millisecond pieces is unknowable)."""
    ticks = _table_from_draw(start, rows, min_gap=1)
    whole = bars_from_ticks(ticks, ALL_TFS, daily_close)
    edges = sorted({0, ticks.num_rows, *[min(c, ticks.num_rows) for c in cuts]})
    pieces = [ticks.slice(a, b - a) for a, b in itertools.pairwise(edges)]
    rnd = random.Random(seed)
    bins: list[list[pa.Table]] = [[] for _ in range(n_bins)]
    for piece in pieces:
        bins[rnd.randrange(n_bins)].append(piece)
    blocks = []
    for b in bins:
        rnd.shuffle(b)
        if b:
            blocks.append(pa.concat_tables(b))
    rnd.shuffle(blocks)
    parts = [block_partial_bars(blk, ALL_TFS, daily_close, strict_order=False) for blk in blocks]
    _assert_same_bars(partials_to_bars(merge_partials(parts)), whole)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    start=_START,
    rows=st.lists(_TICK, min_size=1, max_size=120),
    cuts=st.lists(st.integers(0, 120), max_size=8),
    group_cuts=st.lists(st.integers(0, 9), max_size=3),
    daily_close=st.sampled_from(["utc", "new_york_close"]),
)
def test_groups_of_pieces_joined_in_task_merge_to_the_single_pass_bars(
    start, rows, cuts, group_cuts, daily_close
) -> None:
    """The map-task path: the stream cut into pieces (files, even inside a same-millisecond
    run), consecutive pieces grouped into tasks, each task joins its pieces' minute bars and
    rolls up once, and the driver merges the tasks' blocks in stream order without sorting."""
    ticks = _table_from_draw(start, rows)
    whole = bars_from_ticks(ticks, ALL_TFS, daily_close)
    edges = sorted({0, ticks.num_rows, *[min(c, ticks.num_rows) for c in cuts]})
    pieces = [ticks.slice(a, b - a) for a, b in itertools.pairwise(edges)]
    gedges = sorted({0, len(pieces), *[min(g, len(pieces)) for g in group_cuts]})
    blocks = [
        partial_blocks(pieces[a:b], ALL_TFS, daily_close, [f"piece {i}" for i in range(a, b)])
        for a, b in itertools.pairwise(gedges)
    ]
    merged = bars_from_partial_blocks(blocks, ALL_TFS)
    _assert_same_bars(merged, whole)
    check_conservation(merged, ticks.num_rows, "hypothesis")


def test_pieces_out_of_stream_order_in_a_task_are_an_error() -> None:
    ticks = random_ticks(5_000, ms(2019, 2, 4), seed=3)
    later, earlier = ticks.slice(2_500), ticks.slice(0, 2_500)
    with pytest.raises(BarsError, match="b: the pieces are not in stream order"):
        partial_blocks([later, earlier], ["1m"], sources=["a", "b"])


def test_sorted_runs_cut_where_time_goes_back() -> None:
    assert sorted_runs(np.array([1, 2, 2, 5, 3, 4, 1])) == [(0, 4), (4, 6), (6, 7)]
    assert sorted_runs(np.array([7])) == [(0, 1)]


# --- bad inputs -----------------------------------------------------------------------------


def test_unsorted_ticks_are_rejected_naming_row_and_time() -> None:
    t0 = ms(2019, 2, 4, 10)
    table = ticks_table([t0, t0 + 5_000, t0 + 4_000], [1.1] * 3, [1.1001] * 3)
    with pytest.raises(
        BarsError, match=r"day-file: ticks are not sorted by ts at row 2 \(ts 2019-02-04T10:00:04"
    ):
        bars_from_ticks(table, ["1m"], source="day-file")
    # The tolerant block path treats the block as two sorted pieces instead.
    block = block_partial_bars(table, ["1m"], strict_order=False)
    assert sum(block.column("ticks").to_pylist()) == 3


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_prices_are_rejected(bad: float) -> None:
    t0 = ms(2019, 2, 4, 10)
    table = ticks_table([t0, t0 + 1], [1.1, bad], [1.1001, 1.1001])
    with pytest.raises(BarsError, match="at row 1"):
        bars_from_ticks(table, ["1m"])


def test_wrong_tick_column_type_is_rejected() -> None:
    good = random_ticks(10, ms(2019, 2, 4), seed=1)
    bad = good.set_column(1, "bid", good.column("bid").cast(pa.float32()))
    with pytest.raises(BarsError, match="'bid' is float"):
        bars_from_ticks(bad, ["1m"])
    with pytest.raises(BarsError, match="missing tick column 'ask'"):
        bars_from_ticks(good.drop_columns(["ask"]), ["1m"])


def test_unknown_timeframe_and_daily_close_are_rejected() -> None:
    ticks = random_ticks(10, ms(2019, 2, 4), seed=1)
    with pytest.raises(BarsError, match="unknown timeframe '7m'"):
        bars_from_ticks(ticks, ["1m", "7m"])
    with pytest.raises(BarsError, match="daily_close"):
        bars_from_ticks(ticks, ["1d"], "london")  # type: ignore[arg-type]


def test_conservation_check_raises_when_ticks_are_lost() -> None:
    bars = bars_from_ticks(random_ticks(100, ms(2019, 2, 4), seed=2), ["1m", "1h"])
    check_conservation(bars, 100, "ok")
    with pytest.raises(BarsError, match="1m bars count 100 ticks but 101"):
        check_conservation(bars, 101, "lost")
