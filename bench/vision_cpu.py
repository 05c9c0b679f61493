"""Benchmark: the CPU vision backend's model (ChartNet) on this machine, images per second.

Prints one JSON line on stdout (logs go to stderr)::

    python bench/vision_cpu.py              # 1,024 charts of 64 bars at 448x448, best of 3
    python bench/vision_cpu.py --quick      # 128 charts, best of 2 (smoke run)

Measured, each the best of ``--repeats`` runs after one untimed warm-up:

* ``predict_b64_images_per_s`` / ``predict_b256_images_per_s``: :func:`aio_ray.vision.model.
  predict` on ready palette images (coverage planes + forward pass), batch 64 / 256;
* ``forward_b256_images_per_s``: the net alone on ready coverage planes;
* ``raster_images_per_s``: :func:`aio_ray.charts.raster.rasterize_batch` of the windows;
* ``end_to_end_images_per_s``: bar windows -> raster -> predict (batch 256), no mplfinance,
  no PNG (the CPU backend hands the palette image straight to the model).

No peer: nothing else here classifies charts; the raster's own peer (mplfinance) is measured
by ``bench/charts.py``. ``threads`` is torch's intra-op thread count (``--threads``).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aio_ray.charts.raster import PALETTE, rasterize_batch
from aio_ray.patterns.synthetic_windows import random_walk_ohlc
from aio_ray.vision.model import (
    DEFAULT_WEIGHTS,
    MODEL_ID,
    ChartNet,
    ModelError,
    chart_input,
    load_chartnet,
    predict,
)


def best(fn: Callable[[], object], repeats: int) -> float:
    fn()
    t = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        t = min(t, time.perf_counter() - t0)
    return t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--charts", type=int, default=1024)
    ap.add_argument("--bars", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--quick", action="store_true", help="128 charts, 2 repeats")
    args = ap.parse_args()
    if args.quick:
        args.charts, args.repeats = 128, 2
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        net, weights = load_chartnet(), str(DEFAULT_WEIGHTS)
    except ModelError as exc:  # timing does not depend on the weights' values
        print(
            f"shipped weights unusable ({exc}); timing a randomly initialised net", file=sys.stderr
        )
        net, weights = ChartNet(len(PALETTE)).eval(), "random-init"

    ohlc = np.stack(
        [np.stack(random_walk_ohlc(args.bars, seed=i), axis=1) for i in range(args.charts)]
    )
    n = len(ohlc)
    print(
        f"{n} charts of {args.bars} bars, torch threads {torch.get_num_threads()}", file=sys.stderr
    )
    images = rasterize_batch(ohlc)
    planes = chart_input(images, len(PALETTE))

    def forward() -> None:
        with torch.inference_mode():
            for a in range(0, n, 256):
                net(planes[a : a + 256])

    def end_to_end() -> None:
        for a in range(0, n, 256):
            predict(net, rasterize_batch(ohlc[a : a + 256]), batch_size=256)

    t_raster = best(
        lambda: [rasterize_batch(ohlc[a : a + 256]) for a in range(0, n, 256)], args.repeats
    )
    t64 = best(lambda: predict(net, images, batch_size=64), args.repeats)
    t256 = best(lambda: predict(net, images, batch_size=256), args.repeats)
    t_fwd = best(forward, args.repeats)
    t_e2e = best(end_to_end, args.repeats)
    out = {
        "bench": "vision_cpu",
        "model": MODEL_ID,
        "weights": weights,
        "charts": n,
        "bars": args.bars,
        "size": [448, 448],
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "predict_b64_images_per_s": round(n / t64, 1),
        "predict_b256_images_per_s": round(n / t256, 1),
        "forward_b256_images_per_s": round(n / t_fwd, 1),
        "raster_images_per_s": round(n / t_raster, 1),
        "end_to_end_images_per_s": round(n / t_e2e, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
