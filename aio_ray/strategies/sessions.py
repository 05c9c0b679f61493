"""FX trading days and rollovers at the 17:00 New York close (pure, vectorized).

The FX day ends at 17:00 America/New_York (daylight saving time included): the trading day
that a UTC instant belongs to is the New York calendar date of ``instant + 7 h``. So Sunday's
17:00 open starts Monday's trading day (there is no Sunday stub day), and Friday's 17:00 close
ends the week.

A *rollover* happens at each 17:00 New York close; a position held across it is charged (or
paid) the swap. The Wednesday rollover counts three times (spot value dates skip the weekend);
the Friday rollover once. All times are int64 UTC milliseconds.
"""

from __future__ import annotations

import numpy as np
import polars as pl

__all__ = ["DAY_MS", "period_keys", "rollover_weights", "swap_units", "trading_day_ms"]

DAY_MS = 86_400_000
_SHIFT_MS = 7 * 3_600_000  # 17:00 New York + 7 h = midnight of the next New York date


def trading_day_ms(ts_ms: np.ndarray) -> np.ndarray:
    """The trading day of each instant, as int64 UTC ms of 00:00 UTC of the day's date label.

    Labels are ordered like the days and unique per day, so they serve as period keys (e.g.
    daily returns); ``(label // DAY_MS + 3) % 7`` is the weekday (0 = Monday).
    """
    t = np.asarray(ts_ms, dtype=np.int64)
    if t.size == 0:
        return t.copy()
    s = pl.Series("ts", t).cast(pl.Datetime("ms", "UTC"))
    local = s.dt.convert_time_zone("America/New_York").dt.replace_time_zone(None)
    day = local.dt.offset_by(f"{_SHIFT_MS}ms").dt.date()
    return (day.cast(pl.Int64).to_numpy() * DAY_MS).astype(np.int64)


def rollover_weights(ts_ms: np.ndarray) -> np.ndarray:
    """Swap units charged at bar ``i`` for a position held from bar ``i - 1`` to bar ``i``.

    ``w[i]`` is the sum over the 17:00 New York rollovers in ``(ts[i-1], ts[i]]`` of 3 for a
    Wednesday close and 1 for any other weekday close (weekend days have no close); ``w[0] = 0``.
    Instants are bar open times (int64 UTC ms, increasing).
    """
    day = trading_day_ms(ts_ms) // DAY_MS  # days since the epoch, by trading day
    n = day.shape[0]
    w = np.zeros(n, dtype=np.int64)
    if n < 2:
        return w
    # weight of the close that ends trading day d: weekday(d) in Mon..Fri -> 1, Wed -> 3
    lo, hi = int(day.min()), int(day.max())
    days = np.arange(lo, hi + 1, dtype=np.int64)
    wd = (days + 3) % 7  # 1970-01-01 was a Thursday (weekday 3)
    per = np.where(wd == 2, 3, np.where(wd <= 4, 1, 0)).astype(np.int64)
    cum = np.concatenate(([0], np.cumsum(per)))  # cum[k] = weight of closes of days < lo + k
    # closes crossed between bar i-1 and bar i: those ending days day[i-1] .. day[i] - 1
    a = day[:-1] - lo
    b = day[1:] - lo
    w[1:] = np.where(b > a, cum[b] - cum[a], 0)
    return w


def period_keys(ts_ms: np.ndarray, period_ms: int) -> np.ndarray:
    """The period each instant's return belongs to, as int64 UTC ms: the trading day
    (:func:`trading_day_ms`) when ``period_ms`` is a day, else multiples of ``period_ms``
    since the epoch (e.g. hours)."""
    t = np.asarray(ts_ms, dtype=np.int64)
    if int(period_ms) == DAY_MS:
        return trading_day_ms(t)
    return t - np.mod(t, int(period_ms))


_HOUR_MS = 3_600_000


def swap_units(ts_ms: np.ndarray) -> np.ndarray:
    """:func:`rollover_weights` of ``ts_ms`` (int64 UTC ms, increasing) as float64, computed
    on the distinct UTC hours of the bars only: the 17:00 New York close (daylight saving time
    included) falls on a UTC hour, so every instant of one UTC hour belongs to the same trading
    day (60x fewer time-zone conversions on 1m bars).
    """
    hours = np.asarray(ts_ms, dtype=np.int64) // _HOUR_MS
    first = np.concatenate(([0], np.flatnonzero(np.diff(hours)) + 1))  # a new hour starts
    w = np.zeros(hours.shape[0], dtype=np.float64)
    w[first] = rollover_weights(hours[first] * _HOUR_MS)
    return w
