"""The Dukascopy decoder: the real EUR/USD files, bad inputs, an encode/decode property."""

from __future__ import annotations

import datetime as dt
import lzma
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aio_ray.data.dukascopy import (
    TICK_RECORD,
    candle_path,
    decode_candles,
    decode_ticks,
    hour_path,
    point_size,
)
from aio_ray.errors import CorruptFileError
from aio_ray.schema import TICK_SCHEMA

UTC = dt.UTC
MON = dt.date(2019, 2, 4)
TUE = dt.date(2019, 2, 5)


def _hour(day: dt.date, h: int) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, h, tzinfo=UTC)


def _decode_file(root: Path, day: dt.date, h: int) -> pa.Table:
    hour = _hour(day, h)
    file = root / hour_path("EURUSD", hour)
    return decode_ticks(file.read_bytes(), hour, "EURUSD", str(file))


def _ms(ts: dt.datetime) -> int:
    return int(ts.timestamp() * 1000)


# ----------------------------------------------------------------------------- layout


def test_hour_path_counts_months_from_zero() -> None:
    assert hour_path("eurusd", _hour(MON, 15)) == "EURUSD/2019/01/04/15h_ticks.bi5"
    assert hour_path("EURUSD", dt.datetime(2020, 12, 31, 23)) == "EURUSD/2020/11/31/23h_ticks.bi5"
    assert candle_path("EURUSD", MON) == "EURUSD/2019/01/04/BID_candles_min_1.bi5"


def test_point_size_is_five_decimals_except_jpy_like() -> None:
    assert point_size("EURUSD") == 1e-5
    assert point_size("USDJPY") == 1e-3


# ----------------------------------------------------------------------------- real files


@pytest.mark.shared
@pytest.mark.parametrize(("day", "total"), [(MON, 136_741), (TUE, 129_478)])
def test_real_day_record_counts(dukascopy_dir: Path, day: dt.date, total: int) -> None:
    counts = [_decode_file(dukascopy_dir, day, h).num_rows for h in range(24)]
    assert sum(counts) == total
    assert all(c > 0 for c in counts)


@pytest.mark.shared
@pytest.mark.parametrize(("h", "n"), [(0, 3_733), (15, 11_063), (23, 2_633)])
def test_real_hour_record_counts(dukascopy_dir: Path, h: int, n: int) -> None:
    assert _decode_file(dukascopy_dir, MON, h).num_rows == n


@pytest.mark.shared
def test_real_hour_first_and_last_tick(dukascopy_dir: Path) -> None:
    t = _decode_file(dukascopy_dir, MON, 15)
    assert t.schema == TICK_SCHEMA
    first = t.slice(0, 1).to_pylist()[0]
    assert _ms(first["ts"]) == _ms(dt.datetime(2019, 2, 4, 15, 0, 0, 64_000, tzinfo=UTC))
    assert first["ask"] == 1.14268 and first["bid"] == 1.14263
    assert first["ask_volume"] == pytest.approx(4.87, abs=1e-6)
    assert first["bid_volume"] == 1.0
    last = t.slice(t.num_rows - 1, 1).to_pylist()[0]
    assert _ms(last["ts"]) == _ms(dt.datetime(2019, 2, 4, 15, 59, 59, 777_000, tzinfo=UTC))
    assert last["ask"] == 1.14288 and last["bid"] == 1.14287
    assert last["ask_volume"] == 1.0 and last["bid_volume"] == 1.0


@pytest.mark.shared
def test_real_hour_ticks_stay_inside_their_hour_in_order(dukascopy_dir: Path) -> None:
    for day in (MON, TUE):
        for h in (0, 8, 15, 23):
            t = _decode_file(dukascopy_dir, day, h)
            ms = t.column("ts").cast(pa.int64()).to_numpy()
            start = _ms(_hour(day, h))
            assert ms.min() >= start and ms.max() < start + 3_600_000
            assert np.all(np.diff(ms) >= 0)
            bid = t.column("bid").to_numpy()
            ask = t.column("ask").to_numpy()
            assert np.all((bid > 1.0) & (bid < 1.3)) and np.all(ask >= bid)


@pytest.mark.shared
def test_real_candles(dukascopy_dir: Path) -> None:
    file = dukascopy_dir / candle_path("EURUSD", MON)
    c = decode_candles(file.read_bytes(), MON, "EURUSD", str(file))
    assert c.num_rows == 1_440
    ts = c.column("ts").cast(pa.int64()).to_numpy()
    assert ts[0] == _ms(_hour(MON, 0)) and np.all(np.diff(ts) == 60_000)
    row = c.slice(15 * 60, 1).to_pylist()[0]
    assert _ms(row["ts"]) == _ms(_hour(MON, 15))
    assert row["open_points"] == 114_263 and row["open"] == 1.14263
    # open, close, low, high order in the file: low/high must bound open/close.
    lo, hi = c.column("low_points").to_numpy(), c.column("high_points").to_numpy()
    op, cl = c.column("open_points").to_numpy(), c.column("close_points").to_numpy()
    assert np.all(lo <= np.minimum(op, cl)) and np.all(hi >= np.maximum(op, cl))


