"""Seeded synthetic EUR/USD-like ticks, calibrated on real Dukascopy ticks.

The product's embedded default data. A day's ticks depend only on ``(seed, symbol, day)``
and the :class:`~aio_ray.config.SyntheticConfig`, so days can be generated in any order, in
parallel Ray tasks, and a resumed ingest regenerates identical data.

Model, in four layers:

1. **Daily anchors.** The log mid at 00:00 UTC of every day from :data:`EPOCH` on is a
   seeded Ornstein-Uhlenbeck path around ``log(start_price)`` (half-life
   :data:`MEAN_REVERSION_HALF_LIFE_DAYS` trading days, so prices stay in a plausible band),
   whose variance per UTC day is ``annual_vol**2 / 260`` times the share of a trading day's
   variance that falls in that day's open hours (0 on Saturday).
2. **Arrivals.** Ticks arrive as a Cox process per second: the calibrated mean count of the
   New York hour times a log-normal multiplier (white noise plus a 29 s and a 10 min
   autoregressive component) for clustering, and then pass Dukascopy's ~100 ms publication
   throttle. No ticks between Friday 17:00 and Sunday 17:00 New York (DST-aware).
3. **Mid.** Within the day the log mid is a Brownian bridge in tick time from the day's
   anchor to the next day's (so a day boundary has no jump): each tick moves by a step drawn
   from the real half-point step distribution, scaled to the calibrated hourly variance.
   The mid is then put on the half-point grid.
4. **Quotes.** The spread (points) is drawn per tick from the real distribution of its New
   York hour, with the parity that puts bid and ask on the point grid, plus the measured
   widening around the 17:00 New York rollover; volumes are drawn from the real ask/bid
   volume distribution (millions, float32).
5. **Planted edge (optional, ``SyntheticConfig.edge``).** Off by default: the mid is then a
   martingale within the day and no strategy has a real edge. ``mean_reversion`` adds to the
   log mid a stationary Ornstein-Uhlenbeck deviation in calendar time; ``momentum`` adds an
   integrated OU velocity (trends). Both are simulated on a 1-minute grid over the day's open
   hours from their own random stream, pinned to 0 at both ends of that span (so the anchors
   and the day boundaries are untouched) and added before the mid is put on the grid. Their
   std is ``edge_strength`` times the mid's martingale std over one half-life (see
   :func:`edge_scale`).

The calibration constants below were measured by ``bench/calibrate_synthetic.py`` on the
real Dukascopy EUR/USD ticks of 2019-02-04 and 2019-02-05 (Monday and Tuesday; New York was
on EST, UTC-5); the data files themselves are not part of the package.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import math
from collections.abc import Iterator

import numpy as np
import pyarrow as pa

from aio_ray.data.config import SyntheticConfig
from aio_ray.data.dukascopy import point_size
from aio_ray.data.synthetic_calendar import (
    EPOCH,
    LAST_DAY,
    MS_PER_DAY,
    MS_PER_HOUR,
    TRADING_DAYS_PER_YEAR,
    SyntheticError,
    hour_layout,
    is_market_open,
    ny_offset_hours,
)
from aio_ray.data.synthetic_edge import edge_at_ticks, edge_scale
from aio_ray.schema import TICK_SCHEMA, TS_TYPE, empty_ticks

__all__ = [
    "EPOCH",
    "LAST_DAY",
    "REAL_ANNUAL_VOL",
    "SyntheticError",
    "edge_scale",
    "generate",
    "generate_day",
    "is_market_open",
]


MEAN_REVERSION_HALF_LIFE_DAYS = 520.0
"""Half-life of the daily anchors' pull back to ``start_price``, trading days (two years)."""

_N_ANCHORS = (LAST_DAY - EPOCH).days + 2  # 00:00 UTC of every day, and of the day after LAST_DAY

