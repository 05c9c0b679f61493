"""The seeded synthetic tick generator: determinism, continuity, calendar, and calibration
against the real Dukascopy EUR/USD ticks of 2019-02-04/05."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from aio_ray.config import SyntheticConfig
from aio_ray.data.dukascopy import decode_ticks, hour_path
from aio_ray.data.synthetic_ticks import (
    EPOCH,
    LAST_DAY,
    REAL_ANNUAL_VOL,
    SyntheticError,
    generate,
    generate_day,
    is_market_open,
)
from aio_ray.schema import TICK_SCHEMA

D = dt.date
H = 3_600_000


def ts_ms(t: pa.Table) -> np.ndarray:
    return t["ts"].cast(pa.int64()).to_numpy()


def mid(t: pa.Table) -> np.ndarray:
    return (t["bid"].to_numpy() + t["ask"].to_numpy()) / 2


def utc_ms(y: int, m: int, d: int, h: int = 0) -> int:
    return int(dt.datetime(y, m, d, h, tzinfo=dt.UTC).timestamp() * 1000)


def digest(t: pa.Table) -> str:
    h = hashlib.sha256()
    for col in t.columns:
        for chunk in col.chunks:
            for buf in chunk.buffers():
                if buf is not None:
                    h.update(buf)
    return h.hexdigest()


def weekdays(start: dt.date, n: int, days=(0, 1, 2, 3)) -> list[dt.date]:
    """The first ``n`` days from ``start`` whose weekday is in ``days`` (Mon-Thu: full days)."""
    out, d = [], start
    while len(out) < n:
        if d.weekday() in days:
            out.append(d)
        d += dt.timedelta(days=1)
    return out


# ----------------------------------------------------------------------------- measurements


def hourly_counts(t: pa.Table) -> np.ndarray:
    ms = ts_ms(t)
    return np.bincount((ms - ms[0] // 86_400_000 * 86_400_000) // H, minlength=24)


def minute_rv_by_hour(t: pa.Table) -> np.ndarray:
    """Realized variance of 1-minute log mid returns in each UTC hour of the day."""
    ms = ts_ms(t)
    minute = (ms - ms[0] // 86_400_000 * 86_400_000) // 60_000
    idx = np.full(1440, -1)
    idx[minute] = np.arange(len(ms))
    idx = np.maximum.accumulate(idx)
    lm = np.log(mid(t))[np.maximum(idx, 0)]
    r = np.diff(lm)
    return np.bincount(np.arange(1, 1440) // 60, weights=r * r, minlength=24)


def spread_points(t: pa.Table) -> np.ndarray:
    return np.rint((t["ask"].to_numpy() - t["bid"].to_numpy()) * 1e5).astype(np.int64)


@pytest.fixture(scope="module")
def real_days(dukascopy_dir: Path) -> list[pa.Table]:
    """The two real winter weekdays (New York on EST), each as one table."""
    days = []
    for day in (D(2019, 2, 4), D(2019, 2, 5)):
        hours = []
        for h in range(24):
            start = dt.datetime(day.year, day.month, day.day, h)
            f = dukascopy_dir / hour_path("EURUSD", start)
            hours.append(decode_ticks(f.read_bytes(), start, "EURUSD", str(f)))
        days.append(pa.concat_tables(hours))
    return days


@pytest.fixture(scope="module")
def winter_synthetic() -> list[pa.Table]:
    """Twelve synthetic winter weekdays (Mon-Thu) at the real days' volatility."""
    cfg = SyntheticConfig(annual_vol=REAL_ANNUAL_VOL)
    return [generate_day("EURUSD", d, cfg) for d in weekdays(D(2019, 1, 14), 12)]


# ----------------------------------------------------------------------------- determinism


def test_same_seed_gives_identical_ticks_and_another_seed_different_ones() -> None:
    day = D(2025, 7, 8)
    a = generate_day("EURUSD", day, SyntheticConfig(seed=11))
    b = generate_day("EURUSD", day, SyntheticConfig(seed=11))
    c = generate_day("EURUSD", day, SyntheticConfig(seed=12))
    assert a.equals(b)
    assert digest(a) == digest(b)
    assert not a.equals(c)
    assert abs(len(a) - len(c)) < 0.3 * len(a)  # another draw, not another model
    assert not np.array_equal(mid(a)[:1000], mid(c)[:1000])


