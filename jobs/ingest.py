"""Ray job: ingest ticks and build bars, as configured.

    ray job submit --working-dir . -- python jobs/ingest.py --config configs/demo.yaml

Runs the same code as ``aio ingest`` + ``aio bars``; joins the cluster the job runs on.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aio_ray.config import load_config
from aio_ray.logsetup import configure_logging
from aio_ray.pipeline import run_bars, run_ingest
from aio_ray.raycluster import ensure_ray

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--config", type=Path, default=Path("configs/demo.yaml"))
    ap.add_argument(
        "--set", dest="overrides", action="append", default=[], help="section.key=value"
    )
    args = ap.parse_args(argv)
    cfg = load_config(args.config, args.overrides)
    configure_logging(cfg.logging.level, cfg.logging.format)
    ensure_ray(cfg.ray)
    report = run_ingest(cfg)
    bars = run_bars(cfg)
    print(
        json.dumps(
            {"ingest": report.to_dict()["totals"], "errors": report.errors, "bars": bars},
            default=str,
        )
    )
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
