"""Oracle: our 1-minute bid bars from the real ticks of 2019-02-04 against Dukascopy's own
1-minute BID candles of that day."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from aio_ray.bars import bars_from_ticks
from aio_ray.data.dukascopy import candle_path, decode_candles, decode_ticks, hour_path

pytestmark = pytest.mark.shared

DAY = dt.date(2019, 2, 4)


def day_ticks(root: Path, day: dt.date) -> pa.Table:
    hours = [dt.datetime(day.year, day.month, day.day, h) for h in range(24)]
    return pa.concat_tables(
        [
            decode_ticks(
                (root / hour_path("EURUSD", h)).read_bytes(), h, "EURUSD", hour_path("EURUSD", h)
            )
            for h in hours
        ]
    )


@pytest.fixture(scope="module")
def ticks(dukascopy_dir: Path) -> pa.Table:
    return day_ticks(dukascopy_dir, DAY)


@pytest.fixture(scope="module")
def candles(dukascopy_dir: Path) -> pl.DataFrame:
    raw = (dukascopy_dir / candle_path("EURUSD", DAY)).read_bytes()
    return pl.from_arrow(decode_candles(raw, DAY, "EURUSD"))  # type: ignore[return-value]


def test_bid_bars_equal_dukascopy_minute_candles_in_points(
    ticks: pa.Table, candles: pl.DataFrame
) -> None:
    bars = pl.from_arrow(bars_from_ticks(ticks, ["1m"])["1m"])
    assert candles.height == 1440
    joined = candles.join(bars, on="ts", how="inner")
    assert joined.height == bars.height  # every bar we emit has a candle
    for f in ("open", "high", "low", "close"):
        ours = (joined[f"bid_{f}"] * 1e5).round().cast(pl.Int64)
        mismatched = joined.filter(ours != joined[f"{f}_points"])
        assert mismatched.height == 0, f"bid {f} differs on {mismatched['ts'].to_list()[:5]}"
    # Dukascopy's candle volume is the bid volume summed in float32.
    rel = ((joined["bid_volume"] - joined["volume"]).abs() / joined["volume"]).max()
    assert rel < 2e-7


def test_candle_minutes_without_ticks(ticks: pa.Table, candles: pl.DataFrame) -> None:
    """Dukascopy writes a candle for every minute of the day and fills a minute without ticks
    flat at the previous close; we emit no bar for such a minute. On this Monday every one of
    the 1,440 minutes has ticks, so both agree on all of them."""
    bars = pl.from_arrow(bars_from_ticks(ticks, ["1m"])["1m"])
    tick_minutes = pc.unique(pc.floor_temporal(ticks.column("ts"), unit="minute")).to_pylist()
    no_tick = candles.filter(~pl.col("ts").is_in(tick_minutes))
    assert no_tick.height == 0
    assert bars.height == len(tick_minutes) == 1440
    # Remove the ticks of one minute: its bar disappears, the neighbours are untouched.
    gap = dt.datetime(2019, 2, 4, 12, 34, tzinfo=dt.UTC)
    in_gap = pc.equal(
        pc.floor_temporal(ticks.column("ts"), unit="minute"),
        pa.scalar(gap, ticks.column("ts").type),
    )
    holed = pl.from_arrow(bars_from_ticks(ticks.filter(pc.invert(in_gap)), ["1m"])["1m"])
    assert holed.height == 1439 and gap not in holed["ts"].to_list()
    assert holed.equals(bars.filter(pl.col("ts") != gap))


def test_day_bar_of_the_real_day_matches_its_ticks(ticks: pa.Table) -> None:
    bars = bars_from_ticks(ticks, ["1h", "1d"])
    day = bars["1d"].to_pylist()
    assert len(day) == 1 and day[0]["ticks"] == ticks.num_rows
    assert day[0]["bid_open"] == ticks.column("bid")[0].as_py()
    assert day[0]["bid_close"] == ticks.column("bid")[-1].as_py()
    assert day[0]["ask_high"] == pc.max(ticks.column("ask")).as_py()
    assert day[0]["bid_low"] == pc.min(ticks.column("bid")).as_py()
    assert bars["1h"].num_rows == 24
