"""Tick validation: each bad input yields its quarantine reason, and ticks are conserved."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aio_ray.config import SpikeRule, ValidationConfig
from aio_ray.data.dukascopy import decode_ticks
from aio_ray.data.validate import REASONS, _longest_nondecreasing, count_reasons, validate_ticks
from aio_ray.schema import TICK_SCHEMA

T0 = int(dt.datetime(2025, 7, 1, 12, tzinfo=dt.UTC).timestamp() * 1000)


def ticks(rows: list[tuple[int, float, float, float, float]]) -> pa.Table:
    ts, bid, ask, bv, av = zip(*rows, strict=True) if rows else ([], [], [], [], [])
    return pa.Table.from_arrays(
        [
            pa.array(np.asarray(ts, dtype=np.int64) + T0).cast(TICK_SCHEMA.field("ts").type),
            pa.array(bid, pa.float64()),
            pa.array(ask, pa.float64()),
            pa.array(bv, pa.float32()),
            pa.array(av, pa.float32()),
        ],
        schema=TICK_SCHEMA,
    )


def clean(n: int, seed: int = 0) -> list[tuple[int, float, float, float, float]]:
    rng = np.random.default_rng(seed)
    mid = 1.1 + np.cumsum(rng.choice([-1, 0, 0, 1], n)) * 1e-5
    return [(i * 250, round(m - 5e-6, 5), round(m + 5e-6, 5), 1.0, 1.5) for i, m in enumerate(mid)]


def reasons_of(res) -> dict[int, str]:
    """Quarantined rows by their ts offset (ms after T0)."""
    ts = res.quarantined.column("ts").cast(pa.int64()).to_numpy() - T0
    return dict(zip(ts.tolist(), res.quarantined.column("reason").to_pylist(), strict=True))


def test_clean_ticks_are_all_kept():
    res = validate_ticks(ticks(clean(500)))
    assert res.kept.num_rows == 500 and res.quarantined.num_rows == 0
    assert res.counts == {**{r: 0 for r in REASONS}, "kept": 500}


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ((float("nan"), 1.1), "bad_price"),
        ((1.1, float("nan")), "bad_price"),
        ((0.0, 1.1), "bad_price"),
        ((-1.1, 1.1), "bad_price"),
        ((1.1, float("inf")), "bad_price"),
        ((1.10012, 1.10010), "crossed"),
    ],
)
def test_each_bad_price_yields_its_reason(bad, reason):
    rows = clean(50)
    rows[20] = (rows[20][0], bad[0], bad[1], 1.0, 1.0)
    res = validate_ticks(ticks(rows))
    assert reasons_of(res) == {rows[20][0]: reason}
    assert res.kept.num_rows == 49


def test_locked_quote_is_kept_and_negative_volume_is_quarantined():
    rows = clean(50)
    rows[10] = (rows[10][0], 1.1, 1.1, 1.0, 1.0)  # bid == ask: locked, legal
    rows[30] = (rows[30][0], rows[30][1], rows[30][2], -1.0, 1.0)
    res = validate_ticks(ticks(rows))
    assert reasons_of(res) == {rows[30][0]: "bad_volume"}


def test_exact_duplicate_keeps_the_first_copy():
    rows = clean(50)
    rows.insert(21, rows[20])  # same five fields
    near = (
        rows[30][0],
        rows[30][1],
        rows[30][2],
        2.0,
        1.5,
    )  # same ts, other volume: not a duplicate
    rows.insert(31, near)
    res = validate_ticks(ticks(rows))
    assert res.counts["duplicate"] == 1 and res.quarantined.num_rows == 1
    assert res.kept.num_rows == 51


def test_out_of_order_quarantines_the_fewest_ticks():
    rows = clean(100)
    # one tick stamped an hour ahead: only it is out of order, not the 80 ticks after it
    rows[20] = (rows[20][0] + 3_600_000, rows[20][1], rows[20][2], 1.0, 1.0)
    # one tick stamped in the past
    rows[60] = (rows[60][0] - 5_000, rows[60][1], rows[60][2], 1.0, 1.0)
    res = validate_ticks(ticks(rows))
    assert reasons_of(res) == {rows[20][0]: "out_of_order", rows[60][0]: "out_of_order"}


def test_isolated_spike_is_quarantined_but_a_level_shift_is_not():
    rows = clean(400, seed=3)
    t, b, a = rows[100][:3]
    rows[100] = (t, b + 0.02, a + 0.02, 1.0, 1.0)  # 200 pips away for one tick
    for i in range(250, 400):  # a genuine 30-pip jump that stays
        t, b, a, bv, av = rows[i]
        rows[i] = (t, round(b + 0.003, 5), round(a + 0.003, 5), bv, av)
    res = validate_ticks(ticks(rows))
    assert reasons_of(res) == {rows[100][0]: "spike"}


def test_spike_rule_is_configurable():
    rows = clean(200, seed=4)
    t, b, a = rows[100][:3]
    rows[100] = (t, b + 0.0015, a + 0.0015, 1.0, 1.0)  # 15 pips
    assert validate_ticks(ticks(rows)).counts["spike"] == 1
    loose = ValidationConfig(spike=SpikeRule(min_bps=50.0))
    assert validate_ticks(ticks(rows), loose).counts["spike"] == 0
    off = ValidationConfig(check_spikes=False)
    assert validate_ticks(ticks(rows), off).counts["spike"] == 0


def test_first_matching_rule_wins():
    rows = clean(30)
    rows[5] = (rows[5][0], float("nan"), 1.0, -1.0, 1.0)  # bad price and bad volume
    rows[6] = (rows[6][0], 1.2, 1.1, -1.0, 1.0)  # crossed and bad volume
    res = validate_ticks(ticks(rows))
    assert reasons_of(res) == {rows[5][0]: "bad_price", rows[6][0]: "bad_volume"}


def test_real_dukascopy_day_is_clean(dukascopy_dir):
    day = dukascopy_dir / "EURUSD" / "2019" / "01" / "04"
    table = pa.concat_tables(
        decode_ticks(
            (day / f"{h:02d}h_ticks.bi5").read_bytes(), dt.datetime(2019, 2, 4, h), "EURUSD"
        )
        for h in range(24)
    )
    res = validate_ticks(table)
    assert res.kept.num_rows == 136_741 and res.quarantined.num_rows == 0


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(0, 300),
    seed=st.integers(0, 10_000),
    n_bad=st.integers(0, 40),
)
def test_conservation_per_reason(n, seed, n_bad):
    rng = np.random.default_rng(seed)
    rows = clean(n, seed)
    for _ in range(n_bad if n else 0):
        i = int(rng.integers(0, len(rows)))
        t, b, a, bv, av = rows[i]
        kind = int(rng.integers(0, 5))
        if kind == 0:
            rows[i] = (t, float("nan"), a, bv, av)
        elif kind == 1:
            rows[i] = (t, a + 1e-4, a, bv, av)
        elif kind == 2:
            rows.insert(i, rows[i])
        elif kind == 3:
            rows[i] = (t - int(rng.integers(1, 100_000)), b, a, bv, av)
        else:
            rows[i] = (t, b * 1.05, a * 1.05, bv, av)
    table = ticks(rows)
    res = validate_ticks(table)
    assert res.kept.num_rows + res.quarantined.num_rows == table.num_rows
    assert count_reasons(res.quarantined) == {r: res.counts[r] for r in REASONS}
    assert sum(res.counts[r] for r in REASONS) == res.quarantined.num_rows
    kept_ts = res.kept.column("ts").cast(pa.int64()).to_numpy()
    assert np.all(np.diff(kept_ts) >= 0)

    # nothing invented: every kept and quarantined row is an input row
    def as_rows(t: pa.Table) -> list[tuple[str, ...]]:
        return sorted(tuple(map(repr, r.values())) for r in t.select(TICK_SCHEMA.names).to_pylist())

    assert sorted(as_rows(res.kept) + as_rows(res.quarantined.drop_columns(["reason"]))) == as_rows(
        table
    )


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 50), max_size=60))
def test_longest_nondecreasing_is_longest(values):
    arr = np.asarray(values, dtype=np.int64)
    keep = _longest_nondecreasing(arr)
    kept = arr[keep]
    assert np.all(np.diff(kept) >= 0)
    # O(n^2) reference length
    best = [1] * len(values)
    for i in range(len(values)):
        for j in range(i):
            if values[j] <= values[i]:
                best[i] = max(best[i], best[j] + 1)
    assert keep.sum() == (max(best) if values else 0)
