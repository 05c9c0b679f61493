"""Parquet/CSV tick files: round trips of real ticks through renamed columns and every time
encoding, and each kind of bad input failing with the right error naming file and place."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aio_ray.data.dukascopy import decode_ticks, hour_path
from aio_ray.data.files import ColumnMapping, read_tick_file
from aio_ray.errors import AioError, ConfigError, CorruptFileError, SchemaError, SourceError
from aio_ray.schema import TICK_SCHEMA

RENAMED = ColumnMapping(
    ts="Time (UTC)", bid="Bid", ask="Ask", bid_volume="BidVolume", ask_volume="AskVolume"
)
OTHER_NAMES = {
    "ts": "Time (UTC)",
    "bid": "Bid",
    "ask": "Ask",
    "bid_volume": "BidVolume",
    "ask_volume": "AskVolume",
}


@pytest.fixture(scope="module")
def real(dukascopy_dir: Path) -> pa.Table:
    """Two real hours of EUR/USD ticks (2019-02-04 14:00-16:00 UTC, ~21,000 ticks)."""
    hours = []
    for h in (14, 15):
        start = dt.datetime(2019, 2, 4, h)
        f = dukascopy_dir / hour_path("EURUSD", start)
        hours.append(decode_ticks(f.read_bytes(), start, "EURUSD", str(f)))
    return pa.concat_tables(hours).combine_chunks()


def ms(t: pa.Table) -> np.ndarray:
    return t["ts"].cast(pa.int64()).to_numpy()


def renamed(t: pa.Table, ts: pa.Array | None = None) -> pa.Table:
    """``t`` with the file's own column names, an extra column, and ``ts`` replaced."""
    cols = {OTHER_NAMES[n]: t[n] for n in t.column_names}
    if ts is not None:
        cols["Time (UTC)"] = ts
    cols["comment"] = pa.array(["x"] * len(t))
    return pa.table(cols)


def write_csv(path: Path, header: list[str], rows, delimiter: str = ",") -> Path:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, delimiter=delimiter)
        w.writerow(header)
        w.writerows(rows)
    return path


def iso(ms_: int, style: str) -> str:
    t = dt.datetime.fromtimestamp(ms_ / 1000, dt.UTC)
    if style == "iso_z":
        return t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    if style == "iso_naive":
        return t.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    if style == "iso_offset":  # the same instant written in UTC+01:00
        return (t + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+01:00"
    raise ValueError(style)


# --------------------------------------------------------------------------------- Parquet


@pytest.mark.shared
def test_parquet_with_renamed_columns_and_epoch_ms_round_trips(real, tmp_path) -> None:
    f = tmp_path / "ticks.parquet"
    pq.write_table(renamed(real, real["ts"].cast(pa.int64())), f)
    got = read_tick_file(f, RENAMED)
    assert got.schema.equals(TICK_SCHEMA)
    assert got.equals(real)


@pytest.mark.shared
@pytest.mark.parametrize(
    "ts_type",
    [pa.timestamp("ns", tz="UTC"), pa.timestamp("us"), pa.timestamp("ms", tz="Europe/Berlin")],
    ids=str,
)
def test_parquet_timestamp_columns_round_trip(real, tmp_path, ts_type) -> None:
    f = tmp_path / "ticks.pq"
    pq.write_table(renamed(real, real["ts"].cast(ts_type)), f)
    assert read_tick_file(f, RENAMED).equals(real)


@pytest.mark.shared
def test_parquet_epoch_ns_integers_are_floored_to_ms(real, tmp_path) -> None:
    f = tmp_path / "ticks.data"  # no known suffix: recognised by its magic bytes
    ns = real["ts"].cast(pa.int64()).to_numpy() * 1_000_000 + 999_999
    pq.write_table(renamed(real, pa.array(ns)), f)
    mapping = ColumnMapping(**{**OTHER_NAMES, "ts_unit": "ns"})
    assert read_tick_file(f, mapping).equals(real)


@pytest.mark.shared
def test_parquet_missing_column_names_file_and_column(real, tmp_path) -> None:
    f = tmp_path / "no_ask.parquet"
    pq.write_table(renamed(real).drop_columns(["Ask"]), f)
    with pytest.raises(SchemaError) as e:
        read_tick_file(f, RENAMED)
    assert e.value.source == str(f)
    assert "'Ask' (for ask)" in str(e.value) and "no_ask.parquet" in str(e.value)


@pytest.mark.shared
def test_parquet_string_prices_name_the_column(real, tmp_path) -> None:
    t = renamed(real, real["ts"].cast(pa.int64()))
    t = t.set_column(t.column_names.index("Bid"), "Bid", t["Bid"].cast(pa.string()))
    f = tmp_path / "string_bid.parquet"
    pq.write_table(t, f)
    with pytest.raises(SchemaError, match=r"column 'Bid' \(bid\) has type string") as e:
        read_tick_file(f, RENAMED)
    assert str(f) in str(e.value)


@pytest.mark.shared
def test_truncated_parquet_is_corrupt(real, tmp_path) -> None:
    good = tmp_path / "good.parquet"
    pq.write_table(real, good)
    bad = tmp_path / "truncated.parquet"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CorruptFileError, match="truncated.parquet"):
        read_tick_file(bad)
    with pytest.raises(CorruptFileError, match="not a readable Parquet file"):
        read_tick_file(write_csv(tmp_path / "a.csv", ["ts"], [[1]]), fmt="parquet")


