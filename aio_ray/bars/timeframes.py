"""Bar timeframes: parsing, ordering and how a time is labelled with its bar's open time.

Intraday bars (``1m`` ... ``12h``) and ``1d`` bars with ``daily_close="utc"`` are aligned to
multiples of their length since the Unix epoch (UTC), so a 4h bar opens at 00, 04, 08 ... UTC.
With ``daily_close="new_york_close"`` a day runs from 17:00 to 17:00 America/New_York (the FX
convention, daylight saving aware) and the bar is labelled by its open time in UTC: 22:00 UTC
of the previous day in winter (EST), 21:00 UTC in summer (EDT).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

import numpy as np

from aio_ray.errors import BarsError

__all__ = [
    "DAILY_CLOSES",
    "DAY_MS",
    "MINUTE_MS",
    "SUPPORTED_TIMEFRAMES",
    "DailyClose",
    "Timeframe",
    "bar_labels",
    "check_daily_close",
    "infer_bar_ms",
    "new_york_day_opens",
    "parse_timeframe",
    "parse_timeframes",
    "timeframe_from_minutes",
]

DailyClose = Literal["utc", "new_york_close"]
DAILY_CLOSES: tuple[str, ...] = ("utc", "new_york_close")

MINUTE_MS = 60_000
DAY_MS = 86_400_000

_NEW_YORK = ZoneInfo("America/New_York")
_NY_CLOSE_HOUR = 17

# Every supported length divides a day, so no bar of any timeframe crosses a UTC day or a
# 17:00 New York boundary (New York is a whole number of hours from UTC).
_SUPPORTED_MINUTES: dict[str, int] = {
    "1m": 1, "2m": 2, "3m": 3, "5m": 5, "10m": 10, "15m": 15, "20m": 20, "30m": 30,
    "1h": 60, "2h": 120, "3h": 180, "4h": 240, "6h": 360, "8h": 480, "12h": 720,
    "1d": 1440,
}  # fmt: skip
SUPPORTED_TIMEFRAMES: tuple[str, ...] = tuple(_SUPPORTED_MINUTES)


@dataclass(frozen=True, order=True)
class Timeframe:
    """A bar length. Ordered by length; ``name`` is canonical (``"15m"``, ``"4h"``, ``"1d"``).

    Attributes
    ----------
    ms
        Length of a bar in milliseconds (a ``new_york_close`` day may last 23 or 25 hours
        around a daylight saving change; ``ms`` is then nominal).
    name
        Canonical name, as used in directory names (``timeframe=15m``).
    """

    ms: int
    name: str

    @property
    def minutes(self) -> int:
        """Nominal length in minutes."""
        return self.ms // MINUTE_MS

    @property
    def is_daily(self) -> bool:
        """True for ``1d``, whose cut depends on ``daily_close``."""
        return self.ms == DAY_MS

    def __str__(self) -> str:
        return self.name


def parse_timeframe(text: str | Timeframe) -> Timeframe:
    """Parse ``"1m"``, ``"15m"``, ``"4h"``, ``"1d"`` (case and surrounding spaces ignored).

    Raises
    ------
    BarsError
        For anything not in :data:`SUPPORTED_TIMEFRAMES`, naming the accepted values.
    """
    if isinstance(text, Timeframe):
        return text
    if not isinstance(text, str):
        raise BarsError(
            f"timeframe must be a string such as '15m', got {type(text).__name__} {text!r}"
        )
    key = text.strip().lower()
    minutes = _SUPPORTED_MINUTES.get(key)
    if minutes is None:
        raise BarsError(f"unknown timeframe {text!r}; accepted: {', '.join(SUPPORTED_TIMEFRAMES)}")
    return Timeframe(ms=minutes * MINUTE_MS, name=key)


def timeframe_from_minutes(minutes: int) -> Timeframe:
    """The supported timeframe of ``minutes`` nominal minutes (1440 -> ``1d``)."""
    for name, m in _SUPPORTED_MINUTES.items():
        if m == minutes:
            return Timeframe(ms=m * MINUTE_MS, name=name)
    raise BarsError(f"no supported timeframe lasts {minutes} minutes")


def parse_timeframes(items: Iterable[str | Timeframe]) -> tuple[Timeframe, ...]:
    """Parse several timeframes; duplicates dropped, result ordered from shortest to longest.

    Raises BarsError for an unknown name or an empty list.
    """
    if isinstance(items, str):
        items = [items]
    out = sorted({parse_timeframe(t) for t in items})
    if not out:
        raise BarsError("no timeframes given; accepted: " + ", ".join(SUPPORTED_TIMEFRAMES))
    return tuple(out)


def check_daily_close(daily_close: str) -> DailyClose:
    """Validate ``daily_close`` (``"utc"`` or ``"new_york_close"``); raise BarsError otherwise."""
    if daily_close not in DAILY_CLOSES:
        raise BarsError(f"daily_close must be one of {DAILY_CLOSES}, got {daily_close!r}")
    return daily_close  # type: ignore[return-value]


def new_york_day_opens(first_ms: int, last_ms: int) -> np.ndarray:
    """Open times (epoch ms, UTC) of the New York trading days covering ``[first_ms, last_ms]``.

    A trading day opens at 17:00 America/New_York; the result is sorted and starts at or before
    ``first_ms`` and its last element is at or before ``last_ms`` with the next open after it.
    """
    first = dt.datetime.fromtimestamp(first_ms / 1000, tz=dt.UTC).date() - dt.timedelta(days=2)
    last = dt.datetime.fromtimestamp(last_ms / 1000, tz=dt.UTC).date() + dt.timedelta(days=2)
    opens = []
    day = first
    while day <= last:
        local = dt.datetime(day.year, day.month, day.day, _NY_CLOSE_HOUR, tzinfo=_NEW_YORK)
        opens.append(int(local.timestamp()) * 1000)
        day += dt.timedelta(days=1)
    return np.asarray(opens, dtype=np.int64)


def bar_labels(times_ms: np.ndarray, tf: Timeframe, daily_close: DailyClose = "utc") -> np.ndarray:
    """Open time (epoch ms, UTC) of the ``tf`` bar that contains each time in ``times_ms``.

    ``times_ms`` is int64 epoch milliseconds (any order). Intraday and UTC-daily bars are
    epoch aligned; ``new_york_close`` daily bars open at 17:00 New York time.
    """
    t = np.asarray(times_ms, dtype=np.int64)
    if tf.is_daily and daily_close == "new_york_close":
        if t.size == 0:
            return t.copy()
        opens = new_york_day_opens(int(t.min()), int(t.max()))
        return opens[np.searchsorted(opens, t, side="right") - 1]
    return t - np.mod(t, tf.ms)


def infer_bar_ms(ts_ms: np.ndarray) -> int:
    """The bar duration (ms): the median of the positive gaps between consecutive ``ts``.

    The median ignores weekend and holiday gaps. Returns 60,000 (1m) when fewer than two
    bars are given.
    """
    ts = np.asarray(ts_ms, dtype=np.int64)
    gaps = np.diff(ts)
    gaps = gaps[gaps > 0]
    if gaps.size == 0:
        return 60_000
    return int(np.median(gaps))
