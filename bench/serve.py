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
at 1,000 requests/s. The mixed run (``mixed_*``) sends ``GET /rankings`` at the same rate while
``--analyze-rate`` (5/s) ``POST /analyze`` of a 64-bar JSON window go on; the GETs' p99 must stay
under 20 ms and the analyses' p50/p99 and status counts are reported. ``peak_rss_mb`` is this process; ``serve_replica_rss_mb`` and
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


async def open_loop(
    url: str,
    rate: float,
    duration: float,
    post_url: str | None = None,
    post_body: bytes | None = None,
    post_rate: float = 0.0,
) -> dict[str, Any]:
    """``rate`` requests/s for ``duration`` s, each sent at its scheduled time, after
    :data:`WARMUP_S` s at the same rate whose requests are not counted. With ``post_url``,
    ``post_rate`` POSTs/s of ``post_body`` (JSON) go on at the same time, timed apart."""
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

        post_lat: list[float] = []
        post_codes: dict[int, int] = {}

        async def post(i: int) -> None:
            due = t0 + WARMUP_S + i / post_rate
            await asyncio.sleep(max(0.0, due - loop.time()))
            start = loop.time()
            try:
                async with session.post(
                    post_url, data=post_body, headers={"Content-Type": "application/json"}
                ) as r:
                    await r.read()
                    code = r.status
            except aiohttp.ClientError:
                code = 0
            post_codes[code] = post_codes.get(code, 0) + 1
            if code == 200:
                post_lat.append(loop.time() - start)

        n_post = int(post_rate * duration) if post_url else 0
        await asyncio.gather(*(one(i) for i in range(n)), *(post(i) for i in range(n_post)))
        wall = loop.time() - t0 - WARMUP_S
    extra: dict[str, Any] = {}
    if n_post:
        extra = {
            "post_p50_ms": pct(post_lat, 50),
            "post_p99_ms": pct(post_lat, 99),
            "post_status": {str(k): v for k, v in sorted(post_codes.items())},
        }
    return {
        **extra,
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


def load(url: str, mode: str, rate: float, duration: float, post: list[str] | None = None) -> Any:
    """Run the load generator in its own process (no Ray in it: the driver's threads would
    share its interpreter lock and stall its event loop); returns what it printed.
    ``post``: extra arguments of the mixed run (``--post-url``, ``--post-body``, ...)."""
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--loadgen", url, "--loadgen-mode", mode,
         "--rate", str(rate), "--duration", str(duration), *(post or [])],
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


def analyze_body(config: Path, n: int = 64) -> dict[str, Any]:
    """A ``POST /analyze`` JSON body: the latest ``n`` 1h mid bars of the config's library."""
    from aio_ray.bars.store import read_bars
    from aio_ray.config import load_config

    cfg = load_config(config)
    df = read_bars(cfg.data.bars_dir, "1h", cfg.data.symbol).tail(n)
    bars = [
        {
            "ts": int(r["ts"].timestamp() * 1000),
            "open": r["mid_open"],
            "high": r["mid_high"],
            "low": r["mid_low"],
            "close": r["mid_close"],
        }
        for r in df.iter_rows(named=True)
    ]
    return {"instrument": cfg.data.symbol, "timeframe": "1h", "bars": bars}


def measure_mixed(
    base: str, rate: float, duration: float, body_file: Path, post_rate: float
) -> dict[str, Any]:
    """GET /rankings at ``rate``/s while ``post_rate``/s of POST /analyze go on, after three
    analyses one by one (the first builds the model in the replica: reported apart)."""
    import httpx

    warm = []
    for _ in range(3):
        t0 = time.perf_counter()
        r = httpx.post(
            base + "/analyze",
            content=body_file.read_bytes(),
            timeout=120,
            headers={"Content-Type": "application/json"},
        )
        r.raise_for_status()
        warm.append(round((time.perf_counter() - t0) * 1000, 1))
    res = load(base + "/rankings", "open", rate, duration,
               ["--post-url", base + "/analyze", "--post-body", str(body_file),
                "--post-rate", str(post_rate)])  # fmt: skip
    log.info("mixed: %s", res)
    return {"mixed_analyze_first_ms": warm[0], "mixed_analyze_warm_ms": warm[1:],
            "mixed_rankings_rps": res["rps"], "mixed_rankings_p50_ms": res["p50_ms"],
            "mixed_rankings_p99_ms": res["p99_ms"], "mixed_rankings_errors": res["errors"],
            "mixed_analyze_per_s": post_rate, "mixed_analyze_p50_ms": res.get("post_p50_ms"),
            "mixed_analyze_p99_ms": res.get("post_p99_ms"),
            "mixed_analyze_status": res.get("post_status")}  # fmt: skip


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
    ap.add_argument(
        "--access-log", action="store_true", help="Serve with its per-request access log"
    )
    ap.add_argument(
        "--classic-proxy",
        action="store_true",
        help="Serve's Python proxy instead of the HAProxy ingress (the default here)",
    )
    ap.add_argument("--refresh-s", type=float, default=None, help="app's library check period, s")
    ap.add_argument("--replicas", type=int, default=1, help="Serve replicas")
    ap.add_argument(
        "--analyze-rate",
        type=float,
        default=5.0,
        help="POST /analyze per second in the mixed run (0: no mixed run)",
    )
    ap.add_argument("--loadgen", help=argparse.SUPPRESS)  # internal: be the load generator
    ap.add_argument("--post-url", help=argparse.SUPPRESS)
    ap.add_argument("--post-body", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--post-rate", type=float, default=0.0, help=argparse.SUPPRESS)
    ap.add_argument("--loadgen-mode", choices=("open", "closed"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.loadgen:
        import gc

        gc.collect()
        gc.freeze()  # the generator's own collections must not show up as server latency
        if args.loadgen_mode == "open":
            body = args.post_body.read_bytes() if args.post_body else None
            print(
                json.dumps(
                    asyncio.run(
                        open_loop(
                            args.loadgen,
                            args.rate,
                            args.duration,
                            args.post_url,
                            body,
                            args.post_rate,
                        )
                    )
                )
            )
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
    if args.analyze_rate > 0:
        body_file = Path(tmp.name) / "analyze.json"
        body_file.write_text(json.dumps(analyze_body(config)))
        out.update(measure_mixed(base, args.rate, args.duration, body_file, args.analyze_rate))
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
    if "mixed_rankings_p99_ms" in out:
        out["mixed_goal_met"] = bool(
            out["mixed_rankings_p99_ms"] < 20 and out["mixed_rankings_rps"] >= 0.95 * args.rate
        )
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    tmp.cleanup()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
