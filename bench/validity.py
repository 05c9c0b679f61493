"""Benchmark: the whole pipeline as a statistical test (false-positive rate and power).

Each run generates synthetic ticks (``aio ingest synthetic``'s generator) for its own seed,
resamples them to bars and runs the search with the default gates and costs; then reads the
verdict. Null runs (a martingale, no edge) must report nothing: the false-positive rate is the
share of null runs that report any passing strategy (goal <= 5%). Planted runs (an edge of the
stated kind and strength) must find a strategy of the matching kind: the power is the share
that do (goal >= 80%).

The peer, measured on the same runs: the selection every peer tool reports (freqtrade's
hyperopt, vectorbt sweeps, backtesting.py ``optimize``): the best candidate by its walk-forward
objective, reported as a winner when its out-of-sample-window Sharpe is > 0 with at least the
minimum of trades. Its "false-positive rate" is what a user of those tools would see.

Prints one JSON line per run (stderr) and one summary JSON line on stdout::

    python bench/validity.py                    # 20 null + 10 planted runs, 6 months each,
                                                # 20,000 candidates per run (the demo's search)
    python bench/validity.py --null 4 --planted 2 --trials 4000   # a quick look
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from aio_ray.config import load_config

MATCHING = {
    "mean_reversion": ("bb_reversion", "rsi_reversion"),
    "momentum": ("ma_cross", "macd_cross", "bb_breakout", "stoch_adx"),
}


DEFAULT_STRENGTH = {"mean_reversion": 2.0, "momentum": 3.0}
"""Planted strengths the search is meant to find (see tests/integration/test_synthetic.py for what they
do to the bars' autocorrelation)."""


def _interval(k: int, n: int) -> list[float | None]:
    """Clopper-Pearson 95% interval of a proportion k / n."""
    if n == 0:
        return [None, None]
    from scipy.stats import beta

    lo = 0.0 if k == 0 else float(beta.ppf(0.025, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(0.975, k + 1, n - k))
    return [round(lo, 3), round(hi, 3)]


def _peer_winner(lib: Any, run_id: str, min_trades: int) -> bool:
    from aio_ray.library.candidates import iter_candidates

    best = None
    for batch in iter_candidates(
        lib, run_id, columns=["objective", "oos_sharpe", "oos_trades"], status="ok"
    ):
        for r in batch:
            if r["objective"] is None or (r["oos_trades"] or 0) < min_trades:
                continue
            if best is None or r["objective"] > best["objective"]:
                best = r
    return best is not None and (best["oos_sharpe"] or 0.0) > 0.0


def one_run(
    kind: str, strength: float, half_life: float, seed: int, months: int, n_trials: int, root: Path
) -> dict[str, Any]:
    from aio_ray.library import Library
    from aio_ray.pipeline import run_bars, run_ingest, run_optimize

    start = dt.date(2025, 1, 6)
    end = start + dt.timedelta(days=round(30.44 * months))
    work = root / f"{kind}-{seed}"
    base = load_config(REPO / "configs" / "demo.yaml")
    cfg = base.model_copy(
        update={
            "data": base.data.model_copy(update={"start": start, "end": end, "workdir": work}),
            "synthetic": base.synthetic.model_copy(
                update={
                    "seed": seed,
                    "edge": kind,
                    "edge_strength": strength if kind != "none" else 0.0,
                    "edge_half_life_min": half_life,
                }
            ),
            "bars": base.bars.model_copy(update={"timeframes": ("15m", "1h")}),
            "search": base.search.model_copy(
                update={"n_trials": n_trials, "seed": seed, "timeframes": ("15m", "1h")}
            ),
            "library": base.library.model_copy(update={"url": f"sqlite:///{work / 'lib.db'}"}),
        }
    )
    t0 = time.perf_counter()
    run_ingest(cfg, use_ray=False)
    run_bars(cfg)
    out = run_optimize(cfg.data.bars_dir, cfg)
    v = out.verdict or {}
    lib = Library(cfg.library.url)
    fams = [s["family"] for s in v.get("strategies", [])]
    return {
        "kind": kind,
        "strength": strength,
        "seed": seed,
        "months": months,
        "verdict": v.get("verdict"),
        "passed": v.get("passed"),
        "families": fams,
        "matching": bool(fams) and kind in MATCHING and fams[0] in MATCHING[kind],
        "candidates": v.get("candidates"),
        "effective_trials": v.get("effective_trials"),
        "pbo": v.get("pbo"),
        "message": v.get("message"),
        "peer_reports_winner": _peer_winner(lib, out.run_id, cfg.search.ranking.min_trades),
        "wall_s": round(time.perf_counter() - t0, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--null", type=int, default=20, help="null (martingale) runs")
    ap.add_argument("--planted", type=int, default=10, help="runs with a planted edge")
    ap.add_argument("--edge", default="mean_reversion", choices=sorted(MATCHING))
    ap.add_argument(
        "--strength",
        type=float,
        default=None,
        help="edge strength in units of the martingale std over one half-life "
        "(default: 2 for mean_reversion, as in configs/demo.yaml; 3 for momentum)",
    )
    ap.add_argument(
        "--half-life-min", type=float, default=30.0, help="the planted edge's half-life, minutes"
    )
    ap.add_argument("--months", type=int, default=6)
    ap.add_argument("--trials", type=int, default=20_000, help="candidates per run")
    ap.add_argument("--first-seed", type=int, default=1000)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    strength = args.strength or DEFAULT_STRENGTH[args.edge]
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    runs: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="aio-validity-") as d:
        plan = [("none", 0.0, args.first_seed + i) for i in range(args.null)]
        plan += [(args.edge, strength, args.first_seed + 500 + i) for i in range(args.planted)]
        for kind, s, seed in plan:
            with contextlib.redirect_stdout(sys.stderr):
                r = one_run(kind, s, args.half_life_min, seed, args.months, args.trials, Path(d))
            runs.append(r)
            print(json.dumps(r), file=sys.stderr, flush=True)
    null = [r for r in runs if r["kind"] == "none"]
    planted = [r for r in runs if r["kind"] != "none"]
    fp = sum(r["verdict"] == "passed" for r in null)
    hit = sum(r["matching"] for r in planted)
    peer_fp = sum(r["peer_reports_winner"] for r in null)
    print(
        json.dumps(
            {
                "bench": "validity",
                "months": args.months,
                "candidates_per_run": args.trials,
                "edge": args.edge,
                "strength": strength,
                "half_life_min": args.half_life_min,
                "null_runs": len(null),
                "false_positives": fp,
                "false_positive_rate": round(fp / len(null), 3) if null else None,
                "false_positive_rate_ci95": _interval(fp, len(null)),
                "planted_runs": len(planted),
                "found_matching": hit,
                "power": round(hit / len(planted), 3) if planted else None,
                "power_ci95": _interval(hit, len(planted)),
                "peer_best_in_sample_false_positive_rate": round(peer_fp / len(null), 3)
                if null
                else None,
                "seconds_per_run": round((time.perf_counter() - t0) / max(len(runs), 1), 1),
                "goal": {"false_positive_rate_max": 0.05, "power_min": 0.8},
                "ok": (not null or fp / len(null) <= 0.05)
                and (not planted or hit / len(planted) >= 0.8),
            }
        )
    )
    ray.shutdown()


if __name__ == "__main__":
    main()