# ---------------------------------------------------------------------------------------------
# Calibration (bench/calibrate_synthetic.py on the real ticks of 2019-02-04 and 2019-02-05).
# Indexed by New York local hour 0..23 unless said otherwise.
# ---------------------------------------------------------------------------------------------

TICKS_PER_NY_HOUR = np.array((
    2736.5, 3041.5, 6243.5, 10038.0, 8769.0, 7392.0, 6843.0, 7352.0, 8646.0, 9736.0, 11142.0,
    8844.5, 5971.5, 5472.5, 4501.5, 4997.5, 2788.0, 2055.5, 2616.5, 3565.5, 2327.5, 2088.0,
    2783.5, 3158.0,
))  # fmt: skip
"""Mean ticks per hour (133,110 a day)."""

VOL_SHARE_NY_HOUR = np.array((
    0.01035, 0.02075, 0.0494, 0.07819, 0.06536, 0.0343, 0.03188, 0.04892, 0.06635, 0.09721,
    0.16431, 0.07131, 0.04142, 0.04756, 0.02279, 0.01258, 0.02063, 0.01278, 0.01105, 0.03248,
    0.01171, 0.0152, 0.01757, 0.01588,
))  # fmt: skip
"""Share of a trading day's variance in each hour (realized variance of 1-minute log mid
returns; sums to 1)."""
VOL_SHARE_NY_HOUR = VOL_SHARE_NY_HOUR / VOL_SHARE_NY_HOUR.sum()

REAL_ANNUAL_VOL = 0.04443
"""Annualized volatility of the real days (1-minute realized vol of 0.276 % a day x sqrt(260)).
``SyntheticConfig.annual_vol`` sets the level; use this value to reproduce the real days."""

SPREAD_PMF_NY_HOUR = np.array((
    (0.0212, 0.123, 0.3409, 0.3479, 0.1632, 0.0038, 0.0, 0.0),
    (0.0171, 0.1305, 0.3674, 0.3308, 0.1511, 0.0031, 0.0, 0.0),
    (0.059, 0.2184, 0.3837, 0.2704, 0.0681, 0.0005, 0.0, 0.0),
    (0.0818, 0.286, 0.3863, 0.2192, 0.0267, 0.0001, 0.0, 0.0),
    (0.0871, 0.2866, 0.3859, 0.2185, 0.0214, 0.0005, 0.0, 0.0),
    (0.0757, 0.2872, 0.3943, 0.2263, 0.0162, 0.0003, 0.0, 0.0),
    (0.0973, 0.3144, 0.3708, 0.1957, 0.0218, 0.0, 0.0, 0.0),
    (0.1087, 0.3347, 0.3587, 0.1855, 0.0122, 0.0, 0.0001, 0.0001),
    (0.1127, 0.3447, 0.3703, 0.1683, 0.004, 0.0, 0.0, 0.0),
    (0.1152, 0.325, 0.3646, 0.1769, 0.0154, 0.0013, 0.0008, 0.0007),
    (0.1257, 0.3392, 0.3524, 0.1671, 0.0129, 0.0013, 0.0004, 0.0011),
    (0.12, 0.3386, 0.3616, 0.1709, 0.0089, 0.0, 0.0, 0.0),
    (0.057, 0.2561, 0.4116, 0.2463, 0.029, 0.0, 0.0, 0.0),
    (0.0519, 0.221, 0.3663, 0.3026, 0.0547, 0.0035, 0.0, 0.0),
    (0.0464, 0.2399, 0.4004, 0.2725, 0.0402, 0.0006, 0.0, 0.0),
    (0.0341, 0.1709, 0.3923, 0.3256, 0.0755, 0.0016, 0.0, 0.0),
    (0.0261, 0.1178, 0.2848, 0.366, 0.1856, 0.0195, 0.0002, 0.0),
    (0.015, 0.086, 0.2586, 0.3744, 0.2268, 0.0388, 0.0004, 0.0),
    (0.015, 0.086, 0.2586, 0.3744, 0.2268, 0.0388, 0.0004, 0.0),
    (0.015, 0.086, 0.2586, 0.3744, 0.2268, 0.0388, 0.0004, 0.0),
    (0.0146, 0.101, 0.2917, 0.3686, 0.2092, 0.0148, 0.0, 0.0),
    (0.0216, 0.108, 0.3161, 0.3853, 0.1645, 0.0045, 0.0, 0.0),
    (0.0309, 0.1301, 0.3244, 0.356, 0.1565, 0.0022, 0.0, 0.0),
    (0.0138, 0.0909, 0.3046, 0.3904, 0.1944, 0.0059, 0.0, 0.0),
))  # fmt: skip
"""Spread distribution, points 1..8 (columns), outside the rollover window; hours 17 and 18,
which lie inside it, borrow hour 19's."""

