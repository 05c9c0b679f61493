"""Measure the figures the synthetic tick generator is calibrated on, from the real files.

Reads every hour file of the real Dukascopy EUR/USD mirror (default ``../shared/data/dukascopy``,
or ``AIO_SHARED_DATA``), decodes it with :func:`aio_ray.data.dukascopy.decode_ticks`, and
prints one JSON line on stdout with the measured figures. ``--python`` prints them instead as
the constant definitions used in ``aio_ray/data/synthetic_ticks.py``; ``--compare`` also generates the
same winter weekdays synthetically (at the measured volatility) and prints both sets of
figures side by side, on stderr, so the calibration can be checked by eye.

Usage::

    .venv/bin/python bench/calibrate_synthetic.py            # one JSON line
    .venv/bin/python bench/calibrate_synthetic.py --python   # constants as Python source
    .venv/bin/python bench/calibrate_synthetic.py --compare  # real vs synthetic, on stderr
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import os
import resource
import sys
import zoneinfo
from pathlib import Path

import numpy as np
import pyarrow as pa

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from aio_ray.data.dukascopy import decode_ticks, hour_path

NY = zoneinfo.ZoneInfo("America/New_York")
SHARED = Path(os.environ.get("AIO_SHARED_DATA", REPO.parent / "shared" / "data")) / "dukascopy"
ROLL_START_MIN = 16 * 60 + 55  # 16:55 New York, start of the rollover spread window
ROLL_BUCKETS = 25  # 5-minute buckets: 16:55 .. 19:00 New York
MAX_SPREAD = 8  # spread pmf bins 1..8 points (8 = "8 or more") outside the rollover window
MAX_STEP = 8  # mid step pmf bins 0..8 half points (8 = "8 or more")
VOLUME_TAIL_PROBS = (
    0,
    0.05,
    0.1,
    0.15,
    0.2,
    0.25,
    0.3,
    0.35,
    0.4,
    0.45,
    0.5,
    0.55,
    0.6,
    0.65,
    0.7,
    0.75,
    0.8,
    0.85,
    0.9,
    0.93,
    0.96,
    0.98,
    0.99,
    0.995,
    0.999,
    1,
)


def real_days(root: Path) -> list[tuple[dt.date, pa.Table]]:
    """Every complete day (24 hour files) of EURUSD found under ``root``."""
    days = []
    for d in sorted((root / "EURUSD").glob("*/*/*")):
        y, m, dd = int(d.parts[-3]), int(d.parts[-2]) + 1, int(d.parts[-1])
        day = dt.date(y, m, dd)
        hours = []
        for h in range(24):
            start = dt.datetime(y, m, dd, h)
            f = root / hour_path("EURUSD", start)
            if not f.exists():
                break
            hours.append(decode_ticks(f.read_bytes(), start, "EURUSD", str(f)))
        if len(hours) == 24:
            days.append((day, pa.concat_tables(hours)))
    return days


def ny_offset_h(day: dt.date) -> int:
    """New York's UTC offset (hours) during the trading hours of the UTC day ``day``."""
    t = dt.datetime(day.year, day.month, day.day, 23, tzinfo=dt.UTC)
    return int(t.astimezone(NY).utcoffset().total_seconds() // 3600)


def measure(days: list[tuple[dt.date, pa.Table]]) -> dict:
    """The calibration figures of whole trading days of ticks (see module docstring)."""
    n_days = len(days)
    ticks_h = np.zeros(24)
    var_h = np.zeros(24)
    spread_h = np.zeros((24, MAX_SPREAD))
    roll_excess = np.zeros((n_days, ROLL_BUCKETS))
    steps = np.zeros(MAX_STEP + 1)
    gaps: list[np.ndarray] = []
    vols: list[np.ndarray] = []
    daily_var = []
    spreads_all = []
    for i, (day, t) in enumerate(days):
        off = ny_offset_h(day)
        ts = t["ts"].cast(pa.int64()).to_numpy()
        bid = np.rint(t["bid"].to_numpy() * 1e5).astype(np.int64)
        ask = np.rint(t["ask"].to_numpy() * 1e5).astype(np.int64)
        sp = ask - bid
        spreads_all.append(sp)
        ms_day = ts - ts[0] // 86_400_000 * 86_400_000
        ny_min = (ms_day // 60_000 + off * 60) % 1440
        ny_hour = ny_min // 60
        ticks_h += np.bincount(ny_hour, minlength=24)
        # Spread outside the rollover window, by New York hour.
        in_roll = (ny_min - ROLL_START_MIN) % 1440 < ROLL_BUCKETS * 5
        np.add.at(spread_h, (ny_hour[~in_roll], np.minimum(sp[~in_roll], MAX_SPREAD) - 1), 1)
        # Mid steps in half points.
        m2 = bid + ask
        dk = np.minimum(np.abs(np.diff(m2)), MAX_STEP)
        steps += np.bincount(dk, minlength=MAX_STEP + 1)
        gaps.append(np.diff(ts))
        vols.append(t["ask_volume"].to_numpy().astype(np.float64))
        vols.append(t["bid_volume"].to_numpy().astype(np.float64))
        # Realized variance from the last mid of each minute (log returns), by New York hour.
        lm = np.log((bid + ask) / 2e5)
        minute = ms_day // 60_000
        idx = np.full(1440, -1)
        idx[minute] = np.arange(len(lm))  # ticks are sorted: the last tick of a minute wins
        idx = np.maximum.accumulate(idx)
        last = lm[np.maximum(idx, 0)]
        r = np.diff(last)
        r_hour = (np.arange(1, 1440) // 60 + off) % 24  # hour of the minute the return ends in
        var_h += np.bincount(r_hour, weights=r * r, minlength=24)
        daily_var.append(float((r * r).sum()))
        # Rollover excess spread, 5-minute buckets from 16:55 New York.
        for b in range(ROLL_BUCKETS):
            sel = in_roll & ((ny_min - ROLL_START_MIN) % 1440 // 5 == b)
            if sel.any():
                roll_excess[i, b] = sp[sel].mean()
    ticks_h /= n_days
    share = var_h / var_h.sum()
    pmf = spread_h / spread_h.sum(axis=1, keepdims=True).clip(min=1)
    # New York hours inside the rollover window have no ticks outside it: borrow 19:00's.
    for h in range(24):
        if spread_h[h].sum() == 0:
            pmf[h] = pmf[19]
    base_mean_h = (pmf * np.arange(1, MAX_SPREAD + 1)).sum(axis=1)
    bucket_hour = (ROLL_START_MIN + 5 * np.arange(ROLL_BUCKETS)) // 60 % 24
    excess = np.clip(roll_excess.mean(axis=0) - base_mean_h[bucket_hour], 0, None)
    step_pmf = steps / steps.sum()
    g = np.concatenate(gaps)
    v = np.concatenate(vols)
    c = collections.Counter(np.round(v, 2))
    atoms = c.most_common(24)
    atom_vals = np.array([a for a, _ in atoms])
    atom_p = np.array([n for _, n in atoms]) / len(v)
    rest = v[~np.isin(np.round(v, 2), atom_vals)]
    tail_q = np.quantile(rest, VOLUME_TAIL_PROBS)
    tail_q[-1] = np.quantile(rest, 0.9999)  # the very largest prints are single outliers
    sp_all = np.concatenate(spreads_all)
    dv = float(np.mean(daily_var))
    return {
        "days": [str(d) for d, _ in days],
        "ticks_per_day": float(ticks_h.sum()),
        "ticks_per_ny_hour": np.round(ticks_h, 1).tolist(),
        "vol_share_ny_hour": np.round(share, 5).tolist(),
        "daily_vol_1m": float(np.sqrt(dv)),
        "annual_vol_1m": float(np.sqrt(dv * 260)),
        "hourly_vol_1m_ny_hour": np.round(np.sqrt(var_h / n_days), 7).tolist(),
        "spread_pmf_ny_hour": np.round(pmf, 4).tolist(),
        "spread_median_points": float(np.median(sp_all)),
        "spread_quantiles_points": np.quantile(sp_all, [0.1, 0.5, 0.9, 0.99]).tolist(),
        "rollover_excess_points": np.round(excess, 2).tolist(),
        "step_pmf_half_points": np.round(step_pmf, 5).tolist(),
        "gap_ms_quantiles": np.quantile(g, [0.05, 0.25, 0.5, 0.75, 0.95, 0.99]).tolist(),
        "gap_frac_50_55": float(((g >= 50) & (g <= 55)).mean()),
        "gap_frac_100_105": float(((g >= 100) & (g <= 105)).mean()),
        "volume_atoms": [[float(a), float(p)] for a, p in zip(atom_vals, np.round(atom_p, 5))],
        "volume_tail_quantiles": np.round(tail_q, 2).tolist(),
        "volume_quantiles": np.quantile(v, [0.05, 0.25, 0.5, 0.75, 0.95, 0.99]).tolist(),
        "fano": fano(days),
    }


def fano(days: list[tuple[dt.date, pa.Table]]) -> dict[str, float]:
    """Median over hours of the variance/mean of tick counts in 1 s, 10 s and 60 s windows."""
    out: dict[str, list[float]] = {"1s": [], "10s": [], "60s": []}
    for _, t in days:
        ts = t["ts"].cast(pa.int64()).to_numpy()
        ms = ts - ts[0] // 86_400_000 * 86_400_000
        for w, key in ((1000, "1s"), (10_000, "10s"), (60_000, "60s")):
            cnt = np.bincount(ms // w, minlength=86_400_000 // w)
            per = 3_600_000 // w
            for h in range(24):
                c = cnt[h * per : (h + 1) * per]
                if c.mean() > 0:
                    out[key].append(float(c.var() / c.mean()))
    return {k: float(np.median(v)) for k, v in out.items()}


def as_python(fig: dict) -> str:
    """The figures as the constant definitions of aio_ray/data/synthetic_ticks.py."""
    lines = [
        f"TICKS_PER_NY_HOUR = {tuple(fig['ticks_per_ny_hour'])}",
        f"VOL_SHARE_NY_HOUR = {tuple(fig['vol_share_ny_hour'])}",
        f"REAL_ANNUAL_VOL = {fig['annual_vol_1m']:.5f}",
        "SPREAD_PMF_NY_HOUR = (",
        *[f"    {tuple(row)}," for row in fig["spread_pmf_ny_hour"]],
        ")",
        f"ROLLOVER_EXCESS_POINTS = {tuple(fig['rollover_excess_points'])}",
        f"STEP_PMF_HALF_POINTS = {tuple(fig['step_pmf_half_points'])}",
        f"VOLUME_ATOMS = {tuple(a for a, _ in fig['volume_atoms'])}",
        f"VOLUME_ATOM_P = {tuple(p for _, p in fig['volume_atoms'])}",
        f"VOLUME_TAIL_PROBS = {VOLUME_TAIL_PROBS}",
        f"VOLUME_TAIL_QUANTILES = {tuple(fig['volume_tail_quantiles'])}",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", type=Path, default=SHARED, help="Dukascopy mirror root")
    ap.add_argument("--python", action="store_true", help="print the figures as Python constants")
    ap.add_argument("--compare", action="store_true", help="also measure synthetic days (stderr)")
    ap.add_argument("--quick", action="store_true", help="accepted for bench uniformity")
    args = ap.parse_args()
    days = real_days(args.root)
    if not days:
        sys.exit(f"no complete EURUSD days under {args.root}")
    fig = measure(days)
    if args.compare:
        from aio_ray.config import SyntheticConfig
        from aio_ray.data.synthetic_ticks import REAL_ANNUAL_VOL, generate_day

        cfg = SyntheticConfig(annual_vol=REAL_ANNUAL_VOL)
        syn_days = [dt.date(2019, 2, 4) + dt.timedelta(days=k) for k in range(28) if k % 7 < 4]
        syn = measure([(d, generate_day("EURUSD", d, cfg)) for d in syn_days])
        for key in fig:
            if key != "days":
                print(f"{key}\n  real {fig[key]}\n  syn  {syn[key]}", file=sys.stderr)
    fig["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(as_python(fig) if args.python else json.dumps(fig))


if __name__ == "__main__":
    main()