def test_symbol_is_part_of_the_seed() -> None:
    day = D(2025, 7, 8)
    assert not generate_day("EURUSD", day).equals(generate_day("GBPUSD", day))
    assert generate_day("eurusd", day).equals(generate_day("EURUSD", day))


def test_a_month_generated_as_a_range_equals_each_day_generated_alone() -> None:
    cfg = SyntheticConfig(seed=3)
    ranged = dict(generate("EURUSD", D(2025, 7, 1), D(2025, 8, 1), cfg))
    assert list(ranged) == [D(2025, 7, 1) + dt.timedelta(days=k) for k in range(31)]
    for day in sorted(ranged, reverse=True):  # alone, and in another order
        assert generate_day("EURUSD", day, cfg).equals(ranged[day]), day
    assert sum(len(t) for t in ranged.values()) > 2_000_000


@pytest.mark.ray
def test_days_generated_in_ray_tasks_equal_days_generated_here(ray_local) -> None:
    cfg = SyntheticConfig(seed=5)
    days = [D(2024, 3, 8), D(2024, 3, 10), D(2024, 11, 4)]
    remote = ray_local.remote(generate_day)  # other processes, other hash salts
    got = ray_local.get([remote.remote("EURUSD", d, cfg) for d in days])
    for day, table in zip(days, got):
        assert digest(table) == digest(generate_day("EURUSD", day, cfg)), day


# ----------------------------------------------------------------------------- continuity


def test_no_jump_at_day_boundaries_including_weekends() -> None:
    cfg = SyntheticConfig(seed=21, annual_vol=0.07)
    days = dict(generate("EURUSD", D(2025, 2, 24), D(2025, 3, 12), cfg))
    trading = [d for d in sorted(days) if len(days[d])]
    jumps = []
    for a, b in itertools.pairwise(trading):
        jumps.append(abs(mid(days[b])[0] - mid(days[a])[-1]))
    # 12 weekday midnights and two weekends: last tick of one day vs first of the next.
    assert len(jumps) >= 13
    assert max(jumps) < 3e-4, jumps  # under 3 pips; a day's range is ~50 pips at 7 %
    # ... while the level still moves from day to day.
    opens = [mid(days[d])[0] for d in trading]
    assert np.ptp(opens) > 20e-4


def test_start_price_is_the_mid_at_the_epoch() -> None:
    first = generate_day("EURUSD", EPOCH, SyntheticConfig(start_price=1.3))  # a Thursday
    assert abs(mid(first)[0] - 1.3) < 3e-4


def test_price_level_stays_in_a_plausible_band_over_decades() -> None:
    cfg = SyntheticConfig(seed=1)
    starts = [weekdays(D(y, 6, 3), 1)[0] for y in range(1975, 2100, 8)]
    mids = [mid(generate_day("EURUSD", d, cfg))[0] for d in starts]
    assert 0.6 * cfg.start_price < min(mids) and max(mids) < 1.6 * cfg.start_price


# ----------------------------------------------------------------------------- calendar


@pytest.mark.parametrize(
    "friday, close_utc_hour",
    [
        (D(2025, 7, 4), 21),  # summer: EDT, 17:00 New York = 21:00 UTC
        (D(2025, 1, 10), 22),  # winter: EST, 17:00 New York = 22:00 UTC
        (D(2025, 3, 7), 22),  # closes on EST, reopens on EDT (clocks change on Sunday 9 March)
    ],
)
def test_no_ticks_between_friday_and_sunday_17h_new_york(
    friday: dt.date, close_utc_hour: int
) -> None:
    sunday = friday + dt.timedelta(days=2)
    days = dict(generate("EURUSD", friday, sunday + dt.timedelta(days=1)))
    fri, sat, sun = days[friday], days[friday + dt.timedelta(days=1)], days[sunday]
    close = utc_ms(friday.year, friday.month, friday.day, close_utc_hour)
    opens_dst = friday == D(2025, 3, 7)
    open_hour = close_utc_hour - 1 if opens_dst else close_utc_hour
    reopen = utc_ms(sunday.year, sunday.month, sunday.day, open_hour)
    assert len(sat) == 0
    assert ts_ms(fri)[-1] < close and ts_ms(fri)[-1] > close - H  # trades up to the close
    assert ts_ms(sun)[0] >= reopen and ts_ms(sun)[0] < reopen + H  # and again from the open
    assert np.all(is_market_open(np.concatenate([ts_ms(fri), ts_ms(sun)])))
    assert not is_market_open(np.array([close, reopen - 1])).any()