ROLLOVER_START_NY_MINUTE = 16 * 60 + 55
"""The rollover widening window starts at 16:55 New York and has one bucket per 5 minutes."""
ROLLOVER_EXCESS_POINTS = np.array((
    1.01, 31.71, 16.33, 14.18, 11.9, 5.67, 6.18, 5.48, 5.27, 4.64, 4.92, 5.49, 8.59, 4.29, 3.58,
    2.97, 2.73, 2.35, 2.25, 1.62, 1.44, 0.74, 0.38, 0.42, 0.46,
))  # fmt: skip
"""Mean spread above the hour's normal mean, points, per 5 minutes from 16:55 to 19:00 NY."""
ROLLOVER_EXCESS_DISPERSION = 0.35
"""Log-normal sigma of the rollover excess around its bucket mean (real 17:00-17:05 spreads
had median 38 and 90th percentile 46-50 points: about +-30 %)."""

STEP_PMF_HALF_POINTS = np.array(
    (0.21902, 0.55277, 0.13342, 0.05243, 0.02359, 0.01059, 0.00459, 0.00186, 0.00173)
)
"""Absolute tick-to-tick mid change, half points 0..8 (8 = 8 or more); signs are symmetric.
Many zeros and mostly half-point steps: one side of the quote moves by one point."""

THROTTLE_GAPS_MS = np.array((51, 52, 53, 101, 102, 103, 104, 105))
THROTTLE_GAP_P = np.array((
    0.137 * 0.43, 0.137 * 0.49, 0.137 * 0.08,
    0.863 * 0.03, 0.863 * 0.53, 0.863 * 0.33, 0.863 * 0.08, 0.863 * 0.03,
))  # fmt: skip
"""Minimum spacing the feed puts between ticks (Dukascopy publishes at most one tick per
~102 ms, sometimes 52 ms): the shapes within each cluster are the real gaps' in 50-55 and
100-105 ms; the 0.137 weight of the short cluster was fitted with the clustering below."""
THROTTLE_GAP_P = THROTTLE_GAP_P / THROTTLE_GAP_P.sum()

ARRIVAL_WHITE_SD = 0.80
ARRIVAL_FAST_SD = 0.33
ARRIVAL_FAST_TAU_S = 29.0
ARRIVAL_SLOW_SD = 0.30
ARRIVAL_SLOW_TAU_MIN = 10.0
"""Log-intensity multiplier per second: white noise plus AR(1) components with these
standard deviations and e-folding times. Fitted by a random search so that the median
dispersion (variance/mean) of counts within an hour matches the real one in 1 s, 10 s and
60 s windows (2.1, 4.8, 11.2), with the autocorrelation of per-second counts (0.42 at 1 s)
and the share of gaps at the throttle (4 % at 50-55 ms, 30 % at 100-105 ms)."""

