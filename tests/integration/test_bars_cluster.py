"""build_bars on a multi-node Ray cluster (ray.cluster_utils.Cluster: a head and two worker
nodes, one CPU each). It runs in a subprocess so that it neither disturbs nor depends on the
session's local Ray head."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aio_ray.bars import bars_from_ticks, read_bars
from aio_ray.data.dukascopy import decode_ticks, hour_path

pytestmark = [pytest.mark.ray, pytest.mark.shared, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
ALL = ("1m", "5m", "15m", "30m", "1h", "4h", "1d")

CLUSTER_SCRIPT = textwrap.dedent(
    f"""
    import json, sys
    import ray
    from ray.cluster_utils import Cluster
    from aio_ray.bars import build_bars

    ticks_dir, bars_dir = sys.argv[1], sys.argv[2]
    cluster = Cluster(initialize_head=True, head_node_args={{"num_cpus": 1, "include_dashboard": False}})
    try:
        for _ in range(2):
            cluster.add_node(num_cpus=1)
        ray.init(address=cluster.address, log_to_driver=False)
        cluster.wait_for_nodes()
        alive = [n["NodeID"] for n in ray.nodes() if n["Alive"]]
        summary = build_bars(
            ticks_dir, bars_dir, {ALL!r}, "new_york_close",
            ray_remote_args={{"scheduling_strategy": "SPREAD"}},
        )
        summary["cluster_nodes"] = alive
        print("SUMMARY " + json.dumps(summary))
    finally:
        ray.shutdown()
        cluster.shutdown()
    """
)


def test_bars_built_across_three_nodes_equal_the_local_bars(
    dukascopy_dir: Path, tmp_path: Path
) -> None:
    days = []
    for day in (dt.date(2019, 2, 4), dt.date(2019, 2, 5)):
        hours = [dt.datetime(day.year, day.month, day.day, h) for h in range(24)]
        table = pa.concat_tables(
            [
                decode_ticks((dukascopy_dir / hour_path("EURUSD", h)).read_bytes(), h, "EURUSD")
                for h in hours
            ]
        )
        # Each day as three part files, so there are six map tasks to spread over the nodes.
        third = table.num_rows // 3
        for i, (a, b) in enumerate([(0, third), (third, 2 * third), (2 * third, table.num_rows)]):
            path = (
                tmp_path
                / "ticks"
                / "symbol=EURUSD"
                / f"date={day.isoformat()}"
                / f"part-{i}.parquet"
            )
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(table.slice(a, b - a), path, compression="zstd")
        days.append(table)

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("RAY_ADDRESS", None)  # the script starts its own cluster
    proc = subprocess.run(
        [sys.executable, "-c", CLUSTER_SCRIPT, str(tmp_path / "ticks"), str(tmp_path / "bars")],
        capture_output=True,
        check=False,
        text=True,
        timeout=420,
        env=env,
        cwd=tmp_path,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("SUMMARY ")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-5000:]
    summary = json.loads(lines[-1][len("SUMMARY ") :])

    assert len(summary["cluster_nodes"]) == 3
    assert len(summary["nodes"]) > 1, f"map tasks ran on {summary['nodes']} only"
    assert set(summary["nodes"]) <= set(summary["cluster_nodes"])
    assert summary["symbols"]["EURUSD"]["shards"] == 6

    expected = bars_from_ticks(pa.concat_tables(days), ALL, "new_york_close")
    for tf in ALL:
        got = read_bars(tmp_path / "bars", tf)
        assert got.equals(pl.from_arrow(expected[tf])), tf
        assert got["ticks"].sum() == sum(t.num_rows for t in days)