def test_rollover_spread_widening_follows_new_york_time() -> None:
    for day, rollover_utc in ((D(2025, 1, 14), 22), (D(2025, 7, 15), 21)):
        t = generate_day("EURUSD", day)
        hour = (ts_ms(t) - utc_ms(day.year, day.month, day.day)) // H
        sp = spread_points(t)
        assert np.median(sp[hour == rollover_utc]) >= 6, day
        assert np.median(sp[hour == rollover_utc - 2]) <= 4, day
    # 21:00 UTC is the rollover hour in summer (EDT) but an ordinary hour in winter (EST).
    assert np.median(sp[hour == 21]) >= 6  # the summer day, from the last loop
    winter = generate_day("EURUSD", D(2025, 1, 14))
    w_hour = (ts_ms(winter) - utc_ms(2025, 1, 14)) // H
    assert np.median(spread_points(winter)[w_hour == 21]) <= 4


# ----------------------------------------------------------------------------- invariants


def test_ticks_are_canonical_sorted_on_the_grid_and_positive() -> None:
    t = generate_day("EURUSD", D(2025, 7, 9), SyntheticConfig(seed=9))
    assert t.schema.equals(TICK_SCHEMA, check_metadata=True)
    assert len(t) > 50_000
    ms = ts_ms(t)
    assert np.all(np.diff(ms) > 0)
    assert ms[0] >= utc_ms(2025, 7, 9) and ms[-1] < utc_ms(2025, 7, 10)
    bid, ask = t["bid"].to_numpy(), t["ask"].to_numpy()
    for p in (bid, ask):
        assert np.all(p > 0)
        assert np.abs(p * 1e5 - np.rint(p * 1e5)).max() < 1e-6
        assert np.array_equal(p, np.round(p, 5))
    assert np.all(bid <= ask)
    for v in ("bid_volume", "ask_volume"):
        vol = t[v].to_numpy()
        assert vol.dtype == np.float32 and np.all(vol > 0) and np.all(np.isfinite(vol))
    assert sum(col.null_count for col in t.columns) == 0


def test_jpy_pairs_land_on_their_own_point_grid() -> None:
    t = generate_day("USDJPY", D(2025, 7, 9), SyntheticConfig(start_price=150.0))
    bid = t["bid"].to_numpy()
    assert 100 < bid.mean() < 220
    assert np.abs(bid * 1e3 - np.rint(bid * 1e3)).max() < 1e-6


def test_intensity_scales_tick_count_but_not_volatility() -> None:
    days = weekdays(D(2025, 5, 5), 4)
    base = [generate_day("EURUSD", d, SyntheticConfig()) for d in days]
    dense = [generate_day("EURUSD", d, SyntheticConfig(intensity=2.0)) for d in days]
    ratio = sum(map(len, dense)) / sum(map(len, base))
    assert 1.8 < ratio < 2.2
    rv_base = np.mean([minute_rv_by_hour(t).sum() for t in base])
    rv_dense = np.mean([minute_rv_by_hour(t).sum() for t in dense])
    assert 0.75 < rv_dense / rv_base < 1.33


def test_annual_vol_sets_the_daily_realized_vol() -> None:
    cfg = SyntheticConfig(annual_vol=0.10)
    days = weekdays(D(2025, 9, 1), 8)
    rv = np.mean([minute_rv_by_hour(generate_day("EURUSD", d, cfg)).sum() for d in days])
    # 1-minute realized variance of a day is the day's variance (plus ~3 % of grid noise).
    assert np.sqrt(rv) == pytest.approx(0.10 / np.sqrt(260), rel=0.12)


