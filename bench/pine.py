"""Benchmark of the Pine export: generation rate, warm parse time, PineTS run time.

Prints one JSON line on stdout (logs on stderr):

- ``scripts_per_s``: scripts generated per second (6 families x strategy/indicator);
- ``parse_ms_per_script``: pynescript parse time per script once the parser is warm
  (``parse_warmup_s``: the first pass over the 12 scripts in a fresh process, which loads the
  parser cache of :mod:`aio_ray.pine.parser_cache` when there is one);
- ``pinets_seconds_100k_bars``: wall time of one PineTS run (Node start, transpile, run,
  JSON back) of a generated ``strategy`` script on N synthetic 1-minute bars (``--bars``,
  100,000 by default), with ``pinets_run_seconds`` the part inside Node; the peer measured
  on the same bars is our engine (``engine_seconds``: the family's signals + backtest) and
  ``verify_seconds``, the whole parity check;
- ``peak_rss_mb`` (this process) and ``node_rss_mb`` (the Node process after the run).

- ``verify5``: verifying 5 strategy scripts of different families on 15m bars, cold start
  included, each path in fresh processes measured in the same run:
  ``batch_without_parser_cache_s`` (one ``aio verify-pine F1 ... F5`` call on a machine whose
  parser has learnt nothing yet: it learns and saves its prediction tables),
  ``batch_s`` (the same call again: one parser that loads those tables, one PineTS process)
  and ``per_script_s`` (one ``aio verify-pine FILE`` process per script, the old path, with
  the tables), with the peak RSS of the largest child process (``peak_child_rss_mb``,
  Python or Node). ``--only-verify5`` skips the rest.

Usage: python bench/pine.py [--quick] [--bars N] [--family ma_cross] [--only-verify5]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

log = logging.getLogger("bench.pine")

FAMILIES = ("ma_cross", "rsi_reversion", "macd_cross", "bb_breakout", "bb_reversion", "stoch_adx")


def _synthetic_bars(n: int, timeframe: str):  # type: ignore[no-untyped-def]
    """The first ``n`` bars of ``timeframe`` resampled (by the product's own path) from weeks of
    synthetic ticks from 2025-01-06, as an Arrow table."""
    import pyarrow as pa

    from aio_ray.bars.resample import bars_from_ticks
    from aio_ray.data.synthetic_ticks import generate

    parts, rows, day = [], 0, dt.date(2025, 1, 6)
    while rows < n:
        end = day + dt.timedelta(days=7)
        ticks = pa.concat_tables([t for _, t in generate("EURUSD", day, end)])
        week = bars_from_ticks(ticks, [timeframe])[timeframe]
        parts.append(week)
        rows += week.num_rows
        day = end
    return pa.concat_tables(parts).slice(0, n)


def _bars(n: int):  # type: ignore[no-untyped-def]
    import polars as pl

    from aio_ray.bars.arrays import BarArrays

    return BarArrays.from_frame(pl.from_arrow(_synthetic_bars(n, "1m")), "mid")


VERIFY5 = ("ma_cross", "rsi_reversion", "macd_cross", "bb_breakout", "stoch_adx")


def _verify5(n_bars: int) -> dict[str, object]:
    """Old per-script path vs the batch path on 5 scripts, each in fresh processes."""
    import os
    import subprocess
    import tempfile

    from aio_ray.bars.store import write_bars
    from aio_ray.pine.generate import ScriptSource, generate
    from aio_ray.strategies.space import defaults

    tmp = Path(tempfile.mkdtemp(prefix="bench-pine-"))
    write_bars(tmp / "bars", "15m", "EURUSD", _synthetic_bars(n_bars, "15m"))
    files = []
    for f in VERIFY5:
        p = defaults(f)
        p.update(atr_length=10, stop_atr=1.5, take_atr=2.5)
        path = tmp / f"{f}.pine"
        path.write_text(generate(ScriptSource(f, p, "15m")))
        files.append(str(path))
    aio = [sys.executable, "-m", "aio_ray.cli"]
    common = ["--bars", str(tmp / "bars"), "--timeframe", "15m"]
    env = dict(os.environ)

    def timed(cmds: list[list[str]]) -> tuple[float, float, list[int]]:
        t0, peak, codes = time.perf_counter(), 0.0, []
        for c in cmds:
            before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            codes.append(subprocess.run(c, capture_output=True, env=env, check=False).returncode)
            peak = max(peak, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before)
        return time.perf_counter() - t0, peak / 1024, codes

    # a parser cache of this run only: the first call learns it (a machine's first run),
    # the later ones load it (every run after that, or after make setup)
    env["AIO_PINE_PARSER_CACHE"] = str(tmp / "pine-parser.pickle")
    cold_s, cold_rss, cold_rc = timed([aio + ["verify-pine", *files, *common]])
    batch_s, batch_rss, batch_rc = timed([aio + ["verify-pine", *files, *common]])
    per_s, per_rss, per_rc = timed([aio + ["verify-pine", f, *common] for f in files])
    log.info(
        "verify 5 scripts: batch %.1f s (%.1f s learning the parser), per-script %.1f s",
        batch_s,
        cold_s,
        per_s,
    )
    return {
        "scripts": len(files),
        "bars_15m": n_bars,
        "batch_s": round(batch_s, 2),
        "batch_exit_code": batch_rc[0],
        "batch_without_parser_cache_s": round(cold_s, 2),
        "batch_without_parser_cache_exit_code": cold_rc[0],
        "per_script_s": round(per_s, 2),
        "per_script_exit_codes": per_rc,
        "speedup": round(per_s / batch_s, 2) if batch_s else None,
        "peak_child_rss_mb": round(max(cold_rss, batch_rss, per_rss), 1),
        "goal_s": 10.0,
        "cores": os.cpu_count(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="10,000 bars, short loops (smoke run)")
    ap.add_argument("--bars", type=int, default=None, help="synthetic 1m bars for PineTS (100000)")
    ap.add_argument("--family", default="ma_cross", choices=FAMILIES)
    ap.add_argument("--only-verify5", action="store_true", help="only the 5-script figures")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    if args.only_verify5:
        out5 = {"bench": "pine", "verify5": _verify5(2000 if args.quick else 3000)}
        out5["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        print(json.dumps(out5))
        return
    n_bars = args.bars or (10_000 if args.quick else 100_000)

    from aio_ray.pine.generate import ScriptSource, generate
    from aio_ray.pine.runner import run_pinets, runner_status
    from aio_ray.pine.verify import check_syntax, verify_script
    from aio_ray.strategies.engine import BacktestConfig, run_backtest
    from aio_ray.strategies.families import get_family
    from aio_ray.strategies.space import defaults

    def params(f: str) -> dict:
        p = defaults(f)
        p.update(atr_length=10, stop_atr=1.5, take_atr=2.5)
        if f == "ma_cross":
            p.update(fast=5, slow=12, ma="sma")
        return p

    sources = [
        (ScriptSource(f, params(f), "1m"), k) for f in FAMILIES for k in ("strategy", "indicator")
    ]
    # generation
    t0, count = time.perf_counter(), 0
    budget = 0.3 if args.quick else 2.0
    while time.perf_counter() - t0 < budget:
        for src, kind in sources:
            generate(src, kind)  # type: ignore[arg-type]
            count += 1
    gen_rate = count / (time.perf_counter() - t0)
    log.info("generation: %.0f scripts/s", gen_rate)
    scripts = [generate(src, kind) for src, kind in sources]  # type: ignore[arg-type]

    # parsing: first pass warms the parser, then warm passes
    out: dict[str, object] = {
        "bench": "pine",
        "bars": n_bars,
        "family": args.family,
        "scripts_per_s": round(gen_rate, 1),
    }
    try:
        t0 = time.perf_counter()
        for s in scripts:
            assert check_syntax(s).ok
        out["parse_warmup_s"] = round(time.perf_counter() - t0, 3)
        reps = 1 if args.quick else 5
        t0 = time.perf_counter()
        for _ in range(reps):
            for s in scripts:
                check_syntax(s)
        out["parse_ms_per_script"] = round(
            1000 * (time.perf_counter() - t0) / (reps * len(scripts)), 3
        )
        log.info(
            "parse: warm-up %.1f s, %.1f ms/script warm",
            out["parse_warmup_s"],
            out["parse_ms_per_script"],
        )
    except ImportError:
        log.warning("pynescript not installed: no parse figures")
        out["parse_ms_per_script"] = None

    # PineTS vs engine on the same bars
    t0 = time.perf_counter()
    bars = _bars(n_bars)
    log.info("%d synthetic bars in %.1f s", len(bars), time.perf_counter() - t0)
    ok, why = runner_status()
    fam_src = ScriptSource(args.family, params(args.family), "1m")
    if ok:
        code = generate(fam_src)
        run_pinets(code, bars[:500], "1m")  # Node/module warm-up (file cache)
        run = run_pinets(code, bars, "1m")
        out["pinets_seconds"] = round(run.wall_s, 3)
        out["pinets_seconds_100k_bars"] = round(run.wall_s, 3) if n_bars == 100_000 else None
        out["pinets_run_seconds"] = round(run.run_ms / 1000, 3)
        out["node_rss_mb"] = run.node_rss_mb
        out["pinets_trades"] = len(run.closed_trades)
        ind = run_pinets(generate(fam_src, "indicator"), bars, "1m")
        out["pinets_indicator_seconds"] = round(ind.wall_s, 3)
        t0 = time.perf_counter()
        rep = verify_script(code, bars, syntax=False)
        out["verify_seconds"] = round(time.perf_counter() - t0, 3)
        out["parity_passed"] = rep.parity_passed
        out["known_differences"] = len(rep.known_differences)
        log.info(
            "PineTS: %.2f s wall (%.2f s in Node), verify %.2f s, parity %s",
            run.wall_s,
            run.run_ms / 1000,
            out["verify_seconds"],
            rep.parity_passed,
        )
    else:
        log.warning("PineTS unavailable: %s", why)
        out["pinets_seconds_100k_bars"] = None
    fam = get_family(args.family)
    cfg = BacktestConfig(price_model="single")
    fam.signals(bars[:1000], params(args.family))  # compile
    run_backtest(bars[:1000], fam.signals(bars[:1000], params(args.family)), cfg)
    t0 = time.perf_counter()
    res = run_backtest(bars, fam.signals(bars, params(args.family)), cfg)
    out["engine_seconds"] = round(time.perf_counter() - t0, 4)
    out["engine_trades"] = res.trades.height
    out["verify5"] = _verify5(2000 if args.quick else 3000)
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