@pytest.mark.shared
def test_parquet_null_time_names_the_row(real, tmp_path) -> None:
    ts = real["ts"].cast(pa.int64()).to_pylist()
    ts[6] = None
    f = tmp_path / "null_ts.parquet"
    pq.write_table(real.set_column(0, "ts", pa.array(ts, pa.int64())), f)
    with pytest.raises(SchemaError, match=r"row 7: column 'ts' \(ts\) is empty"):
        read_tick_file(f)


# ------------------------------------------------------------------------------------- CSV


def csv_rows(real: pa.Table, style: str) -> list[list[str]]:
    t = ms(real)
    if style.startswith("iso"):
        times = [iso(int(x), style) for x in t]
    elif style == "epoch_ms":
        times = [str(x) for x in t]
    elif style == "epoch_us":
        times = [str(x * 1000 + 7) for x in t]
    elif style == "epoch_ns":
        times = [str(x * 1_000_000 + 123_456) for x in t]
    elif style == "epoch_s_decimal":
        times = [f"{x // 1000}.{x % 1000:03d}" for x in t]
    else:
        raise ValueError(style)
    cols = [real[n].to_pylist() for n in ("bid", "ask", "bid_volume", "ask_volume")]
    return [[tm, *(repr(float(c[i])) for c in cols), "note"] for i, tm in enumerate(times)]


@pytest.mark.shared
@pytest.mark.parametrize(
    "style, unit",
    [
        ("iso_z", "ms"),
        ("iso_naive", "ms"),
        ("iso_offset", "ms"),
        ("epoch_ms", "ms"),
        ("epoch_us", "us"),
        ("epoch_ns", "ns"),
        ("epoch_s_decimal", "s"),
    ],
)
def test_csv_with_renamed_columns_round_trips_every_time_encoding(
    real, tmp_path, style, unit
) -> None:
    header = ["Time (UTC)", "Bid", "Ask", "BidVolume", "AskVolume", "comment"]
    f = write_csv(tmp_path / f"{style}.csv", header, csv_rows(real, style))
    got = read_tick_file(f, ColumnMapping(**{**OTHER_NAMES, "ts_unit": unit}))
    assert got.schema.equals(TICK_SCHEMA)
    assert got.equals(real)


@pytest.mark.shared
def test_gzipped_semicolon_csv_with_mixed_iso_offsets_round_trips(real, tmp_path) -> None:
    rows = csv_rows(real, "iso_z")
    styles = ("iso_z", "iso_naive", "iso_offset")
    for i, row in enumerate(rows):  # naive, Z and +01:00 times in one column
        row[0] = iso(int(ms(real)[i]), styles[i % 3])
    header = ["Time (UTC)", "Bid", "Ask", "BidVolume", "AskVolume", "comment"]
    f = write_csv(tmp_path / "ticks.csv.gz", header, rows, delimiter=";")
    assert read_tick_file(f, RENAMED).equals(real)


def test_csv_without_volumes_and_with_empty_prices(tmp_path) -> None:
    f = write_csv(
        tmp_path / "bidask.csv",
        ["time", "bid", "ask"],
        [
            ["2019-02-04T00:00:00.001Z", "1.14500", "1.14503"],
            ["2019-02-04T00:00:00.105Z", "", "1.14504"],
        ],
    )
    got = read_tick_file(f, ColumnMapping(ts="time", bid_volume=None, ask_volume=None))
    assert got.schema.equals(TICK_SCHEMA)
    assert ms(got).tolist() == [1549238400001, 1549238400105]
    bid = got["bid"].to_numpy()
    assert bid[0] == 1.145 and np.isnan(bid[1])  # an empty price is for validation to quarantine
    assert got["ask"].to_pylist() == [1.14503, 1.14504]
    assert got["bid_volume"].to_pylist() == [0.0, 0.0]


