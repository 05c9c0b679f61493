"""Benchmark: candlestick charts of 64 bars at 448x448 as PNG, ours (numpy + PNG) beside mplfinance.

Prints one JSON line on stdout (logs go to stderr)::

    python bench/charts.py               # 2,048 charts ours, 96 mplfinance, best of 3, + Ray Data
    python bench/charts.py --quick       # 256 ours, 16 mplfinance, best of 2, no Ray
    python bench/charts.py --charts 4096 --mpl-charts 200 --no-ray

The same windows (EUR/USD-like random-walk bars with volume, one window per chart) go to both:
``ours_charts_per_s`` is ``rasterize_batch`` (64 charts per call) + ``encode_png`` of each chart;
``ours_raster_only_charts_per_s`` leaves out the PNG; ``mplfinance_charts_per_s`` is
``mplfinance.plot(type="candle", volume=True, figsize=4.48 in, dpi=100)`` saved to PNG bytes.
``*_overlays_*`` draw SMA(20) and Bollinger(20, 2) bands on both sides as well. ``ray_charts_per_s``
renders ``--ray-charts`` windows with :func:`aio_ray.charts.render.render_windows_ray` on a
local Ray head (started before timing, one warm-up run), PNG included. Single-threaded figures
use one core; each is the best of ``--repeats`` interleaved runs.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import resource
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aio_ray.charts.raster import encode_png, rasterize_batch
from aio_ray.charts.render import overlay_lines

log = logging.getLogger("bench.charts")


def random_bars(n: int, seed: int) -> dict[str, np.ndarray]:
    """EUR/USD-like mid bars with volume: open, high, low, close (quote currency), volume."""
    rng = np.random.default_rng(seed)
    close = 1.10 + np.cumsum(rng.normal(0.0, 2e-4, n))
    open_ = np.concatenate([[close[0]], close[:-1]]) + rng.normal(0.0, 2e-5, n)
    high = np.maximum(open_, close) + np.abs(rng.normal(0.0, 1e-4, n))
    low = np.minimum(open_, close) - np.abs(rng.normal(0.0, 1e-4, n))
    volume = rng.gamma(2.0, 500.0, n)
    return {"open": open_, "high": high, "low": low, "close": close, "volume": volume}


def best_rate(fns: dict[str, tuple[Callable[[], object], int]], repeats: int) -> dict[str, float]:
    """Best charts/s of each function (called ``repeats`` times, interleaved, after a warm-up)."""
    for fn, _ in fns.values():
        fn()
    best = dict.fromkeys(fns, 0.0)
    for _ in range(repeats):
        for name, (fn, count) in fns.items():
            t0 = time.perf_counter()
            fn()
            best[name] = max(best[name], count / (time.perf_counter() - t0))
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--charts", type=int, default=2048, help="charts for our rasterizer")
    ap.add_argument("--mpl-charts", type=int, default=96, help="charts for mplfinance")
    ap.add_argument("--ray-charts", type=int, default=8192, help="charts through Ray Data")
    ap.add_argument("--window", type=int, default=64, help="bars per chart")
    ap.add_argument("--size", type=int, default=448, help="chart height = width, pixels")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--no-ray", action="store_true", help="skip the Ray Data measurement")
    ap.add_argument("--quick", action="store_true", help="256 / 16 charts, 2 repeats, no Ray")
    args = ap.parse_args()
    if args.quick:
        args.charts, args.mpl_charts, args.repeats, args.no_ray = 256, 16, 2, True
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    warnings.filterwarnings("ignore")

    import matplotlib

    matplotlib.use("Agg")
    import mplfinance as mpf
    import pandas as pd

    w, size = args.window, (args.size, args.size)
    n_bars = max(args.charts, args.mpl_charts, args.ray_charts) + w + 50
    bars = random_bars(n_bars, args.seed)
    lines = overlay_lines(bars["close"], ["sma_20", "bb_20"])
    starts = 50 + np.arange(args.charts)  # past the overlays' warm-up
    idx = starts[:, None] + np.arange(w)
    ohlc = np.stack([bars[k][idx] for k in ("open", "high", "low", "close")], axis=2)
    vol = bars["volume"][idx]
    ov = {k: v[idx] for k, v in lines.items()}
    batch = 64

    def ours(raster_only: bool, overlays: bool) -> Callable[[], None]:
        def run() -> None:
            for a in range(0, args.charts, batch):
                imgs = rasterize_batch(
                    ohlc[a : a + batch],
                    size=size,
                    volume=vol[a : a + batch],
                    overlays={k: v[a : a + batch] for k, v in ov.items()} if overlays else None,
                )
                if not raster_only:
                    for im in imgs:
                        encode_png(im)

        return run

    index = pd.date_range("2024-01-01", periods=n_bars, freq="1min")
    frame = pd.DataFrame(
        {
            "Open": bars["open"],
            "High": bars["high"],
            "Low": bars["low"],
            "Close": bars["close"],
            "Volume": bars["volume"],
        },
        index=index,
    )

    def mpl(overlays: bool) -> Callable[[], None]:
        def run() -> None:
            for s in starts[: args.mpl_charts]:
                sl = slice(int(s), int(s) + w)
                extra = {}
                if overlays:
                    extra["addplot"] = [mpf.make_addplot(v[sl], width=1.0) for v in lines.values()]
                buf = io.BytesIO()
                mpf.plot(
                    frame.iloc[sl],
                    type="candle",
                    volume=True,
                    style="yahoo",
                    figsize=(size[1] / 100, size[0] / 100),
                    savefig={"fname": buf, "dpi": 100, "format": "png"},
                    **extra,
                )

        return run

    log.info(
        "charts: %d ours, %d mplfinance, %d bars each, %dx%d px",
        args.charts,
        args.mpl_charts,
        w,
        *size,
    )
    rates = best_rate(
        {
            "ours": (ours(False, False), args.charts),
            "ours_raster_only": (ours(True, False), args.charts),
            "ours_overlays": (ours(False, True), args.charts),
            "mplfinance": (mpl(False), args.mpl_charts),
            "mplfinance_overlays": (mpl(True), args.mpl_charts),
        },
        args.repeats,
    )
    sample = encode_png(rasterize_batch(ohlc[:1], size=size, volume=vol[:1])[0])
    out: dict[str, object] = {
        "charts": args.charts,
        "mplfinance_charts": args.mpl_charts,
        "window": w,
        "size": list(size),
        "ours_charts_per_s": round(rates["ours"], 1),
        "ours_raster_only_charts_per_s": round(rates["ours_raster_only"], 1),
        "ours_overlays_charts_per_s": round(rates["ours_overlays"], 1),
        "mplfinance_charts_per_s": round(rates["mplfinance"], 2),
        "mplfinance_overlays_charts_per_s": round(rates["mplfinance_overlays"], 2),
        "ratio": round(rates["ours"] / rates["mplfinance"], 1),
        "ratio_overlays": round(rates["ours_overlays"] / rates["mplfinance_overlays"], 1),
        "png_bytes_mean": len(sample),
        "repeats": args.repeats,
    }
    if not args.no_ray:
        out.update(ray_rate(bars, args.ray_charts, w, size))
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(out))


def ray_rate(
    bars: dict[str, np.ndarray], charts: int, w: int, size: tuple[int, int]
) -> dict[str, object]:
    """Charts/s of render_windows_ray (stride 1, volume, SMA + Bollinger) on a local Ray head."""
    import polars as pl
    import ray

    from aio_ray.charts.render import render_windows_ray

    n = charts + w - 1
    frame = pl.DataFrame(
        {
            "ts": (np.arange(n, dtype=np.int64) * 60_000 + 1_704_067_200_000),
            **{f"mid_{k}": bars[k][:n] for k in ("open", "high", "low", "close")},
            "bid_volume": bars["volume"][:n] / 2,
            "ask_volume": bars["volume"][:n] / 2,
        }
    ).with_columns(pl.col("ts").cast(pl.Datetime("ms", "UTC")))
    if not ray.is_initialized():
        ray.init(
            address="local", include_dashboard=False, log_to_driver=False, configure_logging=False
        )
    cpus = int(ray.cluster_resources().get("CPU", 1))
    from ray.data import DataContext

    DataContext.get_current().enable_progress_bars = False
    kw = {"window": w, "stride": 1, "size": size, "windows_per_task": 512}
    # warm-up: one chunk per CPU, so that every worker has imported the renderer
    warm = render_windows_ray(frame.head(w - 1 + 64 * cpus), **dict(kw, windows_per_task=64))
    log.info("ray: warm-up %d charts on %d CPUs", warm.count(), cpus)
    t0 = time.perf_counter()
    done = render_windows_ray(frame, **kw).count()
    dt = time.perf_counter() - t0
    return {"ray_charts": done, "ray_cpus": cpus, "ray_charts_per_s": round(done / dt, 1)}


if __name__ == "__main__":
    main()
