"""Ray job: the strategy search (Ray Tune + Optuna) on an existing bars folder, then ranking.

    ray job submit --working-dir . -- python jobs/optimize.py --config configs/demo.yaml \
        --bars data/demo/bars [--resume]

Search settings come from the configuration's ``search`` section (override with --set);
results go to the configuration's library URL (or --db).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aio_ray.config import load_config
from aio_ray.errors import AioError
from aio_ray.logsetup import configure_logging
from aio_ray.pipeline import run_optimize
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
    ap.add_argument(
        "--bars", type=Path, help="bars folder (default: the configuration's workdir/bars)"
    )
    ap.add_argument("--db", help="library URL (default from the configuration)")
    ap.add_argument("--run-id", help="run id (default: derived from the settings and bars folder)")
    ap.add_argument("--resume", action="store_true", help="continue an interrupted run")
    args = ap.parse_args(argv)
    configure_logging()
    try:
        cfg = load_config(args.config, args.overrides)
        configure_logging(cfg.logging.level, cfg.logging.format)
        ensure_ray(cfg.ray)
        out = run_optimize(
            args.bars or cfg.data.bars_dir,
            cfg,
            run_id=args.run_id,
            resume=args.resume,
            db_url=args.db,
        )
    except AioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        json.dumps(
            {
                "run_id": out.run_id,
                "complete": out.complete,
                "trials_ok": out.n_ok,
                "errors": out.errors,
                "trials_failed": out.n_failed,
                "seeds": out.seeds,
                "top": [
                    {
                        "strategy_id": r.strategy_id,
                        "family": r.family,
                        "params": dict(r.params),
                        "score": r.score,
                    }
                    for r in out.ranking
                ],
            },
            default=str,
        )
    )
    return 0 if out.complete else 1


if __name__ == "__main__":
    raise SystemExit(main())
