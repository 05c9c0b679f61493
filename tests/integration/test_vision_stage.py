"""The vision stage as users run it: `aio analyze` (contract), `aio patterns`, the pipeline's
vision and pattern stages (CPU backend, real model, real Ray actor pool), agreement figures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
AIO = [sys.executable, "-m", "aio_ray.cli"]
FIELDS = {
    "trend",
    "patterns",
    "levels",
    "confidence",
    "rationale",
    "model",
    "window_start",
    "window_end",
}


@pytest.fixture(scope="module")
def work(tmp_path_factory, ray_local):
    """Nine days of synthetic ticks -> 1m/15m/1h bars, and the config that made them."""
    from aio_ray.config import load_config
    from aio_ray.pipeline import run_bars, run_ingest

    root = tmp_path_factory.mktemp("vision")
    tree = {
        "data": {"source": "synthetic", "start": "2025-07-01", "end": "2025-07-10", "workdir": str(root / "w")},
        "bars": {"timeframes": ["1m", "15m", "1h"]},
        "search": {"timeframes": ["15m", "1h"]},
        "library": {"url": f"sqlite:///{root}/w/library.db"},
        "patterns": {"timeframes": ["15m", "1h"], "min_count": 5, "min_abs_t": 0.5},
        "vision": {"timeframe": "1h", "window": 48, "stride": 12, "windows": 6, "use_ray": True,
                   "model": {"concurrency": 1, "batch_size": 4}},
    }  # fmt: skip
    path = root / "cfg.yaml"
    path.write_text(yaml.safe_dump(tree))
    cfg = load_config(path)
    run_ingest(cfg)
    run_bars(cfg)
    return {"root": root, "cfg": cfg, "path": path}


def _aio(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [*AIO, *args], capture_output=True, text=True, env=env, cwd=REPO, timeout=300, check=False
    )


def test_aio_analyze_keeps_its_json_contract(work):
    bars = str(work["cfg"].data.bars_dir)
    p = _aio("analyze", "--bars", bars, "--timeframe", "1h", "--windows", "3", "--json")
    assert p.returncode == 0, p.stderr
    rows = json.loads(p.stdout)
    assert isinstance(rows, list) and len(rows) == 3
    for r in rows:
        assert FIELDS <= set(r)
        assert r["trend"] in ("up", "down", "sideways") and 0 <= r["confidence"] <= 1
        assert r["model"] == "aio-chartnet-v1" and r["window_start"].endswith("Z")
    # windows are the latest ones, in time order, the last ending on the last bar
    from aio_ray.bars.store import read_bars

    last = read_bars(bars, "1h")["ts"][-1].strftime("%Y-%m-%dT%H:%M:%SZ")
    assert rows[-1]["window_end"] == last
    assert [r["window_start"] for r in rows] == sorted(r["window_start"] for r in rows)


def test_aio_analyze_bad_arguments_say_what_is_wrong(work):
    bars = str(work["cfg"].data.bars_dir)
    p = _aio("analyze", "--bars", bars, "--timeframe", "1h", "--backend", "gpt", "--json")
    assert p.returncode == 2 and "accepted are cpu, vllm, http" in p.stderr
    p = _aio("analyze", "--bars", bars, "--timeframe", "1h", "--backend", "vllm", "--json")
    assert p.returncode == 2 and "vllm" in p.stderr and ".[gpu]" in p.stderr
    p = _aio("analyze", "--bars", bars, "--timeframe", "4h", "--json")
    assert p.returncode == 2 and "no 4h bars" in p.stderr
    p = _aio("analyze", "--bars", str(work["root"] / "nowhere"), "--timeframe", "1h", "--json")
    assert p.returncode == 2 and "does not exist" in p.stderr


def test_pipeline_stages_mine_patterns_and_analyse_on_a_ray_actor_pool(work):
    from aio_ray.library import open_library
    from aio_ray.library.patterns import load_pattern_stats
    from aio_ray.pipeline import _vision_line, run_patterns, run_vision
    from aio_ray.vision.log import read_log

    cfg = work["cfg"]
    pat = run_patterns(cfg, use_ray=True)
    assert pat["timeframes"] == ["15m", "1h"] and pat["occurrences"] > 0
    stored = load_pattern_stats(open_library(cfg.library.url))
    assert {r["timeframe"] for r in stored} == {"15m", "1h"}
    v = run_vision(cfg, use_ray=True)
    assert v["windows"] == 6 and v["failed"] == 0 and v["model"] == "aio-chartnet-v1"
    assert sum(v["trends"].values()) == 6
    a = v["agreement"]
    assert a["analysed"] == 6 and 0 <= a["trend_vs_rules"] <= 1
    log = read_log(v["log_dir"])
    assert log.num_rows == 6 and set(log.column("status").to_pylist()) == {"ok"}
    assert "vision (cpu, aio-chartnet-v1): 6 windows" in _vision_line(v)
    again = run_vision(cfg, use_ray=True)  # same bars, same settings: not analysed twice
    assert again["status"].startswith("skipped") and read_log(v["log_dir"]).num_rows == 6


def test_vision_stage_is_skipped_with_the_reason_without_a_backend(work):
    from aio_ray.pipeline import _vision_line, run_vision

    cfg = work["cfg"].model_copy(update={"vision": None})
    out = run_vision(cfg)
    assert out["status"] == "skipped" and "no vision backend configured" in out["reason"]
    assert _vision_line(out).startswith("vision: skipped: no vision backend configured")


def test_aio_patterns_mines_and_lists(work):
    bars = str(work["cfg"].data.bars_dir)
    db = f"sqlite:///{work['root']}/patterns.db"
    p = _aio(
        "patterns",
        "--bars",
        bars,
        "--timeframes",
        "1h",
        "--horizons",
        "1,5",
        "--db",
        db,
        "--save",
        "--json",
    )
    assert p.returncode == 0, p.stderr
    rows = json.loads(p.stdout)
    assert {r["horizon"] for r in rows} == {1, 5} and {r["timeframe"] for r in rows} == {"1h"}
    listed = json.loads(_aio("patterns", "--db", db, "--json").stdout)
    assert len(listed) == len(rows)
    text = _aio("patterns", "--db", db).stdout
    assert text.splitlines()[0].split()[:3] == ["pattern", "tf", "h"]


def test_agreement_on_synthetic_charts_of_known_patterns():
    from aio_ray.patterns.vocabulary import CANDLE_PATTERNS
    from aio_ray.vision.agreement import synthetic_recall, synthetic_requests
    from aio_ray.vision.backends import make_backend

    pairs = synthetic_requests(CANDLE_PATTERNS, per_pattern=4, seed=100)
    backend = make_backend("cpu")
    recs = backend.analyze([r for _, r in pairs])
    out = synthetic_recall([t for t, _ in pairs], recs)
    assert set(out["per_pattern"]) == set(CANDLE_PATTERNS)
    assert all(0 <= x <= 1 for x in out["per_pattern"].values())