VOLUME_ATOMS = np.array((
    1.0, 1.5, 1.12, 1.25, 2.25, 1.87, 1.69, 3.0, 3.75, 2.62, 2.44, 3.37, 3.19, 4.5, 4.12, 3.94,
    2.06, 1.31, 4.87, 2.81, 5.25, 3.56, 4.69, 1.75,
))  # fmt: skip
VOLUME_ATOM_P = np.array((
    0.26679, 0.08864, 0.04454, 0.04305, 0.04249, 0.02733, 0.02301, 0.02243, 0.02092, 0.01804,
    0.01664, 0.01238, 0.01168, 0.00966, 0.00852, 0.00816, 0.00788, 0.00784, 0.00709, 0.00708,
    0.00603, 0.00596, 0.00592, 0.00567,
))  # fmt: skip
"""The 24 most frequent ask/bid volumes (millions) and their probabilities (72 % of ticks)."""
VOLUME_TAIL_PROBS = np.array((
    0, .05, .1, .15, .2, .25, .3, .35, .4, .45, .5, .55, .6, .65, .7, .75, .8, .85, .9, .93, .96,
    .98, .99, .995, .999, 1,
))  # fmt: skip
VOLUME_TAIL_QUANTILES = np.array((
    0.1, 1.2, 1.6, 1.95, 2.26, 2.51, 2.85, 3.22, 3.6, 3.97, 4.31, 4.72, 5.1, 5.5, 5.85, 6.22,
    6.75, 7.31, 8.14, 8.87, 9.97, 11.32, 12.72, 14.12, 19.47, 149.02,
))  # fmt: skip
"""Quantiles (millions) of the other volumes; the top knot is the 99.99th percentile."""

_STEP_SD = math.sqrt(float((STEP_PMF_HALF_POINTS * np.arange(9) ** 2).sum()))
_STEP_CDF = np.cumsum(STEP_PMF_HALF_POINTS) / STEP_PMF_HALF_POINTS.sum()
_VOLUME_ATOM_CDF = np.cumsum(VOLUME_ATOM_P)
_VOLUME_ATOM_MASS = float(_VOLUME_ATOM_CDF[-1])
_LOG_VOLUME_TAIL = np.log(VOLUME_TAIL_QUANTILES)


def _spread_cdfs() -> np.ndarray:
    """CDFs over spreads 1..8 points, per (parity of the spread, NY hour): shape (2, 24, 8)."""
    spreads = np.arange(1, SPREAD_PMF_NY_HOUR.shape[1] + 1)
    out = np.empty((2,) + SPREAD_PMF_NY_HOUR.shape)
    for parity in (0, 1):
        pmf = np.where(spreads % 2 == parity, SPREAD_PMF_NY_HOUR, 0.0)
        cdf = np.cumsum(pmf, axis=1) / pmf.sum(axis=1, keepdims=True)
        cdf[:, -1] = 1.0
        out[parity] = cdf
    return out


_SPREAD_CDF = _spread_cdfs()


@functools.cache
def _day_variance_weights() -> np.ndarray:
    """Share of a full trading day's variance that falls in each UTC day from EPOCH on.

    1 for Monday-Thursday, 0 for Saturday, the open hours' share for Friday and Sunday.
    """
    n = _N_ANCHORS - 1
    weekday = (np.arange(n) + EPOCH.weekday()) % 7
    w = np.where(weekday <= 3, 1.0, 0.0)
    share_by_offset: dict[tuple[int, int], float] = {}
    for i in np.flatnonzero((weekday == 4) | (weekday == 6)):
        day = EPOCH + dt.timedelta(days=int(i))
        key = (int(weekday[i]), ny_offset_hours(day))
        if key not in share_by_offset:
            ny_hour, open_h, _ = hour_layout(day)
            share_by_offset[key] = float(VOL_SHARE_NY_HOUR[ny_hour[open_h]].sum())
        w[i] = share_by_offset[key]
    return w


def _symbol_key(symbol: str) -> int:
    """A stable 63-bit key of the symbol (Python's ``hash`` is salted per process)."""
    return int.from_bytes(hashlib.sha256(symbol.encode()).digest()[:8], "big") >> 1


def _seed_words(seed: int) -> int:
    """The seed as a non-negative integer (negative seeds are valid configuration)."""
    return seed % (1 << 64)


