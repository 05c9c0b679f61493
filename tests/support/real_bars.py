"""Real EUR/USD 1-minute mid bars, built from the shared Dukascopy hour files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pyarrow as pa

from aio_ray.data.dukascopy import decode_ticks

__all__ = ["real_mid_bars"]


def real_mid_bars(root: Path) -> pl.DataFrame:
    """1-minute mid bars of 2019-02-04 and 2019-02-05 from the real Dukascopy hour files."""
    tables = []
    for day in (4, 5):
        for hour in range(24):
            path = root / "EURUSD" / "2019" / "01" / f"{day:02d}" / f"{hour:02d}h_ticks.bi5"
            start = dt.datetime(2019, 2, day, hour, tzinfo=dt.UTC)
            tables.append(decode_ticks(path.read_bytes(), start, "EURUSD", str(path)))
    ticks = pl.from_arrow(pa.concat_tables(tables))
    assert isinstance(ticks, pl.DataFrame)
    mid = pl.col("mid")
    return (
        ticks.sort("ts")
        .with_columns(mid=(pl.col("bid") + pl.col("ask")) / 2)
        .group_by_dynamic("ts", every="1m")
        .agg(
            mid_open=mid.first(),
            mid_high=mid.max(),
            mid_low=mid.min(),
            mid_close=mid.last(),
        )
    )