def test_header_only_csv_gives_an_empty_table(tmp_path) -> None:
    f = write_csv(tmp_path / "none.csv", ["ts", "bid", "ask", "bid_volume", "ask_volume"], [])
    got = read_tick_file(f)
    assert got.num_rows == 0 and got.schema.equals(TICK_SCHEMA)


@pytest.mark.shared
def test_ragged_csv_row_names_the_line(real, tmp_path) -> None:
    rows = csv_rows(real, "epoch_ms")[:50]
    rows[30] = rows[30][:3]
    f = write_csv(
        tmp_path / "ragged.csv", ["ts", "bid", "ask", "bid_volume", "ask_volume", "c"], rows
    )
    with pytest.raises(CorruptFileError) as e:
        read_tick_file(f)
    msg = str(e.value)
    assert "ragged.csv" in msg and "line 32" in msg and "expected 6 fields" in msg


@pytest.mark.shared
def test_unparsable_price_late_in_the_file_names_line_and_column(real, tmp_path) -> None:
    rows = csv_rows(real, "epoch_ms")
    bad_line = len(rows) - 3 + 2  # header is line 1
    rows[-3][2] = "1.14x5"
    header = ["ts", "bid", "Ask price", "bid_volume", "ask_volume", "c"]
    f = write_csv(tmp_path / "bad_price.csv", header, rows)
    with pytest.raises(SchemaError) as e:
        read_tick_file(f, ColumnMapping(ask="Ask price"))  # never a partial table
    msg = str(e.value)
    assert f"line {bad_line}:" in msg and "'Ask price' (ask)" in msg and "'1.14x5'" in msg
    assert "bad_price.csv" in msg


@pytest.mark.shared
def test_unparsable_time_names_line_and_value(real, tmp_path) -> None:
    rows = csv_rows(real, "iso_z")[:100]
    rows[40][0] = "2019-02-30T00:00:00Z"
    f = write_csv(
        tmp_path / "bad_time.csv", ["ts", "bid", "ask", "bid_volume", "ask_volume", "c"], rows
    )
    with pytest.raises(
        SchemaError, match=r"line 42: column 'ts' \(ts\) value '2019-02-30T00:00:00Z'"
    ):
        read_tick_file(f)


def test_empty_time_names_the_line(tmp_path) -> None:
    f = write_csv(
        tmp_path / "t.csv",
        ["ts", "bid", "ask", "bid_volume", "ask_volume"],
        [[1, 1, 1, 1, 1], ["", 1, 1, 1, 1]],
    )
    with pytest.raises(SchemaError, match="line 3: column 'ts' .* is empty"):
        read_tick_file(f)


@pytest.mark.parametrize(
    "content, problem",
    [
        (b"", "empty"),
        (b"\n\n", "empty"),
        (bytes(range(256)) * 8, "NUL byte"),
        (b"ts,bid,ask\n\xff\xfe\xfa\x80 garbage\n", "not UTF-8"),
    ],
    ids=["zero-bytes", "blank-lines", "binary", "latin-garbage"],
)
def test_garbage_and_empty_csv_are_corrupt(tmp_path, content, problem) -> None:
    f = tmp_path / "garbage.csv"
    f.write_bytes(content)
    with pytest.raises(CorruptFileError, match=problem) as e:
        read_tick_file(f)
    assert e.value.source == str(f)


def test_random_bytes_with_a_tick_suffix_never_escape_as_other_errors(tmp_path) -> None:
    rng = np.random.default_rng(0)
    for i in range(20):
        f = tmp_path / f"r{i}.csv"
        f.write_bytes(rng.integers(1, 256, 2000, dtype=np.uint8).tobytes())  # no NUL bytes
        with pytest.raises((CorruptFileError, SchemaError)):
            read_tick_file(f)


def test_missing_path_and_directory_are_source_errors(tmp_path) -> None:
    with pytest.raises(SourceError, match="no such file") as e:
        read_tick_file(tmp_path / "nope.csv")
    assert type(e.value) is SourceError and e.value.source == str(tmp_path / "nope.csv")
    with pytest.raises(SourceError, match="not a regular file"):
        read_tick_file(tmp_path)