def test_bad_arguments_name_the_argument() -> None:
    with pytest.raises(SyntheticError, match="symbol"):
        generate_day("EUR/USD", D(2025, 1, 2))
    with pytest.raises(SyntheticError, match="day must lie between"):
        generate_day("EURUSD", D(1969, 12, 31))
    with pytest.raises(SyntheticError, match="day must lie between"):
        generate_day("EURUSD", LAST_DAY + dt.timedelta(days=1))
    with pytest.raises(SyntheticError, match="datetime.date"):
        generate_day("EURUSD", dt.datetime(2025, 1, 2))  # type: ignore[arg-type]
    with pytest.raises(SyntheticError, match="end .* before start"):
        generate("EURUSD", D(2025, 1, 5), D(2025, 1, 2))  # at the call, not at the first day
    with pytest.raises(ValueError):  # SyntheticError is a ValueError too
        list(generate("EURUSD", D(2025, 1, 5), D(2025, 1, 2)))
    assert list(generate("EURUSD", D(2025, 1, 5), D(2025, 1, 5))) == []


# ----------------------------------------------------------------------------- calibration


@pytest.mark.shared
def test_spread_distribution_matches_the_real_days(real_days, winter_synthetic) -> None:
    real = np.concatenate([spread_points(t) for t in real_days])
    syn = np.concatenate([spread_points(t) for t in winter_synthetic])
    assert np.median(syn) == np.median(real) == 3
    for q in (0.1, 0.25, 0.75, 0.9):
        assert abs(np.quantile(syn, q) - np.quantile(real, q)) <= 1, q
    assert abs(np.mean(syn <= 2) - np.mean(real <= 2)) < 0.05
    assert abs(np.mean(syn >= 10) - np.mean(real >= 10)) < 0.01  # the rollover tail


@pytest.mark.shared
def test_ticks_per_weekday_hour_match_the_real_days(real_days, winter_synthetic) -> None:
    real = np.mean([hourly_counts(t) for t in real_days], axis=0)
    syn = np.mean([hourly_counts(t) for t in winter_synthetic], axis=0)
    # Per UTC hour within 25 %: the two real days themselves differ by up to 35 % in an hour
    # (01:00 UTC: 2,825 vs 1,830 ticks), so their mean carries ~+-15 % of its own noise.
    assert np.all(np.abs(syn / real - 1) < 0.25), np.round(syn / real, 2)
    assert syn.sum() == pytest.approx(real.sum(), rel=0.08)
    # The shape: quiet Asian evening, busy London/New York overlap.
    assert syn[13:16].mean() > 2.5 * syn[1:3].mean()


@pytest.mark.shared
def test_hourly_realized_vol_matches_the_real_days(real_days, winter_synthetic) -> None:
    real = np.mean([minute_rv_by_hour(t) for t in real_days], axis=0)
    syn = np.mean([minute_rv_by_hour(t) for t in winter_synthetic], axis=0)
    # Six-hour blocks of 360 one-minute returns: the sampling error of a block's realized vol
    # is ~5 % for the 2 real days and ~3 % for the 12 synthetic ones; allow 20 %.
    blocks_real = np.sqrt(real.reshape(4, 6).sum(axis=1))
    blocks_syn = np.sqrt(syn.reshape(4, 6).sum(axis=1))
    assert np.all(np.abs(blocks_syn / blocks_real - 1) < 0.20), blocks_syn / blocks_real
    assert np.sqrt(syn.sum()) == pytest.approx(np.sqrt(real.sum()), rel=0.10)
    # The real days' level is what REAL_ANNUAL_VOL says it is.
    assert np.sqrt(real.sum() * 260) == pytest.approx(REAL_ANNUAL_VOL, rel=0.01)


