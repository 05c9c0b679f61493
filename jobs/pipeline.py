"""Ray job: the whole pipeline (ingest -> bars -> indicators -> search -> ranking -> library).

    ray job submit --working-dir . -- python jobs/pipeline.py --config configs/demo.yaml

Locally (``make demo``) it starts a Ray head in-process. Every stage reuses complete outputs,
so rerunning after a failure resumes. Prints the summary and, with ``--json``, one JSON line.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aio_ray.config import load_config  # noqa: E402
from aio_ray.errors import AioError  # noqa: E402
from aio_ray.pipeline import format_summary, run_pipeline  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", type=Path, default=Path("configs/demo.yaml"))
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="section.key=value")
    ap.add_argument("--json", action="store_true", help="print the summary as one JSON line")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        cfg = load_config(args.config, args.overrides)
        summary = run_pipeline(cfg)
    except AioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary, default=str) if args.json else format_summary(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
