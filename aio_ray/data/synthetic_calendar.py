"""The synthetic generator's calendar: the days it covers and the FX week (DST-aware).

The FX week opens Sunday and closes Friday at 17:00 New York time. Times are UTC epoch
milliseconds; New York hours are local clock hours 0..23.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

import numpy as np

from aio_ray.errors import AioError

__all__ = [
    "EPOCH",
    "LAST_DAY",
    "MS_PER_DAY",
    "MS_PER_HOUR",
    "NEW_YORK",
    "TRADING_DAYS_PER_YEAR",
    "TRADING_MINUTES_PER_YEAR",
    "WEEK_CLOSE_NY_HOUR",
    "SyntheticError",
    "hour_layout",
    "is_market_open",
    "ny_offset_hours",
]


class SyntheticError(AioError, ValueError):
    """An argument of the synthetic generator is invalid (names the argument and value)."""


EPOCH = dt.date(1970, 1, 1)
"""First day that can be generated; the mid at 00:00 UTC of this day is ``start_price``."""
LAST_DAY = dt.date(2099, 12, 31)
"""Last day that can be generated."""
NEW_YORK = zoneinfo.ZoneInfo("America/New_York")
WEEK_CLOSE_NY_HOUR = 17
"""The FX week opens Sunday and closes Friday at 17:00 New York time; also the daily rollover."""
TRADING_DAYS_PER_YEAR = 260
"""Annualization: five trading days a week, 52 weeks."""
TRADING_MINUTES_PER_YEAR = TRADING_DAYS_PER_YEAR * 1440
"""Minutes of a trading year (374,400): the clock that scales the planted edge."""

MS_PER_DAY = 86_400_000
MS_PER_HOUR = 3_600_000


def ny_offset_hours(day: dt.date) -> int:
    """New York's UTC offset, hours, during the open hours of UTC day ``day``.

    US clocks change on a Sunday at 02:00 local time, while the market is closed, so one
    offset (the one at 23:00 UTC) holds for every open hour of a UTC day.
    """
    t = dt.datetime(day.year, day.month, day.day, 23, tzinfo=dt.UTC).astimezone(NEW_YORK)
    off = t.utcoffset()
    assert off is not None
    return int(off.total_seconds()) // 3600


def hour_layout(day: dt.date) -> tuple[np.ndarray, np.ndarray, int]:
    """For the 24 UTC hours of ``day``: New York hour, whether the market is open, offset."""
    off = ny_offset_hours(day)
    local = np.arange(24) + off  # New York hour counted from 00:00 of the UTC date
    ny_hour = local % 24
    ny_weekday = (day.weekday() + np.floor_divide(local, 24)) % 7  # Monday = 0
    closed = (
        (ny_weekday == 5)
        | ((ny_weekday == 4) & (ny_hour >= WEEK_CLOSE_NY_HOUR))
        | ((ny_weekday == 6) & (ny_hour < WEEK_CLOSE_NY_HOUR))
    )
    return ny_hour, ~closed, off


def is_market_open(ts_ms: np.ndarray) -> np.ndarray:
    """Whether the FX market is open at each UTC epoch millisecond (Sun 17:00 - Fri 17:00 NY).

    Parameters
    ----------
    ts_ms : int64 array, milliseconds since 1970-01-01 UTC.

    Returns
    -------
    bool array of the same shape.
    """
    ts_ms = np.asarray(ts_ms, dtype=np.int64)
    out = np.zeros(ts_ms.shape, dtype=bool)
    day_idx = np.floor_divide(ts_ms, MS_PER_DAY)
    for d in np.unique(day_idx):
        sel = day_idx == d
        _, open_h, _ = hour_layout(EPOCH + dt.timedelta(days=int(d)))
        out[sel] = open_h[(ts_ms[sel] - d * MS_PER_DAY) // MS_PER_HOUR]
    return out