@pytest.mark.shared
def test_tick_to_tick_mid_changes_look_like_the_real_ones(real_days, winter_synthetic) -> None:
    def steps(tables: list[pa.Table]) -> np.ndarray:
        half_points = [np.rint(mid(t) * 2e5).astype(np.int64) for t in tables]
        return np.abs(np.concatenate([np.diff(h) for h in half_points]))

    real, syn = steps(real_days), steps(winter_synthetic)
    for k in (0, 1, 2):  # no change, half a point (one side moves one point), a point
        assert abs(np.mean(syn == k) - np.mean(real == k)) < 0.06, k
    assert np.mean(syn >= 6) < 0.02


@pytest.mark.shared
def test_volumes_match_the_real_distribution(real_days, winter_synthetic) -> None:
    def vols(tables: list[pa.Table]) -> np.ndarray:
        return np.concatenate(
            [
                np.concatenate([t["bid_volume"].to_numpy(), t["ask_volume"].to_numpy()])
                for t in tables
            ]
        ).astype(np.float64)

    real, syn = vols(real_days), vols(winter_synthetic)
    for q in (0.25, 0.5, 0.75, 0.95, 0.99):
        assert np.quantile(syn, q) == pytest.approx(np.quantile(real, q), rel=0.1), q
    assert abs(np.mean(syn == 1.0) - np.mean(real == 1.0)) < 0.02


@pytest.mark.shared
def test_inter_arrival_times_cluster_like_the_real_ones(real_days, winter_synthetic) -> None:
    def gaps(tables: list[pa.Table]) -> np.ndarray:
        return np.concatenate([np.diff(ts_ms(t)) for t in tables])

    real, syn = gaps(real_days), gaps(winter_synthetic)
    assert syn.min() >= 1 and syn.min() <= 53
    assert abs(np.mean((syn >= 100) & (syn <= 105)) - np.mean((real >= 100) & (real <= 105))) < 0.05
    # Clustered, not Poisson: the coefficient of variation of gaps is far above 1.
    cv_real, cv_syn = real.std() / real.mean(), syn.std() / syn.mean()
    assert cv_syn > 1.7 and abs(cv_syn - cv_real) < 0.6


# ----------------------------------------------------------------------------- planted edge
#
# The pipeline as a statistical test: with edge="none" the mid is a martingale (nothing should
# pass); with a planted edge the 15-minute returns are predictable, and by a known amount.


