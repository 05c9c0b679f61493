"""The bars directory: atomic files per timeframe and symbol, the manifest, read_bars errors."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aio_ray.bars import bars_from_ticks, bars_path, read_bars, read_manifest, write_bars
from aio_ray.bars.store import updated_manifest, write_manifest
from aio_ray.errors import BarsError
from aio_ray.schema import BAR_SCHEMA, TICK_SCHEMA, TS_TYPE


def some_bars(seed: int = 0) -> dict[str, pa.Table]:
    rng = np.random.default_rng(seed)
    n = 5_000
    ts = int(dt.datetime(2019, 2, 4, tzinfo=dt.UTC).timestamp() * 1000) + np.cumsum(
        rng.integers(0, 3_000, n)
    )
    bid = 1.1 + np.cumsum(rng.integers(-2, 3, n)) / 1e5
    ticks = pa.Table.from_arrays(
        [
            pa.array(ts).cast(TS_TYPE),
            pa.array(bid),
            pa.array(bid + 2e-5),
            pa.array(np.ones(n, np.float32)),
            pa.array(np.ones(n, np.float32)),
        ],
        schema=TICK_SCHEMA,
    )
    return bars_from_ticks(ticks, ["1m", "1h"])


def test_write_then_read_round_trips_every_value(tmp_path: Path) -> None:
    bars = some_bars()
    for tf, table in bars.items():
        path = write_bars(tmp_path, tf, "eurusd", table)
        assert path == tmp_path / f"timeframe={tf}" / "symbol=EURUSD" / "part-0.parquet"
        ts_col = pq.read_metadata(path).row_group(0).column(0)
        assert ts_col.compression == "LZ4"
        assert "DELTA_BINARY_PACKED" in ts_col.encodings  # the BARS_PARQUET_OPTIONS encoding
    for tf, table in bars.items():
        df = read_bars(tmp_path, tf)
        assert isinstance(df, pl.DataFrame)
        assert df.columns == BAR_SCHEMA.names
        assert df.equals(pl.from_arrow(table))
        assert df.equals(read_bars(tmp_path, tf, "EURUSD"))
    # No temporary files are left beside the data.
    leftovers = [p.name for p in tmp_path.rglob("*") if p.is_file() and p.name != "part-0.parquet"]
    assert leftovers == []


def test_rows_are_written_sorted_by_time(tmp_path: Path) -> None:
    table = some_bars()["1m"]
    shuffled = table.take(np.random.default_rng(1).permutation(table.num_rows))
    write_bars(tmp_path, "1m", "EURUSD", shuffled)
    assert read_bars(tmp_path, "1m").equals(pl.from_arrow(table))


def test_write_refuses_a_table_without_the_bar_schema_and_keeps_the_old_file(
    tmp_path: Path,
) -> None:
    table = some_bars()["1h"]
    write_bars(tmp_path, "1h", "EURUSD", table)
    with pytest.raises(BarsError, match="bar schema"):
        write_bars(tmp_path, "1h", "EURUSD", table.drop_columns(["spread_max"]))
    assert read_bars(tmp_path, "1h").height == table.num_rows


def test_read_bars_errors_name_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(BarsError, match="does not exist"):
        read_bars(tmp_path / "nowhere", "1m")
    bars = some_bars()
    write_bars(tmp_path, "1m", "EURUSD", bars["1m"])
    with pytest.raises(BarsError, match=r"no 4h bars; present: \['timeframe=1m'\]"):
        read_bars(tmp_path, "4h")
    with pytest.raises(BarsError, match=r"no 1m bars for symbol GBPUSD; present: \['EURUSD'\]"):
        read_bars(tmp_path, "1m", "GBPUSD")
    with pytest.raises(BarsError, match="unknown timeframe"):
        read_bars(tmp_path, "7m")
    write_bars(tmp_path, "1m", "GBPUSD", some_bars(1)["1m"])
    with pytest.raises(BarsError, match="several symbols"):
        read_bars(tmp_path, "1m")
    assert read_bars(tmp_path, "1m", "gbpusd").height == some_bars(1)["1m"].num_rows


def test_read_bars_rejects_a_file_with_the_wrong_schema(tmp_path: Path) -> None:
    path = bars_path(tmp_path, "15m", "EURUSD")
    path.parent.mkdir(parents=True)
    pq.write_table(pa.table({"ts": [1, 2], "close": [1.0, 1.1]}), path)
    with pytest.raises(
        BarsError, match=r"not a bars file: column 'ts' is int64, .*missing column 'bid_open'"
    ):
        read_bars(tmp_path, "15m")
    path.write_bytes(b"not parquet at all")
    with pytest.raises(BarsError, match="cannot read bars file"):
        read_bars(tmp_path, "15m")


def test_read_bars_accepts_a_polars_file_with_nullable_columns_and_other_units(
    tmp_path: Path,
) -> None:
    table = some_bars()["1h"]
    df = pl.from_arrow(table).with_columns(
        pl.col("ts").cast(pl.Datetime("us", "UTC")), pl.col("ticks").cast(pl.Int32)
    )
    path = bars_path(tmp_path, "1h", "EURUSD")
    path.parent.mkdir(parents=True)
    df.select(list(reversed(df.columns))).write_parquet(path)  # nullable fields, other order
    assert pq.read_schema(path).field("bid_open").nullable
    got = read_bars(tmp_path, "1h")
    assert got.equals(pl.from_arrow(table))
    assert got.schema == pl.from_arrow(table).schema


def test_read_bars_names_the_file_and_column_of_a_null(tmp_path: Path) -> None:
    df = pl.from_arrow(some_bars()["1h"]).with_columns(
        ask_close=pl.when(pl.int_range(pl.len()) == 1).then(None).otherwise(pl.col("ask_close"))
    )
    path = bars_path(tmp_path, "1h", "EURUSD")
    path.parent.mkdir(parents=True)
    df.write_parquet(path)
    with pytest.raises(
        BarsError, match=r"part-0.parquet: column 'ask_close' has 1 null value\(s\), first at row 1"
    ):
        read_bars(tmp_path, "1h")


def test_read_bars_says_which_folder_level_is_missing(tmp_path: Path) -> None:
    table = some_bars()["1h"]
    (tmp_path / "timeframe=1h").mkdir()
    pq.write_table(table, tmp_path / "timeframe=1h" / "part-0.parquet")  # no symbol= level
    with pytest.raises(
        BarsError, match=r"no symbol=EURUSD folder under timeframe=1h .*found: \['part-0.parquet'\]"
    ):
        read_bars(tmp_path, "1h", "EURUSD")
    with pytest.raises(BarsError, match=r"no symbol=SYMBOL folder under timeframe=1h"):
        read_bars(tmp_path, "1h")
    (tmp_path / "timeframe=1h" / "symbol=EURUSD").mkdir()
    pq.write_table(table, tmp_path / "timeframe=1h" / "symbol=EURUSD" / "bars.parquet")
    with pytest.raises(
        BarsError,
        match=r"no part-0.parquet in timeframe=1h/symbol=EURUSD; found: \['bars.parquet'\]",
    ):
        read_bars(tmp_path, "1h", "EURUSD")


def test_manifest_keeps_other_symbols_and_sums_ticks(tmp_path: Path) -> None:
    with pytest.raises(BarsError, match="no bars manifest"):
        read_manifest(tmp_path)
    first = updated_manifest(
        tmp_path,
        symbols={"EURUSD": {"ticks": 10, "rows": {"1m": 3, "1d": 1}}},
        daily_close="utc",
        source_ticks_dir="/t",
    )
    write_manifest(tmp_path, first)
    second = updated_manifest(
        tmp_path,
        symbols={"GBPUSD": {"ticks": 5, "rows": {"1m": 2}}},
        daily_close="new_york_close",
        source_ticks_dir="/u",
    )
    write_manifest(tmp_path, second)
    m = read_manifest(tmp_path)
    assert m["symbols"] == ["EURUSD", "GBPUSD"]
    assert m["timeframes"] == ["1m", "1d"]
    assert m["rows"] == {"1m": {"EURUSD": 3, "GBPUSD": 2}, "1d": {"EURUSD": 1}}
    assert m["ticks_total"] == 15
    assert m["daily_close"] == "new_york_close"
    assert m["entries"]["EURUSD"]["daily_close"] == "utc"
    assert json.loads((tmp_path / "_manifest.json").read_text()) == m


def test_bars_files_of_another_codec_read_the_same(tmp_path: Path) -> None:
    """Bars written before the lz4 encoding (zstd, default encodings) read unchanged."""
    table = some_bars()["1m"]
    path = write_bars(tmp_path, "1m", "EURUSD", table)
    pq.write_table(table, path, compression="zstd")
    assert pq.read_metadata(path).row_group(0).column(0).compression == "ZSTD"
    assert read_bars(tmp_path, "1m", "EURUSD").equals(pl.from_arrow(table))
