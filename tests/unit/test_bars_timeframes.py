"""Timeframe parsing and bar labelling: epoch alignment and the New York 17:00 day."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from aio_ray.bars.timeframes import (
    SUPPORTED_TIMEFRAMES,
    bar_labels,
    check_daily_close,
    new_york_day_opens,
    parse_timeframe,
    parse_timeframes,
)
from aio_ray.errors import BarsError


def ms(*args: int) -> int:
    return int(dt.datetime(*args, tzinfo=dt.UTC).timestamp() * 1000)


def test_parse_accepts_the_required_timeframes_with_their_lengths() -> None:
    expect = {"1m": 1, "5m": 5, "15m": 15, "30m": 30, "1h": 60, "4h": 240, "1d": 1440}
    for name, minutes in expect.items():
        tf = parse_timeframe(name)
        assert tf.name == name and tf.minutes == minutes and tf.ms == minutes * 60_000
    assert parse_timeframe(" 4H ").name == "4h"
    assert parse_timeframe("1D").is_daily and not parse_timeframe("12h").is_daily


@pytest.mark.parametrize("bad", ["7m", "60m", "1w", "", "m", "15", "1.5h", "-1m"])
def test_unknown_timeframe_is_rejected_naming_the_accepted_ones(bad: str) -> None:
    with pytest.raises(BarsError, match="unknown timeframe") as err:
        parse_timeframe(bad)
    assert "15m" in str(err.value) and "1d" in str(err.value)


def test_parse_timeframes_orders_by_length_and_drops_duplicates() -> None:
    tfs = parse_timeframes(["1d", "15m", "1m", "4h", "15m", "1h"])
    assert [t.name for t in tfs] == ["1m", "15m", "1h", "4h", "1d"]
    with pytest.raises(BarsError):
        parse_timeframes([])
    assert len(SUPPORTED_TIMEFRAMES) == len(parse_timeframes(SUPPORTED_TIMEFRAMES))


def test_check_daily_close() -> None:
    assert check_daily_close("utc") == "utc"
    assert check_daily_close("new_york_close") == "new_york_close"
    with pytest.raises(BarsError, match="daily_close"):
        check_daily_close("tokyo")


def test_intraday_labels_are_aligned_to_utc_epoch_multiples() -> None:
    t = np.array([ms(2019, 2, 4, 3, 59, 59) + 999, ms(2019, 2, 4, 4, 0), ms(2019, 2, 4, 7, 31, 5)])
    assert bar_labels(t, parse_timeframe("4h")).tolist() == [
        ms(2019, 2, 4, 0),
        ms(2019, 2, 4, 4),
        ms(2019, 2, 4, 4),
    ]
    assert bar_labels(t, parse_timeframe("15m")).tolist() == [
        ms(2019, 2, 4, 3, 45),
        ms(2019, 2, 4, 4),
        ms(2019, 2, 4, 7, 30),
    ]
    assert bar_labels(t, parse_timeframe("1d"), "utc").tolist() == [ms(2019, 2, 4)] * 3


def test_new_york_close_day_opens_at_17_new_york_labelled_in_utc() -> None:
    tf = parse_timeframe("1d")
    winter = np.array([ms(2019, 2, 4, 21, 59, 59), ms(2019, 2, 4, 22, 0), ms(2019, 2, 5, 12, 0)])
    assert bar_labels(winter, tf, "new_york_close").tolist() == [
        ms(2019, 2, 3, 22),
        ms(2019, 2, 4, 22),
        ms(2019, 2, 4, 22),
    ]
    summer = np.array([ms(2019, 7, 1, 20, 59), ms(2019, 7, 1, 21, 0)])
    assert bar_labels(summer, tf, "new_york_close").tolist() == [
        ms(2019, 6, 30, 21),
        ms(2019, 7, 1, 21),
    ]
    # Intraday timeframes ignore the daily mode.
    assert bar_labels(summer, parse_timeframe("1h"), "new_york_close").tolist() == [
        ms(2019, 7, 1, 20),
        ms(2019, 7, 1, 21),
    ]


def test_new_york_days_around_daylight_saving_changes_last_23_and_25_hours() -> None:
    # US clocks went forward on Sunday 2019-03-10 and back on Sunday 2019-11-03.
    spring = new_york_day_opens(ms(2019, 3, 9), ms(2019, 3, 11))
    lengths = dict(zip(spring[:-1].tolist(), (np.diff(spring) // 3_600_000).tolist()))
    assert lengths[ms(2019, 3, 9, 22)] == 23  # Sat 17:00 EST -> Sun 17:00 EDT
    assert lengths[ms(2019, 3, 10, 21)] == 24
    autumn = new_york_day_opens(ms(2019, 11, 2), ms(2019, 11, 4))
    lengths = dict(zip(autumn[:-1].tolist(), (np.diff(autumn) // 3_600_000).tolist()))
    assert lengths[ms(2019, 11, 2, 21)] == 25  # Sat 17:00 EDT -> Sun 17:00 EST
    assert lengths[ms(2019, 11, 3, 22)] == 24