def returns_15m(t: pa.Table) -> np.ndarray:
    """Log returns of the last mid in each 15-minute bucket of one (full) UTC day."""
    ms = ts_ms(t)
    bucket = (ms - ms[0] // 86_400_000 * 86_400_000) // 900_000
    last = np.full(96, -1)
    last[bucket] = np.arange(len(ms))
    last = np.maximum.accumulate(last)
    return np.diff(np.log(mid(t))[np.maximum(last, 0)])


def lag1_autocorr(tables: list[pa.Table]) -> float:
    """Pooled lag-1 autocorrelation of 15-minute returns, pairs within a day only."""
    rs = [returns_15m(t) for t in tables]
    mu = np.concatenate(rs).mean()
    num = sum(float(((r[:-1] - mu) * (r[1:] - mu)).sum()) for r in rs)
    den = sum(float(((r - mu) ** 2).sum()) for r in rs)
    return num / den


def mean_reversion_autocorr_theory(
    strength: float, half_life_min: float, lag_min: float = 15
) -> float:
    """Lag-1 autocorrelation of ``lag_min`` returns of a martingale plus a stationary OU of std
    ``strength`` x the martingale std over one half-life: ``-rho (1 - phi)^2 / (1 + 2 rho
    (1 - phi))`` with ``phi = 2**(-lag / half_life)`` and ``rho = strength^2 half_life / lag``."""
    phi = 0.5 ** (lag_min / half_life_min)
    rho = strength**2 * half_life_min / lag_min
    return -rho * (1 - phi) ** 2 / (1 + 2 * rho * (1 - phi))


EDGE_DAYS = weekdays(D(2025, 3, 3), 40)  # eight weeks of Monday-Thursday (full days)


@pytest.fixture(scope="module")
def null_autocorr() -> float:
    return lag1_autocorr([generate_day("EURUSD", d, SyntheticConfig(seed=7)) for d in EDGE_DAYS])


def test_edge_none_is_the_generator_without_an_edge() -> None:
    day = D(2025, 7, 8)
    explicit = SyntheticConfig(seed=7, edge="none", edge_strength=0.0, edge_half_life_min=5.0)
    assert generate_day("EURUSD", day, explicit).equals(
        generate_day("EURUSD", day, SyntheticConfig(seed=7))
    )
    # Byte for byte the ticks of the generator before the edge existed (digest taken then).
    assert digest(generate_day("EURUSD", day, SyntheticConfig(seed=7))) == (
        "3111634e1e1facf49311e8c54be31986af72e10784af131251203956b10be942"
    )


def test_planted_edge_keeps_arrivals_quotes_invariants_and_day_boundaries() -> None:
    cfg = SyntheticConfig(seed=7, edge="mean_reversion", edge_strength=5.0, edge_half_life_min=30)
    null = dict(generate("EURUSD", D(2025, 7, 3), D(2025, 7, 9), SyntheticConfig(seed=7)))
    edged = dict(generate("EURUSD", D(2025, 7, 3), D(2025, 7, 9), cfg))  # Thu .. Tue
    for day, t in edged.items():
        assert np.array_equal(ts_ms(t), ts_ms(null[day])), day  # the same arrivals
        if len(t) == 0:
            continue
        bid, ask = t["bid"].to_numpy(), t["ask"].to_numpy()
        assert np.all(bid <= ask) and np.all(bid > 0)
        assert np.array_equal(bid, np.round(bid, 5)) and np.array_equal(ask, np.round(ask, 5))
        # the spread's parity follows the (moved) mid's, so both sides stay on the point grid
        assert np.array_equal(spread_points(t) % 2, np.rint(mid(t) * 2e5).astype(np.int64) % 2)
        # Pinned to 0 at both ends of the open span: the first and last ticks (seconds from the
        # ends) match the martingale's, so the anchors and the weekend gap are the same.
        assert (
            abs(mid(t)[0] - mid(null[day])[0]) < 1e-4
            and abs(mid(t)[-1] - mid(null[day])[-1]) < 1e-4
        )
        # ... while in between the mid moves away from it by about the planted std (5 x 7.7e-4).
        dev = np.log(mid(t)) - np.log(mid(null[day]))
        assert 1.5e-3 < dev.std() < 6e-3, (day, dev.std())


def test_mean_reversion_gives_negative_autocorrelation_of_15m_returns(null_autocorr) -> None:
    # The null: a martingale. Over 40 days the estimator's sd is ~0.023 (measured on 10 seeds).
    assert abs(null_autocorr) < 0.05
    cfg = SyntheticConfig(seed=7, edge="mean_reversion", edge_strength=1.0, edge_half_life_min=15)
    got = lag1_autocorr([generate_day("EURUSD", d, cfg) for d in EDGE_DAYS])
    # Theory -0.125; 10 seeds measured -0.116 +- 0.019 (sd).
    assert mean_reversion_autocorr_theory(1.0, 15) == pytest.approx(-0.125)
    assert got < -0.07, got
    assert got == pytest.approx(mean_reversion_autocorr_theory(1.0, 15), abs=0.06)
    # The default half-life (45 min) is a weaker effect on 15m returns: theory -0.057.
    weak = SyntheticConfig(seed=7, edge="mean_reversion", edge_strength=1.0)
    got_weak = lag1_autocorr([generate_day("EURUSD", d, weak) for d in EDGE_DAYS])
    assert got_weak < min(null_autocorr, 0.0) - 0.02, (got_weak, null_autocorr)


def test_momentum_gives_positive_autocorrelation_of_15m_returns(null_autocorr) -> None:
    cfg = SyntheticConfig(seed=7, edge="momentum", edge_strength=3.0)
    got = lag1_autocorr([generate_day("EURUSD", d, cfg) for d in EDGE_DAYS])
    # 10 seeds measured +0.136 +- 0.019 (sd); the null is ~0 +- 0.023.
    assert got > 0.07, got
    assert got > null_autocorr + 0.05


@pytest.mark.parametrize("edge", ["mean_reversion", "momentum"])
def test_planted_edge_is_deterministic_per_day(edge: str) -> None:
    cfg = SyntheticConfig(seed=4, edge=edge, edge_strength=2.0, edge_half_life_min=60)  # type: ignore[arg-type]
    ranged = dict(generate("EURUSD", D(2025, 7, 4), D(2025, 7, 9), cfg))  # Fri .. Wed
    for day in sorted(ranged, reverse=True):
        alone = generate_day("EURUSD", day, cfg)
        assert digest(alone) == digest(ranged[day]), day
        assert alone.equals(generate_day("EURUSD", day, cfg))
    other = generate_day("EURUSD", D(2025, 7, 8), cfg.model_copy(update={"seed": 5}))
    assert not other.equals(ranged[D(2025, 7, 8)])


@pytest.mark.parametrize(
    "kwargs, field, message",
    [
        ({"edge": "mean_reversion"}, "edge_strength", "must be > 0 with edge='mean_reversion'"),
        ({"edge": "momentum", "edge_strength": 0.0}, "edge_strength", "must be > 0"),
        ({"edge_strength": 1.0}, "edge_strength", "no effect with edge='none'"),
        ({"edge": "momentum", "edge_strength": 5.5}, "edge_strength", "less than or equal to 5"),
        (
            {"edge": "momentum", "edge_strength": -1.0},
            "edge_strength",
            "greater than or equal to 0",
        ),
        ({"edge": "trend", "edge_strength": 1.0}, "edge", "'none', 'mean_reversion' or 'momentum'"),
        (
            {"edge": "momentum", "edge_strength": 1, "edge_half_life_min": 0},
            "edge_half_life_min",
            "greater than 0",
        ),
        (
            {"edge": "momentum", "edge_strength": 1, "edge_half_life_min": 2000},
            "edge_half_life_min",
            "less than or equal to 1440",
        ),
    ],
)
def test_bad_edge_configuration_names_the_field(kwargs: dict, field: str, message: str) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=message) as info:
        SyntheticConfig(**kwargs)
    assert [e["loc"] for e in info.value.errors()] == [(field,)]


