"""build_bars through Ray Data on the two real days written as a tick dataset."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from aio_ray.bars import (
    bars_from_ticks,
    build_bars,
    build_bars_from_config,
    read_bars,
    read_manifest,
)
from aio_ray.config import BarsConfig
from aio_ray.data.dukascopy import decode_ticks, hour_path
from aio_ray.errors import BarsError
from aio_ray.schema import BAR_SCHEMA, QUARANTINE_SCHEMA

pytestmark = [pytest.mark.ray, pytest.mark.shared]

DAYS = (dt.date(2019, 2, 4), dt.date(2019, 2, 5))
ALL = ("1m", "5m", "15m", "30m", "1h", "4h", "1d")


def day_ticks(root: Path, day: dt.date) -> pa.Table:
    hours = [dt.datetime(day.year, day.month, day.day, h) for h in range(24)]
    return pa.concat_tables(
        [decode_ticks((root / hour_path("EURUSD", h)).read_bytes(), h, "EURUSD") for h in hours]
    )


def write_day(ticks_dir: Path, symbol: str, day: str, table: pa.Table) -> Path:
    path = ticks_dir / f"symbol={symbol}" / f"date={day}" / "part-0.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="zstd")
    return path


@pytest.fixture(scope="module")
def real_days(dukascopy_dir: Path) -> list[pa.Table]:
    return [day_ticks(dukascopy_dir, d) for d in DAYS]


@pytest.fixture(scope="module")
def tick_dataset(tmp_path_factory: pytest.TempPathFactory, real_days: list[pa.Table]) -> Path:
    """The two real days in the ingest layout, plus things that are not data: a quarantine
    dataset and a hidden half-written file (both would break the build if read)."""
    root = tmp_path_factory.mktemp("ticks")
    for day, table in zip(DAYS, real_days):
        write_day(root, "EURUSD", day.isoformat(), table)
    q = root / "_quarantine" / "symbol=EURUSD" / "date=2019-02-04"
    q.mkdir(parents=True)
    bad = real_days[0].slice(0, 3).append_column("reason", pa.array(["spike"] * 3))
    pq.write_table(bad.cast(QUARANTINE_SCHEMA), q / "part-0.parquet")
    (root / "symbol=EURUSD" / "date=2019-02-05" / ".part-1.parquet").write_bytes(b"partial")
    return root


def test_ray_build_equals_the_in_process_bars_new_york_close(
    ray_local, tick_dataset: Path, real_days: list[pa.Table], tmp_path: Path
) -> None:
    bars_dir = tmp_path / "bars"
    summary = build_bars(tick_dataset, bars_dir, ALL, "new_york_close")
    n = sum(t.num_rows for t in real_days)
    assert summary["ticks_total"] == n and summary["symbols"]["EURUSD"]["files"] == 2
    assert summary["nodes"] and summary["symbols"]["EURUSD"]["shards"] == 2

    expected = bars_from_ticks(pa.concat_tables(real_days), ALL, "new_york_close")
    for tf in ALL:
        got = read_bars(bars_dir, tf)
        assert got.equals(pl.from_arrow(expected[tf])), tf
        assert got["ticks"].sum() == n, f"conservation {tf}"
        assert summary["symbols"]["EURUSD"]["rows"][tf] == got.height

    manifest = read_manifest(bars_dir)
    assert manifest["daily_close"] == "new_york_close"
    assert manifest["ticks_total"] == n and manifest["symbols"] == ["EURUSD"]
    assert manifest["timeframes"] == list(ALL)
    assert manifest["rows"]["1d"] == {"EURUSD": 3}
    assert manifest["source_ticks_dir"] == str(tick_dataset.resolve())


def test_new_york_close_day_bars_by_hand(
    ray_local, tick_dataset: Path, real_days: list[pa.Table], tmp_path: Path
) -> None:
    """In February New York is on EST (UTC-5): the days open at 22:00 UTC. The bar opening
    Monday 2019-02-04 22:00 UTC (17:00 NY) holds the ticks up to Tuesday 22:00 UTC, which come
    from both UTC-day files."""
    build_bars(tick_dataset, tmp_path, ["1d"], "new_york_close")
    days = read_bars(tmp_path, "1d")
    utc = dt.UTC
    opens = [
        dt.datetime(2019, 2, 3, 22, tzinfo=utc),
        dt.datetime(2019, 2, 4, 22, tzinfo=utc),
        dt.datetime(2019, 2, 5, 22, tzinfo=utc),
    ]
    assert days["ts"].to_list() == opens
    ticks = pa.concat_tables(real_days)
    for row, start in zip(days.iter_rows(named=True), opens):
        lo = pa.scalar(start, ticks.column("ts").type)
        hi = pa.scalar(start + dt.timedelta(days=1), ticks.column("ts").type)
        inside = ticks.filter(
            pc.and_(pc.greater_equal(ticks.column("ts"), lo), pc.less(ticks.column("ts"), hi))
        )
        mid = pc.divide(pc.add(inside.column("bid"), inside.column("ask")), 2)
        spread = pc.subtract(inside.column("ask"), inside.column("bid"))
        assert row["ticks"] == inside.num_rows
        assert row["bid_open"] == inside.column("bid")[0].as_py()
        assert row["ask_close"] == inside.column("ask")[-1].as_py()
        assert row["bid_high"] == pc.max(inside.column("bid")).as_py()
        assert row["ask_low"] == pc.min(inside.column("ask")).as_py()
        assert row["mid_high"] == pc.max(mid).as_py()
        assert row["spread_max"] == pc.max(spread).as_py()
        assert row["spread_mean"] == pytest.approx(pc.mean(spread).as_py(), abs=1e-12)
        assert row["bid_volume"] == pytest.approx(
            pc.sum(inside.column("bid_volume").cast(pa.float64())).as_py(), rel=1e-12
        )
    middle = days.row(1, named=True)
    assert middle["ticks"] > 100_000  # Monday evening + Tuesday: both files contributed


def test_ray_default_packing_equals_the_in_process_bars_utc(
    ray_local, tick_dataset: Path, real_days: list[pa.Table], tmp_path: Path
) -> None:
    summary = build_bars_from_config(
        tick_dataset, tmp_path, BarsConfig(timeframes=("1m", "4h", "1d")), packing="ray"
    )
    assert summary["daily_close"] == "utc"
    expected = bars_from_ticks(pa.concat_tables(real_days), ["1m", "4h", "1d"], "utc")
    for tf, table in expected.items():
        assert read_bars(tmp_path, tf).equals(pl.from_arrow(table)), tf
    assert read_bars(tmp_path, "1d")["ticks"].to_list() == [t.num_rows for t in real_days]


def test_rebuilding_a_symbol_replaces_its_bars_and_keeps_other_symbols(
    ray_local, tick_dataset: Path, tmp_path: Path
) -> None:
    from aio_ray.bars import bars_path, write_bars

    write_bars(tmp_path, "4h", "EURUSD", BAR_SCHEMA.empty_table())  # from an older build
    write_bars(tmp_path, "1m", "GBPUSD", BAR_SCHEMA.empty_table())  # another symbol
    summary = build_bars(tick_dataset, tmp_path, ["1h"])
    assert not bars_path(tmp_path, "4h", "EURUSD").exists()
    assert read_bars(tmp_path, "1h", "EURUSD")["ticks"].sum() == summary["ticks_total"]
    assert read_bars(tmp_path, "1m", "GBPUSD").height == 0
    manifest = read_manifest(tmp_path)
    assert manifest["rows"]["1h"] == {"EURUSD": 48}
    assert "4h" not in manifest["timeframes"]


def test_an_unsorted_tick_file_fails_naming_the_block(
    ray_local, real_days: list[pa.Table], tmp_path: Path
) -> None:
    day = real_days[0].slice(0, 1000)
    swapped = pa.concat_tables([day.slice(500, 10), day.slice(0, 500), day.slice(510)])
    write_day(tmp_path / "ticks", "EURUSD", "2019-02-04", swapped)
    with pytest.raises(
        BarsError, match="EURUSD: tick block starting 2019-02-04.*not sorted by ts at row 10"
    ):
        build_bars(tmp_path / "ticks", tmp_path / "bars", ["1m"])
    assert not (tmp_path / "bars" / "_manifest.json").exists()


# --- bad inputs that fail before any Ray work -----------------------------------------------


def test_empty_or_missing_tick_dataset_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(BarsError, match="does not exist"):
        build_bars(tmp_path / "nowhere", tmp_path / "bars", ["1m"])
    (tmp_path / "ticks" / "_quarantine" / "symbol=EURUSD").mkdir(parents=True)
    with pytest.raises(BarsError, match="no tick files"):
        build_bars(tmp_path / "ticks", tmp_path / "bars", ["1m"])
    write_day(
        tmp_path / "ticks",
        "EURUSD",
        "2019-02-09",
        QUARANTINE_SCHEMA.empty_table().drop_columns(["reason"]),
    )
    with pytest.raises(BarsError, match=r"tick files of \['EURUSD'\] hold no ticks"):
        build_bars(tmp_path / "ticks", tmp_path / "bars", ["1m"])
    assert not (tmp_path / "bars").exists()


def test_a_tick_file_with_the_wrong_schema_is_named(
    real_days: list[pa.Table], tmp_path: Path
) -> None:
    write_day(tmp_path, "EURUSD", "2019-02-04", real_days[0].slice(0, 100))
    bad = real_days[1].slice(0, 100)
    bad = bad.set_column(1, "bid", bad.column("bid").cast(pa.float32()))
    path = write_day(tmp_path, "EURUSD", "2019-02-05", bad)
    with pytest.raises(BarsError, match=f"{path}: tick column 'bid' is float, expected double"):
        build_bars(tmp_path, tmp_path / "bars", ["1m"])
    path.write_bytes(b"garbage")
    with pytest.raises(BarsError, match="cannot read tick file"):
        build_bars(tmp_path, tmp_path / "bars", ["1m"])


def test_unknown_timeframe_or_symbol_is_an_error(tick_dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(BarsError, match="unknown timeframe '45m'"):
        build_bars(tick_dataset, tmp_path, ["1m", "45m"])
    with pytest.raises(BarsError, match=r"no tick files for symbol\(s\) \['GBPUSD'\]"):
        build_bars(tick_dataset, tmp_path, ["1m"], symbols=["GBPUSD"])
    with pytest.raises(BarsError, match="daily_close"):
        build_bars(tick_dataset, tmp_path, ["1d"], "sydney")  # type: ignore[arg-type]
    with pytest.raises(BarsError, match="packing"):
        build_bars(tick_dataset, tmp_path, ["1d"], packing="random")  # type: ignore[arg-type]
    with pytest.raises(BarsError, match="files_per_shard"):
        build_bars(tick_dataset, tmp_path, ["1d"], files_per_shard=0)
    assert not any(tmp_path.iterdir())


def test_reading_a_timeframe_that_was_not_built(tmp_path: Path) -> None:
    from aio_ray.bars import write_bars

    write_bars(tmp_path, "1m", "EURUSD", BAR_SCHEMA.empty_table())
    with pytest.raises(BarsError, match="no 1h bars"):
        read_bars(tmp_path, "1h")
    assert read_bars(tmp_path, "1m").height == 0
    assert np.all(read_bars(tmp_path, "1m").columns == np.array(BAR_SCHEMA.names))