@pytest.mark.shared
def test_real_candle_open_matches_first_bid_of_the_minute(dukascopy_dir: Path) -> None:
    t = _decode_file(dukascopy_dir, MON, 15)
    ms = t.column("ts").cast(pa.int64()).to_numpy()
    first_in_minute = np.searchsorted(ms, _ms(_hour(MON, 15)))
    assert t.column("bid")[int(first_in_minute)].as_py() == 1.14263


# ----------------------------------------------------------------------------- bad inputs


@pytest.mark.shared
def test_truncated_lzma_is_corrupt_and_names_the_file(dukascopy_dir: Path) -> None:
    file = dukascopy_dir / hour_path("EURUSD", _hour(MON, 15))
    raw = file.read_bytes()
    with pytest.raises(CorruptFileError, match="LZMA") as info:
        decode_ticks(raw[: len(raw) // 2], _hour(MON, 15), "EURUSD", "EURUSD/2019/01/04/15h")
    assert info.value.source == "EURUSD/2019/01/04/15h"
    assert "EURUSD/2019/01/04/15h" in str(info.value)


def test_garbage_bytes_are_corrupt() -> None:
    with pytest.raises(CorruptFileError, match="where.bi5"):
        decode_ticks(b"not lzma at all", _hour(MON, 1), "EURUSD", "where.bi5")


def test_payload_not_a_multiple_of_the_record_is_corrupt() -> None:
    raw = lzma.compress(b"\x00" * 41, format=lzma.FORMAT_ALONE)
    with pytest.raises(CorruptFileError, match="20-byte record") as info:
        decode_ticks(raw, _hour(MON, 2), "EURUSD", "odd.bi5")
    assert "41" in str(info.value) and info.value.source == "odd.bi5"


def test_zero_bytes_is_an_empty_canonical_table() -> None:
    t = decode_ticks(b"", _hour(MON, 3), "EURUSD", "empty.bi5")
    assert t.num_rows == 0
    assert t.schema == TICK_SCHEMA


def test_aware_non_utc_hour_is_converted_not_relabelled() -> None:
    rec = np.zeros(1, dtype=TICK_RECORD)
    rec["ms"], rec["ask"], rec["bid"] = 5, 110_002, 110_000
    raw = lzma.compress(rec.tobytes(), format=lzma.FORMAT_ALONE)
    cet = dt.timezone(dt.timedelta(hours=1))
    t = decode_ticks(raw, dt.datetime(2019, 2, 4, 16, tzinfo=cet), "EURUSD")
    assert t.column("ts").cast(pa.int64())[0].as_py() == _ms(_hour(MON, 15)) + 5


# ----------------------------------------------------------------------------- property


_records = st.lists(
    st.tuples(
        st.integers(0, 3_599_999),
        st.integers(1, 2**31 - 1),
        st.integers(1, 2**31 - 1),
        st.floats(0, 1e6, width=32, allow_nan=False),
        st.floats(0, 1e6, width=32, allow_nan=False),
    ),
    max_size=200,
)


@settings(max_examples=60, deadline=None)
@given(records=_records, h=st.integers(0, 23), symbol=st.sampled_from(["EURUSD", "USDJPY"]))
def test_encoded_records_decode_back_exactly(
    records: list[tuple[int, int, int, float, float]], h: int, symbol: str
) -> None:
    rec = np.array(records, dtype=TICK_RECORD)
    raw = lzma.compress(rec.tobytes(), format=lzma.FORMAT_ALONE)
    hour = _hour(MON, h)
    t = decode_ticks(raw, hour, symbol, "prop.bi5")
    assert t.schema == TICK_SCHEMA
    assert t.num_rows == len(records)
    if not records:
        return
    scale = 1 / point_size(symbol)
    ms = t.column("ts").cast(pa.int64()).to_numpy()
    np.testing.assert_array_equal(ms, rec["ms"].astype(np.int64) + _ms(hour))
    for side in ("ask", "bid"):
        back = np.rint(t.column(side).to_numpy() * scale).astype(np.int64)
        np.testing.assert_array_equal(back, rec[side].astype(np.int64))
    for side in ("ask_volume", "bid_volume"):
        got = t.column(side).to_numpy()
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, rec[side].astype(np.float32))
