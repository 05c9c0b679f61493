"""The multimodal accuracy table: how often each vision backend agrees with the rule detectors
and with the realized forward move, on real-shaped windows and on synthetic charts of known
patterns. Prints one JSON line (logs to stderr)::

    python bench/agreement.py                 # bars of configs/demo.yaml (make demo), else synthetic
    python bench/agreement.py --quick

Rows: each backend that can run here (``cpu`` always; ``http`` with ``--http-url``; ``vllm``
where vLLM and a GPU exist), plus ``rules`` (the detectors themselves on the synthetic set:
their recall is the ceiling a backend is measured against) and ``always_up`` (a constant
"up" analyst: the base rate a direction hit rate must beat). Figures are defined in
:mod:`aio_ray.vision.agreement`.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

log = logging.getLogger("bench.agreement")


def _bars(quick: bool) -> Any:
    """1h bars: the demo's when present, else a fresh synthetic month."""
    from aio_ray.bars.store import read_bars

    demo = REPO / "data" / "demo" / "bars"
    try:
        return read_bars(demo, "1h"), str(demo)
    except Exception:  # noqa: BLE001 - no demo bars: build a month of synthetic ones
        import datetime as dt

        from aio_ray.bars.build import build_bars
        from aio_ray.config import SyntheticConfig, ValidationConfig
        from aio_ray.data.sources.synthetic import ingest_synthetic

        tmp = Path(tempfile.mkdtemp(prefix="aio-agree-"))
        end = dt.date(2025, 7, 15 if quick else 31)
        ingest_synthetic(
            "EURUSD",
            dt.date(2025, 7, 1),
            end,
            tmp / "ticks",
            SyntheticConfig(),
            ValidationConfig(),
            use_ray=False,
        )
        build_bars(tmp / "ticks", tmp / "bars", ["1m", "1h"])
        return read_bars(tmp / "bars", "1h"), "synthetic"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--per-pattern", type=int, default=20, help="synthetic charts per pattern")
    ap.add_argument("--windows", type=int, default=200, help="real windows analysed")
    ap.add_argument("--http-url", default=None, help="an OpenAI-compatible server to include")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    per = 4 if args.quick else args.per_pattern
    nwin = 24 if args.quick else args.windows

    from aio_ray.patterns.detectors import window_patterns
    from aio_ray.patterns.vocabulary import PATTERNS
    from aio_ray.vision.agreement import agreement_on_bars, synthetic_recall, synthetic_requests
    from aio_ray.vision.analysis import AnalysisRecord, ChartAnalysis
    from aio_ray.vision.analyze import window_requests
    from aio_ray.vision.backends import VisionSettings, make_backend

    bars, source = _bars(args.quick)
    reqs = window_requests(
        bars, instrument="EURUSD", timeframe="1h", window=64, stride=8, windows=nwin
    )
    pairs = synthetic_requests(PATTERNS, per_pattern=per, seed=1000)
    truths = [t for t, _ in pairs]

    backends: dict[str, Any] = {"cpu": VisionSettings(backend="cpu")}
    if args.http_url:
        backends["http"] = VisionSettings(backend="http", base_url=args.http_url)
    unavailable: dict[str, str] = {}
    try:
        import vllm  # noqa: F401
    except ImportError:
        unavailable["vllm"] = (
            "vllm not installed here (no GPU, no weights): see README, Vision on a GPU cluster"
        )
    if not args.http_url:
        unavailable["http"] = "no --http-url given"

    rows: dict[str, Any] = {}
    for name, settings in backends.items():
        backend = make_backend(settings=settings)
        t0 = time.perf_counter()
        real = backend.analyze(reqs)
        t_real = time.perf_counter() - t0
        syn = backend.analyze([r for _, r in pairs])
        rows[name] = {
            "model": backend.model_id,
            "real": agreement_on_bars(real, bars),
            "synthetic_recall": synthetic_recall(truths, syn),
            "images_per_s": round(len(reqs) / t_real, 1),
        }

    # rules on the synthetic set: the detectors' own recall (their ceiling)
    def rule_record(req: Any) -> AnalysisRecord:
        o, h, lo, c = req.ohlc.T
        a = ChartAnalysis(
            trend="sideways",
            patterns=window_patterns(o, h, lo, c),
            levels=[],
            confidence=1.0,
            rationale="rule detectors",
        )
        return AnalysisRecord(
            instrument=req.instrument,
            timeframe=req.timeframe,
            window_start=req.window_start,
            window_end=req.window_end,
            model="rules",
            backend="rules",
            latency_ms=0.0,
            status="ok",
            analysis=a,
            attempts=1,
        )

    rows["rules"] = {
        "synthetic_recall": synthetic_recall(truths, [rule_record(r) for _, r in pairs])
    }
    up = [
        rule_record(r).model_copy(
            update={
                "analysis": ChartAnalysis(
                    trend="up", patterns=[], levels=[], confidence=1.0, rationale="always up"
                )
            }
        )
        for r in reqs
    ]
    rows["always_up"] = {"real": agreement_on_bars(up, bars)}

    def clean(x: Any) -> Any:
        if isinstance(x, float):
            return None if math.isnan(x) else round(x, 4)
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        return x

    print(
        json.dumps(
            clean(
                {
                    "bench": "agreement",
                    "bars": source,
                    "real_windows": len(reqs),
                    "synthetic_charts": len(pairs),
                    "rows": rows,
                    "unavailable": unavailable,
                    "peak_rss_mb": round(
                        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
                    ),
                }
            )
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
