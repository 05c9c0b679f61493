"""Benchmark: requests/s and latency of ``GET /rankings`` and ``GET /strategies/{id}/pine``.

Prints one JSON line on stdout (logs to stderr)::

    python bench/serve.py                          # library of configs/demo.yaml (make demo)
    python bench/serve.py --config configs/X.yaml  # another pipeline config's library
    python bench/serve.py --quick                  # short smoke run

Without a ranked library at ``--config`` a tiny one is built first by a real pipeline run on
synthetic ticks in a temporary folder (not timed). The app then runs on Ray Serve (a local Ray
head of 2 CPUs started here, the HTTP proxy on a free loopback port) and, as the peer in the
same run, the same FastAPI app under plain uvicorn in a subprocess (no Ray: the proxy hop's
cost shows as the difference).

Load: an open-loop aiohttp generator in a separate process (no Ray in it: the driver's
threads would share its interpreter lock and stall its event loop) sends requests at a fixed
rate (``--rate``, default 1,000/s) for ``--duration`` seconds after one second of warm-up at
the same rate (connections opened; not counted), each at its scheduled time, bounded in count
and in-flight requests (256) and to 127.0.0.1 only. Latency runs come first; then a closed
loop (32 clients, same duration) measures the maximum rate (a saturating run last, so its
backlogs do not land in a latency run). Latency is from sending a request to having read its
whole response; ``*_p99_sched_ms`` counts from the scheduled send instead (it includes any lag
of the generator, which shares the machine's 2 cores with the server). Serve runs without its
per-request access log unless ``--access-log`` (the app's default too). Goal: p99 under 20 ms
at 1,000 requests/s. ``peak_rss_mb`` is this process; ``serve_replica_rss_mb`` and
``serve_proxy_rss_mb`` the Serve actors' resident memory at the end; ``peer_rss_mb`` uvicorn's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

log = logging.getLogger("bench.serve")
MAX_INFLIGHT = 256
CLIENTS = 32


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tiny_library(root: Path) -> Path:
    """Run the real pipeline on 10 days of synthetic ticks; returns its config path."""
    import yaml

    from aio_ray.config import load_config
    from aio_ray.pipeline import run_pipeline

    work = root / "work"
    tree = {
        "data": {"source": "synthetic", "start": "2025-07-01", "end": "2025-07-11",
                 "workdir": str(work)},
        "bars": {"timeframes": ["1m", "15m", "1h"]},
        "search": {"timeframes": ["15m", "1h"], "n_trials": 16, "seed": 3, "n_folds": 2,
                   "holdout_fraction": 0.25, "warmup_bars": 30, "ranking": {"min_trades": 3}},
        "library": {"url": f"sqlite:///{work}/library.db"},
    }  # fmt: skip
    path = root / "bench.yaml"
    path.write_text(yaml.safe_dump(tree))
    run_pipeline(load_config(path))
    return path


def has_ranking(config: Path) -> bool:
    from serve.service import Core

    try:
        return bool(Core({"app_config": str(config)}).rankings()["strategies"])
    except Exception as exc:  # noqa: BLE001 - any failure means: build a library instead
        log.info("no usable library at %s (%s)", config, exc)
        return False


def pct(a: list[float], q: float) -> float:
    return round(float(np.percentile(np.asarray(a) * 1000.0, q)), 3) if a else float("nan")


WARMUP_S = 1.0
"""Seconds of load at the target rate before measuring (connections opened, caches warm)."""


async def open_loop(url: str, rate: float, duration: float) -> dict[str, Any]:
    """``rate`` requests/s for ``duration`` s, each sent at its scheduled time, after
    :data:`WARMUP_S` s at the same rate whose requests are not counted."""
    import aiohttp

    skip = int(rate * WARMUP_S)
    n = skip + max(1, int(rate * duration))
    loop = asyncio.get_running_loop()
    lat: list[float] = []
    sched: list[float] = []
    slow: list[float] = []
    errors = 0
    sem = asyncio.Semaphore(MAX_INFLIGHT)
    conn = aiohttp.TCPConnector(limit=MAX_INFLIGHT)
    async with aiohttp.ClientSession(connector=conn) as session:
        async with session.get(url) as r:  # warm the connection and the app's cache
            await r.read()
        t0 = loop.time() + 0.05

        async def one(i: int) -> None:
            nonlocal errors
            due = t0 + i / rate
            await asyncio.sleep(max(0.0, due - loop.time()))
            async with sem:
                start = loop.time()
                try:
                    async with session.get(url) as r:
                        await r.read()
                        ok = r.status == 200
                except aiohttp.ClientError:
                    ok = False
                end = loop.time()
            if i < skip:
                return
            if ok:
                lat.append(end - start)
                sched.append(end - due)
                if end - start > 0.02:
                    slow.append(round(due - t0 - WARMUP_S, 3))
            else:
                errors += 1

        await asyncio.gather(*(one(i) for i in range(n)))
        wall = loop.time() - t0 - WARMUP_S
    return {
        "rps": round(len(lat) / wall, 1),
        "p50_ms": pct(lat, 50),
        "p99_ms": pct(lat, 99),
        "p99_sched_ms": pct(sched, 99),
        "errors": errors,
        "requests": n - skip,
        "slow_at_s": sorted(slow)[:: max(1, len(slow) // 20)],
    }


async def closed_loop(url: str, duration: float) -> float:
    """Requests/s of :data:`CLIENTS` clients each sending back-to-back for ``duration`` s."""
    import aiohttp

    loop = asyncio.get_running_loop()
    done = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CLIENTS)) as session:
        end = loop.time() + duration

        async def client() -> None:
            nonlocal done
            while loop.time() < end:
                async with session.get(url) as r:
                    await r.read()
                    done += r.status == 200

        t0 = loop.time()
        await asyncio.gather(*(client() for _ in range(CLIENTS)))
        return round(done / (loop.time() - t0), 1)


def load(url: str, mode: str, rate: float, duration: float) -> Any:
    """Run the load generator in its own process (no Ray in it: the driver's threads would
    share its interpreter lock and stall its event loop); returns what it printed."""
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--loadgen", url, "--loadgen-mode", mode,
         "--rate", str(rate), "--duration", str(duration)],
        capture_output=True, text=True, timeout=duration * 4 + 60, check=True,
    )  # fmt: skip
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure(base: str, sid: str, rate: float, duration: float, prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    paths = (("rankings", "/rankings"), ("pine", f"/strategies/{sid}/pine"))
    # latency at the target rate first, saturation (maximum rate) last: a saturating run
    # leaves backlogs (metrics, logs) that would otherwise land in the next latency run
    for name, path in paths:
        res = load(base + path, "open", rate, duration)
        log.info("%s%s at %s/s: %s", prefix, name, rate, res)
        out[f"{prefix}{name}_rps"] = res["rps"]
        out[f"{prefix}{name}_p50_ms"] = res["p50_ms"]
        out[f"{prefix}{name}_p99_ms"] = res["p99_ms"]
        out[f"{prefix}{name}_p99_sched_ms"] = res["p99_sched_ms"]
        out[f"{prefix}{name}_errors"] = res["errors"]
    for name, path in paths:
        out[f"{prefix}{name}_max_rps"] = load(base + path, "closed", rate, duration)
    return out


def wait_healthy(base: str, timeout: float = 90.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/health", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{base} did not become healthy in {timeout} s")


def actor_rss_mb(marker: str) -> float:
    import psutil

    total = 0
    for p in psutil.process_iter(["cmdline", "memory_info"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if marker in cmd and p.info["memory_info"] is not None:
            total += p.info["memory_info"].rss
    return round(total / 2**20, 1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", type=Path, default=REPO / "configs" / "demo.yaml")
    ap.add_argument("--rate", type=float, default=1000.0, help="open-loop requests/s")
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per measurement")
    ap.add_argument("--quick", action="store_true", help="rate 300/s for 1.5 s (smoke run)")
    ap.add_argument("--no-peer", action="store_true", help="skip the uvicorn peer")
    ap.add_argument("--access-log", action="store_true", help="Serve with its per-request access log")
    ap.add_argument("--classic-proxy", action="store_true",
                    help="Serve's Python proxy instead of the HAProxy ingress (the default here)")
    ap.add_argument("--refresh-s", type=float, default=None, help="app's library check period, s")
    ap.add_argument("--replicas", type=int, default=1, help="Serve replicas")
    ap.add_argument("--loadgen", help=argparse.SUPPRESS)  # internal: be the load generator
    ap.add_argument("--loadgen-mode", choices=("open", "closed"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.loadgen:
        import gc

        gc.collect()
        gc.freeze()  # the generator's own collections must not show up as server latency
        if args.loadgen_mode == "open":
            print(json.dumps(asyncio.run(open_loop(args.loadgen, args.rate, args.duration))))
        else:
            print(json.dumps(asyncio.run(closed_loop(args.loadgen, args.duration))))
        return 0
    if not args.classic_proxy:
        from aio_ray.raycluster import enable_fast_serve_ingress

        enable_fast_serve_ingress()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s: %(message)s")
    if args.quick:
        args.rate, args.duration = 300.0, 1.5
    args.duration = min(args.duration, 30.0)

    import ray
    from ray import serve as ray_serve

    tmp = tempfile.TemporaryDirectory(prefix="aio-bench-serve-")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(REPO)}})  # fmt: skip
    config = args.config.resolve()
    built = False
    if not has_ranking(config):
        log.info("building a tiny library (real pipeline, synthetic ticks)...")
        config, built = tiny_library(Path(tmp.name)), True

    from serve.app import build
    from serve.service import Core

    sid = Core({"app_config": str(config)}).rankings()["strategies"][0]["strategy_id"]
    port = free_port()
    quiet = None if args.access_log else {"enable_access_log": False}
    ray_serve.start(http_options={"host": "127.0.0.1", "port": port}, logging_config=quiet)
    extra: dict[str, Any] = {"num_replicas": args.replicas}
    if args.refresh_s is not None:
        extra["refresh_s"] = args.refresh_s
    app = build({"app_config": str(config), "num_cpus": 0, "access_log": args.access_log, **extra})
    ray_serve.run(app, name="aio-bench", route_prefix="/")
    base = f"http://127.0.0.1:{port}"
    wait_healthy(base)
    out: dict[str, Any] = {
        "bench": "serve",
        "target_rps": args.rate,
        "duration_s": args.duration,
        "library": "tiny (built)" if built else str(config),
        "cpus": os.cpu_count(),
    }
    out.update(measure(base, sid, args.rate, args.duration, ""))
    out["serve_replica_rss_mb"] = actor_rss_mb("ServeReplica:aio-bench")
    out["serve_proxy_rss_mb"] = actor_rss_mb("ProxyActor")
    ray_serve.shutdown()
    ray.shutdown()

    if not args.no_peer:
        pport = free_port()
        env = {**os.environ, "AIO_APP_CONFIG": str(config), "PYTHONPATH": str(REPO)}
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "serve.app:asgi_app", "--host",
             "127.0.0.1", "--port", str(pport), "--log-level", "warning", "--no-access-log"],
            env=env, cwd=REPO, stdout=sys.stderr, stderr=sys.stderr,
        )  # fmt: skip
        try:
            wait_healthy(f"http://127.0.0.1:{pport}")
            out.update(measure(f"http://127.0.0.1:{pport}", sid, args.rate, args.duration,
                               "peer_uvicorn_"))  # fmt: skip
            import psutil

            out["peer_rss_mb"] = round(psutil.Process(proc.pid).memory_info().rss / 2**20, 1)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    out["goal_met"] = bool(
        out["rankings_p99_ms"] < 20 and out["pine_p99_ms"] < 20
        and out["rankings_rps"] >= 0.95 * args.rate and out["pine_rps"] >= 0.95 * args.rate
    )  # fmt: skip
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    tmp.cleanup()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
