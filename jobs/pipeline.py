"""Ray job: the whole pipeline (ingest -> bars -> indicators -> search -> ranking -> library).

    ray job submit --working-dir . -- python jobs/pipeline.py --config configs/demo.yaml

Locally (``make demo``: ``--serve``) it starts a Ray head in-process and, after the summary,
serves the results (API + dashboard) and prints the URL. Every stage reuses complete outputs,
so rerunning after a failure resumes. Prints the summary and, with ``--json``, one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import sys
import threading
from pathlib import Path

import ray

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aio_ray.config import load_config
from aio_ray.errors import AioError
from aio_ray.logsetup import configure_logging
from aio_ray.pipeline import format_summary, run_pipeline
from aio_ray.raycluster import enable_fast_serve_ingress

__all__ = ["main", "serve_forever"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--config", type=Path, default=Path("configs/demo.yaml"))
    ap.add_argument(
        "--set", dest="overrides", action="append", default=[], help="section.key=value"
    )
    ap.add_argument("--json", action="store_true", help="print the summary as one JSON line")
    ap.add_argument(
        "--serve",
        action="store_true",
        help="then serve the results (API + dashboard) on this Ray until Ctrl-C",
    )
    ap.add_argument("--host", default="127.0.0.1", help="with --serve: address to listen on")
    ap.add_argument("--port", type=int, default=8000, help="with --serve: HTTP port")
    args = ap.parse_args(argv)
    if args.serve:
        enable_fast_serve_ingress()  # before the Ray head starts in this process
    if args.serve and not os.environ.get("AIO_CONTROL_TOKEN"):
        # a one-off token for this demo session; replicas inherit it from the Ray head started here
        os.environ["AIO_CONTROL_TOKEN"] = secrets.token_hex(16)
    configure_logging()
    try:
        cfg = load_config(args.config, args.overrides)
        configure_logging(cfg.logging.level, cfg.logging.format)
        summary = run_pipeline(cfg)
    except AioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary, default=str) if args.json else format_summary(summary), flush=True)
    if args.serve:
        return serve_forever(args.config, args.host, args.port)
    return 0


def serve_forever(config: Path, host: str, port: int) -> int:
    """Deploy the Serve app (API + dashboard + control) over this run's library; block."""
    # ray.serve reads the RAY_SERVE_* settings when imported: only after
    # enable_fast_serve_ingress() has set them (main), so these imports stay here
    from ray import serve as ray_serve

    from serve.app import build  # imports ray.serve (see above)

    ray_serve.start(http_options={"host": host, "port": port})
    ray_serve.run(build({"app_config": str(config.resolve())}), name="aio", route_prefix="/")
    base = f"http://{host}:{port}"
    print(f"serving: {base}/dashboard   API: {base}/rankings   docs: {base}/docs", flush=True)
    print(
        f"control token (Authorization: Bearer ...): {os.environ['AIO_CONTROL_TOKEN']}", flush=True
    )
    print("Ctrl-C to stop", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    print("stopping...", flush=True)

    # a graceful Serve shutdown can wait 30 s for its controller; give it a few seconds, then
    # stop Ray (this process started the head, so that ends every actor)
    t = threading.Thread(target=ray_serve.shutdown, daemon=True)
    t.start()
    t.join(timeout=5.0)
    ray.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    # Ray Tune's exit hook can block on a key-value call once the head is gone; everything is
    # stopped and flushed, so leave without running exit hooks.
    os._exit(0)


if __name__ == "__main__":
    raise SystemExit(main())