def test_duplicated_and_missing_csv_columns_are_schema_errors(tmp_path) -> None:
    f = write_csv(
        tmp_path / "dup.csv", ["ts", "bid", "bid", "ask", "bid_volume", "ask_volume"], [[1] * 6]
    )
    with pytest.raises(SchemaError, match="column 'bid' appears 2 times"):
        read_tick_file(f)
    f = write_csv(tmp_path / "mid.csv", ["ts", "mid"], [[1, 1.1]])
    with pytest.raises(SchemaError, match=r"missing column 'bid' \(for bid\), 'ask' \(for ask\)"):
        read_tick_file(f, ColumnMapping(bid_volume=None, ask_volume=None))


def test_bad_arguments_are_config_errors(tmp_path) -> None:
    with pytest.raises(ConfigError, match="ts_unit must be one of"):
        ColumnMapping(ts_unit="minutes")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="ColumnMapping.bid"):
        ColumnMapping(bid="")
    with pytest.raises(ConfigError, match="ColumnMapping.ts"):
        ColumnMapping(ts=None)  # type: ignore[arg-type]
    f = write_csv(tmp_path / "a.csv", ["ts"], [[1]])
    with pytest.raises(ConfigError, match="fmt must be"):
        read_tick_file(f, fmt="xlsx")  # type: ignore[arg-type]


# ----------------------------------------------------------------------- hostile names/values

HOSTILE = [
    'ts"; DROP TABLE ticks; --',
    "bid,with,commas",
    "ask\nwith newline",
    "\u6642\u9593 \U0001f4b6",
    "x" * 5000,
]


@pytest.mark.shared
def test_hostile_column_names_round_trip_in_csv_and_parquet(real, tmp_path) -> None:
    t = real.slice(0, 200)
    mapping = ColumnMapping(*HOSTILE)
    header = [*HOSTILE, "other"]
    rows = [
        [str(x), *(repr(float(v)) for v in vals), "o"]
        for x, *vals in zip(ms(t), *(t[n].to_pylist() for n in t.column_names[1:]))
    ]
    f = write_csv(tmp_path / "hostile.csv", header, rows)
    assert read_tick_file(f, mapping).equals(t)
    p = tmp_path / "hostile.parquet"
    pq.write_table(
        pa.Table.from_arrays([t["ts"].cast(pa.int64()), *t.columns[1:]], names=HOSTILE), p
    )
    assert read_tick_file(p, mapping).equals(t)


def test_hostile_values_give_short_clear_errors(tmp_path) -> None:
    header = ["ts", "bid", "ask", "bid_volume", "ask_volume"]
    for value in ["=cmd|' /C calc'!A0", "\x1b[31mred\x1b[0m", "9" * 100_000, "1e999999", "0x1F"]:
        f = write_csv(tmp_path / "v.csv", header, [[1, 1.1, 1.2, 1, 1], [value, 1.1, 1.2, 1, 1]])
        with pytest.raises(SchemaError) as e:
            read_tick_file(f)
        assert "line 3" in str(e.value) and len(str(e.value)) < 600
        g = write_csv(tmp_path / "p.csv", header, [[1, 1.1, 1.2, 1, 1], [2, value, 1.2, 1, 1]])
        try:
            got = read_tick_file(g)  # some of these are numbers to Arrow: then they are read
            assert got.num_rows == 2
        except SchemaError as exc:
            assert "line 3" in str(exc) and "'bid' (bid)" in str(exc) and len(str(exc)) < 600


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    names=st.lists(st.text(min_size=1, max_size=20), min_size=5, max_size=5, unique=True),
    value=st.text(max_size=30),
)
def test_any_names_and_any_cell_text_raise_only_aio_errors(tmp_path, names, value) -> None:
    p = tmp_path / "h.parquet"
    t = pa.Table.from_arrays(
        [
            pa.array([1, 2]),
            pa.array([1.1, 1.2]),
            pa.array([1.2, 1.3]),
            pa.array([1.0, 2.0]),
            pa.array([2.0, 1.0]),
        ],
        names=names,
    )
    pq.write_table(t, p)
    got = read_tick_file(p, ColumnMapping(*names))
    assert ms(got).tolist() == [1, 2] and got["ask"].to_pylist() == [1.2, 1.3]
    f = tmp_path / "h.csv"
    write_csv(f, ["ts", "bid", "ask", "bid_volume", "ask_volume"], [[1, value, 1.2, 1, 1]])
    try:
        got = read_tick_file(f)
    except AioError:
        return
    assert got.num_rows == 1 and got["ask"].to_pylist() == [1.2]