def test_cli_edge_options_reach_the_ingested_ticks(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from aio_ray.cli import app
    from aio_ray.data import tick_store

    def ingest(out: Path, *extra: str) -> tuple[int, str]:
        res = CliRunner().invoke(
            app,
            [
                "ingest",
                "synthetic",
                "--start",
                "2025-07-08",
                "--end",
                "2025-07-09",
                "--seed",
                "3",
                "--local",
                "--json",
                "--out",
                str(out),
                *extra,
            ],
        )
        return res.exit_code, res.stdout + res.stderr

    code, text = ingest(tmp_path / "null")
    assert code == 0, text
    code, text = ingest(
        tmp_path / "mr",
        "--edge",
        "mean_reversion",
        "--edge-strength",
        "2.5",
        "--edge-half-life-min",
        "30",
    )
    assert code == 0, text
    day = D(2025, 7, 8)
    null = tick_store.read_ticks(tmp_path / "null", "EURUSD", day, day + dt.timedelta(days=1))
    got = tick_store.read_ticks(tmp_path / "mr", "EURUSD", day, day + dt.timedelta(days=1))
    cfg = SyntheticConfig(seed=3, edge="mean_reversion", edge_strength=2.5, edge_half_life_min=30)
    want = generate_day("EURUSD", day, cfg)
    assert np.array_equal(ts_ms(got), ts_ms(null))  # same arrivals ...
    assert not np.array_equal(mid(got), mid(null))  # ... another mid: the edge's
    assert np.array_equal(mid(got), mid(want)) and np.array_equal(ts_ms(got), ts_ms(want))
    # A bad combination fails before anything is written, naming the field.
    code, text = ingest(tmp_path / "bad", "--edge", "momentum")
    assert code == 2 and "edge_strength" in text and "must be > 0" in text
    assert not (tmp_path / "bad").exists()
    code, text = ingest(tmp_path / "bad", "--edge", "sideways", "--edge-strength", "1")
    assert code == 2 and "sideways" in text