@functools.lru_cache(maxsize=16)
def _daily_anchors(seed: int, symbol: str, start_price: float, annual_vol: float) -> np.ndarray:
    """Log mid at 00:00 UTC of every day from EPOCH to LAST_DAY + 1 (a fixed horizon, so the
    value of a day never depends on which days were asked for)."""
    w = _day_variance_weights()
    rng = np.random.default_rng([_seed_words(seed), _symbol_key(symbol), 0])
    z = rng.standard_normal(len(w))
    sd = annual_vol / math.sqrt(TRADING_DAYS_PER_YEAR) * np.sqrt(w)
    phi = np.exp(-math.log(2.0) / MEAN_REVERSION_HALF_LIFE_DAYS * w)
    shocks = (sd * z).tolist()
    decay = phi.tolist()
    y = 0.0
    out = [0.0]
    for k in range(len(w)):
        y = decay[k] * y + shocks[k]
        out.append(y)
    return math.log(start_price) + np.asarray(out)


# ---------------------------------------------------------------------------------------------
# Kernels (pure numpy; arrays in, arrays out)
# ---------------------------------------------------------------------------------------------


def _ar1(rng: np.random.Generator, n: int, tau: float, sd: float) -> np.ndarray:
    """``n`` samples of a stationary AR(1) with e-folding time ``tau`` samples and std ``sd``
    (an exponential moving sum of white noise, truncated at 6 tau)."""
    taps = math.ceil(6 * tau) + 1
    kernel = np.exp(-np.arange(taps) / tau)
    kernel *= sd / math.sqrt(float((kernel**2).sum()))
    return np.convolve(rng.standard_normal(n + taps - 1), kernel, mode="valid")


