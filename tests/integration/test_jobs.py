"""The Ray job entry points run as `ray job submit` runs them: a fresh Python process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.ray
@pytest.mark.slow
def test_ingest_job_on_the_real_mirror(dukascopy_dir, tmp_path):
    cfg = tmp_path / "job.yaml"
    cfg.write_text(
        "data:\n  source: dukascopy\n  symbol: EURUSD\n  start: 2019-02-04\n  end: 2019-02-06\n"
        f"  workdir: {tmp_path / 'work'}\n  mirror: {dukascopy_dir}\n"
        "bars:\n  timeframes: [1m, 1h, 1d]\n  daily_close: new_york_close\n"
        "ray:\n  num_cpus: 2\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    res = subprocess.run(
        [sys.executable, "jobs/ingest.py", "--config", str(cfg)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["ingest"]["kept"] == 266_219 and out["errors"] == []
    bars = tmp_path / "work" / "bars"
    one_minute = pl.read_parquet(next((bars / "timeframe=1m").rglob("*.parquet")))
    daily = pl.read_parquet(next((bars / "timeframe=1d").rglob("*.parquet")))
    assert one_minute["ticks"].sum() == daily["ticks"].sum() == 266_219
    # New York close: the sessions open at 22:00 UTC (17:00 EST); the data cuts three of them
    assert [t.hour for t in daily["ts"].to_list()] == [22, 22, 22]
    # a rerun resumes: nothing is ingested again and the bars are reused
    res2 = subprocess.run(
        [sys.executable, "jobs/ingest.py", "--config", str(cfg)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert res2.returncode == 0, res2.stderr[-3000:]
    again = json.loads(res2.stdout.strip().splitlines()[-1])
    assert again["ingest"]["input"] == 0 and again["bars"]["status"] == "skipped"