def _arrival_ms(
    rng: np.random.Generator, ticks_per_hour: np.ndarray, open_h: np.ndarray, intensity: float
) -> np.ndarray:
    """Sorted, strictly increasing tick times, ms since 00:00 UTC, in open hours only.

    ``ticks_per_hour``: expected ticks in each of the 24 UTC hours (0 where closed).
    """
    lam = np.repeat(ticks_per_hour / 3600.0, 3600)
    x = ARRIVAL_WHITE_SD * rng.standard_normal(86_400)
    x += _ar1(rng, 86_400, ARRIVAL_FAST_TAU_S, ARRIVAL_FAST_SD)
    x += np.repeat(_ar1(rng, 1440, ARRIVAL_SLOW_TAU_MIN, ARRIVAL_SLOW_SD), 60)
    var = ARRIVAL_WHITE_SD**2 + ARRIVAL_FAST_SD**2 + ARRIVAL_SLOW_SD**2
    counts = rng.poisson(lam * np.exp(x - var / 2))
    n = int(counts.sum())
    t = np.repeat(np.arange(86_400, dtype=np.int64) * 1000, counts)
    t += rng.integers(0, 1000, n)
    t.sort()
    # The feed's throttle: t'_i = max(t_i, t'_{i-1} + gap_i), as a running maximum.
    gaps = rng.choice(THROTTLE_GAPS_MS, n, p=THROTTLE_GAP_P)
    if intensity > 1.0:  # a denser synthetic feed publishes proportionally faster
        gaps = np.maximum(1, np.rint(gaps / intensity)).astype(np.int64)
    if n:
        gaps[0] = 0
    cum = np.cumsum(gaps)
    t = np.maximum.accumulate(t - cum) + cum
    t = t[t < MS_PER_DAY]
    return np.asarray(t[open_h[t // MS_PER_HOUR]])


def _steps(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` standardized mid steps with the real half-point step distribution."""
    size = np.searchsorted(_STEP_CDF, rng.random(n), side="right").clip(max=len(_STEP_CDF) - 1)
    sign = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    return np.asarray(sign * size / _STEP_SD)


def _bridge(rng: np.random.Generator, var: np.ndarray, start: float, end: float) -> np.ndarray:
    """Log mid at each tick: a bridge in tick time from ``start`` (00:00) to ``end``.

    ``var`` is each tick's variance. The clock is the ticks' cumulative variance, so the
    last tick lands on ``end`` (the next day's anchor, whose variance the anchors drew as the
    expected sum of ``var``) and the quiet time after it adds nothing.
    """
    free = np.cumsum(np.sqrt(var) * _steps(rng, len(var)))
    clock = np.cumsum(var)
    return np.asarray(start + free - clock / clock[-1] * (free[-1] - (end - start)))


def _spreads(
    rng: np.random.Generator, parity: np.ndarray, ny_hour: np.ndarray, ny_minute: np.ndarray
) -> np.ndarray:
    """Spread per tick, points, with the given parity (so bid and ask land on the point grid)."""
    cdf = _SPREAD_CDF[parity, ny_hour]
    spread = 1 + (rng.random(len(parity))[:, None] > cdf).sum(axis=1)
    bucket = (ny_minute - ROLLOVER_START_NY_MINUTE) % 1440 // 5
    inside = bucket < len(ROLLOVER_EXCESS_POINTS)
    if inside.any():
        k = int(inside.sum())
        s2 = ROLLOVER_EXCESS_DISPERSION**2
        half = ROLLOVER_EXCESS_POINTS[bucket[inside]] / 2 * rng.lognormal(-s2 / 2, math.sqrt(s2), k)
        whole = np.floor(half)
        extra = 2 * (whole + (rng.random(k) < half - whole))  # even: keeps the parity
        spread[inside] += extra.astype(spread.dtype)
    return np.asarray(spread)


def _volumes(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` volumes, millions, from the real ask/bid volume distribution (float32)."""
    u = rng.random(n)
    atom = np.searchsorted(_VOLUME_ATOM_CDF, u, side="right")
    is_atom = atom < len(VOLUME_ATOMS)
    q = (u - _VOLUME_ATOM_MASS) / (1.0 - _VOLUME_ATOM_MASS)
    tail = np.round(np.exp(np.interp(q, VOLUME_TAIL_PROBS, _LOG_VOLUME_TAIL)), 2)
    return np.where(is_atom, VOLUME_ATOMS[np.minimum(atom, len(VOLUME_ATOMS) - 1)], tail).astype(
        np.float32
    )


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------


def _check_symbol(symbol: str) -> str:
    if not (isinstance(symbol, str) and len(symbol) == 6 and symbol.isascii() and symbol.isalpha()):
        raise SyntheticError(f"symbol must be six letters such as 'EURUSD', got {symbol!r}")
    return symbol.upper()


def _check_day(name: str, day: dt.date, last: dt.date = LAST_DAY) -> None:
    if isinstance(day, dt.datetime) or not isinstance(day, dt.date):
        raise SyntheticError(f"{name} must be a datetime.date, got {type(day).__name__} {day!r}")
    if not EPOCH <= day <= last:
        raise SyntheticError(f"{name} must lie between {EPOCH} and {last}, got {day}")


def generate_day(symbol: str, day: dt.date, cfg: SyntheticConfig | None = None) -> pa.Table:
    """The synthetic ticks of one UTC day, in the canonical tick schema.

    Parameters
    ----------
    symbol : six letters, e.g. ``"EURUSD"``; prices land on its point grid (1e-5 for
        EUR/USD). The calibration is EUR/USD's whatever the symbol.
    day : UTC calendar day, between :data:`EPOCH` and :data:`LAST_DAY`.
    cfg : seed, ``start_price`` (mid at 00:00 UTC of :data:`EPOCH` and the level the price
        reverts to), ``intensity`` (multiplier on the real tick rate), ``annual_vol``
        (annualized volatility of the mid), and the optional planted ``edge`` with its
        ``edge_strength`` and ``edge_half_life_min``. Default: ``SyntheticConfig()``.

    Returns
    -------
    ``pa.Table`` with :data:`~aio_ray.schema.TICK_SCHEMA`: ``ts`` strictly increasing (UTC,
    ms), ``bid <= ask`` on the point grid, volumes in millions. Empty on Saturdays; Fridays
    end and Sundays begin at 17:00 New York. Depends only on ``(cfg, symbol, day)``.

    Raises
    ------
    SyntheticError : a bad symbol or a day outside the supported range.
    """
    cfg = cfg if cfg is not None else SyntheticConfig()
    symbol = _check_symbol(symbol)
    _check_day("day", day)
    ny_hour, open_h, off = hour_layout(day)
    if not open_h.any():
        return empty_ticks()
    n = (day - EPOCH).days
    rng = np.random.default_rng([_seed_words(cfg.seed), _symbol_key(symbol), 1, n])
    expected = TICKS_PER_NY_HOUR[ny_hour] * cfg.intensity
    t = _arrival_ms(rng, np.where(open_h, expected, 0.0), open_h, cfg.intensity)
    if len(t) == 0:
        return empty_ticks()
    hour = t // MS_PER_HOUR
    tick_ny_hour = ny_hour[hour]
    day_var_full = cfg.annual_vol**2 / TRADING_DAYS_PER_YEAR
    var = day_var_full * VOL_SHARE_NY_HOUR[tick_ny_hour] / expected[hour]
    anchors = _daily_anchors(cfg.seed, symbol, cfg.start_price, cfg.annual_vol)
    log_mid = _bridge(rng, var, float(anchors[n]), float(anchors[n + 1]))
    if cfg.edge != "none":  # its own stream: the other draws are those of edge="none"
        edge_rng = np.random.default_rng([_seed_words(cfg.seed), _symbol_key(symbol), 2, n])
        log_mid = log_mid + edge_at_ticks(edge_rng, cfg, open_h, t)
    point = point_size(symbol)
    mid2 = np.rint(2.0 * np.exp(log_mid) / point).astype(np.int64)  # mid in half points
    ny_minute = (t // 60_000 + off * 60) % 1440
    spread = _spreads(rng, mid2 & 1, tick_ny_hour, ny_minute)
    bid = np.maximum((mid2 - spread) // 2, 1)
    ask = np.maximum((mid2 + spread) // 2, bid)
    base_ms = n * MS_PER_DAY
    arrays = [
        pa.array(t + base_ms, type=pa.int64()).cast(TS_TYPE),
        pa.array(np.round(bid * point, 10)),
        pa.array(np.round(ask * point, 10)),
        pa.array(_volumes(rng, len(t))),
        pa.array(_volumes(rng, len(t))),
    ]
    return pa.Table.from_arrays(arrays, schema=TICK_SCHEMA)


def generate(
    symbol: str, start: dt.date, end: dt.date, cfg: SyntheticConfig | None = None
) -> Iterator[tuple[dt.date, pa.Table]]:
    """Yield ``(day, ticks)`` for every UTC day in ``[start, end)`` (end exclusive).

    Every calendar day is yielded, Saturdays with an empty table, so a caller can mark each
    day done. Each day is :func:`generate_day` of that day alone: the same ticks whether a
    day is generated inside a range or on its own.

    Raises
    ------
    SyntheticError : bad symbol, ``end`` before ``start``, or days outside the range.
    """
    symbol = _check_symbol(symbol)
    _check_day("start", start)
    _check_day("end", end, LAST_DAY + dt.timedelta(days=1))
    if end < start:
        raise SyntheticError(f"end ({end}) must not be before start ({start})")
    return _days(symbol, start, end, cfg)


def _days(
    symbol: str, start: dt.date, end: dt.date, cfg: SyntheticConfig | None
) -> Iterator[tuple[dt.date, pa.Table]]:
    day = start
    while day < end:
        yield day, generate_day(symbol, day, cfg)
        day += dt.timedelta(days=1)
