"""Ingest end to end: sources -> validated day partitions, resumable, problems reported by name."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aio_ray.config import SyntheticConfig
from aio_ray.data import tick_store
from aio_ray.data.sources.dukascopy import ingest_dukascopy
from aio_ray.data.sources.files import ingest_files
from aio_ray.data.sources.synthetic import ingest_synthetic
from aio_ray.data.validate import REASONS

REPO = Path(__file__).resolve().parents[2]
FEB4, FEB5, FEB6 = dt.date(2019, 2, 4), dt.date(2019, 2, 5), dt.date(2019, 2, 6)


def test_dukascopy_mirror_ingest_counts_and_resume(dukascopy_dir, tmp_path):
    out = tmp_path / "ticks"
    rep = ingest_dukascopy("EURUSD", FEB4, FEB6, out, mirror=dukascopy_dir, use_ray=False)
    assert rep.ok, rep.errors
    assert rep.totals["input"] == 136_741 + 129_478 == rep.totals["kept"]
    parts = tick_store.list_partitions(out, "EURUSD")
    assert [(p.day, p.complete, p.meta["rows"]) for p in parts] == [
        (FEB4, True, 136_741),
        (FEB5, True, 129_478),
    ]
    first = tick_store.read_ticks(out, "EURUSD", FEB4, FEB5).slice(0, 1).to_pylist()[0]
    assert first["ts"] == dt.datetime(2019, 2, 4, 0, 0, 0, 994_000, tzinfo=dt.UTC)
    assert (first["bid"], first["ask"]) == (1.14543, 1.14545)
    mtimes = {p.path: p.path.stat().st_mtime_ns for p in parts}
    again = ingest_dukascopy("EURUSD", FEB4, FEB6, out, mirror=dukascopy_dir, use_ray=False)
    assert again.to_dict()["days_skipped"] == 2 and again.to_dict()["days_written"] == 0
    assert {p.path: p.path.stat().st_mtime_ns for p in tick_store.list_partitions(out)} == mtimes
    report = json.loads((out / "_ingest_report.json").read_text())
    assert report["days_skipped"] == 2


def test_missing_and_corrupt_hours_are_named_and_day_is_retried(dukascopy_dir, tmp_path):
    mirror = tmp_path / "mirror"
    shutil.copytree(
        dukascopy_dir / "EURUSD" / "2019" / "01" / "04", mirror / "EURUSD" / "2019" / "01" / "04"
    )
    (mirror / "EURUSD/2019/01/04/07h_ticks.bi5").unlink()  # missing
    raw = (mirror / "EURUSD/2019/01/04/08h_ticks.bi5").read_bytes()
    (mirror / "EURUSD/2019/01/04/08h_ticks.bi5").write_bytes(raw[: len(raw) // 2])  # truncated LZMA
    (mirror / "EURUSD/2019/01/04/09h_ticks.bi5").write_bytes(b"")  # an hour with no ticks
    out = tmp_path / "ticks"
    rep = ingest_dukascopy("EURUSD", FEB4, FEB5, out, mirror=mirror, use_ray=False)
    assert not rep.ok
    named = {e["source"]: e for e in rep.errors}
    assert set(named) == {"EURUSD/2019/01/04/07h_ticks.bi5", "EURUSD/2019/01/04/08h_ticks.bi5"}
    assert named["EURUSD/2019/01/04/07h_ticks.bi5"]["status"] == "missing"
    assert named["EURUSD/2019/01/04/08h_ticks.bi5"]["status"] == "corrupt"
    day = rep.days["2019-02-04"]
    assert day["complete"] is False and day["hours"] == {
        "ok": 21,
        "empty": 1,
        "missing": 1,
        "failed": 0,
        "corrupt": 1,
    }
    assert day["kept"] == 136_741 - 6_914 - 10_546 - 9_276
    # the source is repaired: the rerun retries the incomplete day and completes it
    shutil.copy(
        dukascopy_dir / "EURUSD/2019/01/04/07h_ticks.bi5",
        mirror / "EURUSD/2019/01/04/07h_ticks.bi5",
    )
    shutil.copy(
        dukascopy_dir / "EURUSD/2019/01/04/08h_ticks.bi5",
        mirror / "EURUSD/2019/01/04/08h_ticks.bi5",
    )
    shutil.copy(
        dukascopy_dir / "EURUSD/2019/01/04/09h_ticks.bi5",
        mirror / "EURUSD/2019/01/04/09h_ticks.bi5",
    )
    rep2 = ingest_dukascopy("EURUSD", FEB4, FEB5, out, mirror=mirror, use_ray=False)
    assert rep2.ok and rep2.days["2019-02-04"]["kept"] == 136_741
    assert tick_store.is_complete(out, "EURUSD", FEB4)


def test_dukascopy_ingest_on_ray_equals_local(dukascopy_dir, tmp_path, ray_local):
    a = ingest_dukascopy("EURUSD", FEB4, FEB6, tmp_path / "a", mirror=dukascopy_dir, use_ray=True)
    b = ingest_dukascopy("EURUSD", FEB4, FEB6, tmp_path / "b", mirror=dukascopy_dir, use_ray=False)
    assert a.ok and a.totals == b.totals
    assert tick_store.read_ticks(tmp_path / "a", "EURUSD").equals(
        tick_store.read_ticks(tmp_path / "b", "EURUSD")
    )


def _write_csv(path: Path, table: pa.Table) -> None:
    import pyarrow.csv as pacsv

    pacsv.write_csv(table, path)


def test_files_ingest_quarantines_and_reports_bad_files(dukascopy_dir, tmp_path):
    from aio_ray.data.dukascopy import decode_ticks

    hour = decode_ticks(
        (dukascopy_dir / "EURUSD/2019/01/04/10h_ticks.bi5").read_bytes(),
        dt.datetime(2019, 2, 4, 10),
        "EURUSD",
    )
    bid = hour.column("bid").to_numpy().copy()
    ask = hour.column("ask").to_numpy().copy()
    bid[5], ask[5] = ask[5] + 1e-4, ask[5]  # crossed
    bid[6] = float("nan")  # bad price
    bad = hour.set_column(1, "bid", pa.array(bid)).set_column(2, "ask", pa.array(ask))
    bad = pa.concat_tables([bad, bad.slice(100, 3)])  # 3 exact duplicates at the end
    good = tmp_path / "good.parquet"
    pq.write_table(bad, good)
    wrong = tmp_path / "wrong_schema.parquet"
    pq.write_table(pa.table({"ts": [1, 2], "price": [1.1, 1.2]}), wrong)
    garbage = tmp_path / "garbage.csv"
    garbage.write_bytes(b"ts,bid,ask\n1,2\n\x00\xff\xfe,,,,\n")
    out = tmp_path / "ticks"
    rep = ingest_files([good, wrong, garbage], "EURUSD", out, use_ray=False)
    assert {e["source"] for e in rep.errors} == {str(wrong), str(garbage)}
    assert all(e["problem"] for e in rep.errors)
    t = rep.totals
    assert t["input"] == hour.num_rows + 3
    assert (t["crossed"], t["bad_price"], t["duplicate"]) == (1, 1, 3)
    assert t["kept"] + sum(t[r] for r in REASONS) == t["input"]
    q = tick_store.read_quarantine(out, "EURUSD")
    assert sorted(q.column("reason").to_pylist()) == [
        "bad_price",
        "crossed",
        "duplicate",
        "duplicate",
        "duplicate",
    ]


def test_synthetic_ingest_matches_generator_and_skips_weekend(tmp_path):
    from aio_ray.data.synthetic_ticks import generate_day

    cfg = SyntheticConfig(seed=11)
    out = tmp_path / "ticks"
    start, end = dt.date(2025, 7, 4), dt.date(2025, 7, 8)  # Fri .. Mon
    rep = ingest_synthetic("EURUSD", start, end, out, cfg, use_ray=False)
    assert rep.ok
    for d in tick_store.iter_days(start, end):
        gen = generate_day("EURUSD", d, cfg)
        got = tick_store.read_ticks(out, "EURUSD", d, d + dt.timedelta(days=1))
        assert got.num_rows == rep.days[d.isoformat()]["kept"]
        assert rep.days[d.isoformat()]["input"] == gen.num_rows
    assert rep.days["2025-07-05"]["input"] == 0  # Saturday: no ticks, still a complete day
    assert tick_store.is_complete(out, "EURUSD", dt.date(2025, 7, 5))


def test_synthetic_days_of_other_generator_parameters_are_replaced_not_skipped(tmp_path):
    """A folder holding martingale days, ingested again with a planted edge, gets edge days:
    a complete day counts as done only when the same generator parameters wrote it."""
    from aio_ray.data.synthetic_ticks import generate_day

    out = tmp_path / "ticks"
    start, end = dt.date(2025, 7, 1), dt.date(2025, 7, 3)
    null = SyntheticConfig(seed=4)
    edge = SyntheticConfig(seed=4, edge="mean_reversion", edge_strength=1.0)
    assert (
        ingest_synthetic("EURUSD", start, end, out, null, use_ray=False).to_dict()["days_written"]
        == 2
    )
    again = ingest_synthetic("EURUSD", start, end, out, null, use_ray=False).to_dict()
    assert (again["days_written"], again["days_skipped"]) == (0, 2)
    planted = ingest_synthetic("EURUSD", start, end, out, edge, use_ray=False).to_dict()
    assert (planted["days_written"], planted["days_skipped"]) == (2, 0)
    ref = tmp_path / "ref"
    ingest_synthetic("EURUSD", start, end, ref, edge, use_ray=False)
    assert tick_store.read_ticks(out, "EURUSD").equals(tick_store.read_ticks(ref, "EURUSD"))
    mids = generate_day("EURUSD", start, null).column("bid")
    assert not generate_day("EURUSD", start, edge).column("bid").equals(mids)


def test_interrupted_ingest_resumes_without_duplicates_or_holes(tmp_path):
    """Kill a real ingest process mid-way, rerun, and compare with an uninterrupted ingest."""
    out = tmp_path / "ticks"
    args = [
        sys.executable,
        "-m",
        "aio_ray.cli",
        "ingest",
        "synthetic",
        "--start",
        "2025-07-01",
        "--end",
        "2025-07-22",
        "--seed",
        "5",
        "--out",
        str(out),
        "--local",
    ]
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(tick_store.list_partitions(out)) < 4:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    written_before = len(tick_store.list_partitions(out))
    assert 4 <= written_before < 21, "the kill must land mid-ingest"
    # leftovers of the killed write are hidden temp files, never data
    assert not [p for p in out.rglob("*.parquet") if p.name != tick_store.PART_NAME]
    rep = ingest_synthetic(
        "EURUSD",
        dt.date(2025, 7, 1),
        dt.date(2025, 7, 22),
        out,
        SyntheticConfig(seed=5),
        use_ray=False,
    )
    assert rep.ok and rep.to_dict()["days_skipped"] >= written_before - 1
    ref = ingest_synthetic(
        "EURUSD",
        dt.date(2025, 7, 1),
        dt.date(2025, 7, 22),
        tmp_path / "ref",
        SyntheticConfig(seed=5),
        use_ray=False,
    )
    a, b = tick_store.read_ticks(out, "EURUSD"), tick_store.read_ticks(tmp_path / "ref", "EURUSD")
    assert a.num_rows == b.num_rows == ref.totals["kept"]
    assert a.equals(b)
    ts = a.column("ts").cast(pa.int64()).to_numpy()
    assert np.all(np.diff(ts) >= 0)


def test_empty_range_is_a_clear_error(tmp_path):
    from aio_ray.errors import SourceError

    with pytest.raises(SourceError, match="empty date range"):
        ingest_synthetic("EURUSD", FEB5, FEB4, tmp_path, use_ray=False)


def test_cli_contract_dukascopy_mirror(dukascopy_dir, tmp_path):
    out = tmp_path / "ticks"
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "aio_ray.cli",
            "ingest",
            "dukascopy",
            "--symbol",
            "EURUSD",
            "--start",
            "2019-02-04",
            "--end",
            "2019-02-06",
            "--mirror",
            str(dukascopy_dir),
            "--out",
            str(out),
            "--local",
            "--json",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=False,
    )
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["totals"]["kept"] == 266_219 and summary["days_written"] == 2


def test_tick_files_use_the_store_encoding_and_old_zstd_files_still_read(tmp_path):
    """Kept and quarantined ticks are written with TICK_PARQUET_OPTIONS (ts delta-packed,
    lz4 pages); a partition written before that (zstd, default encodings) reads the same,
    and its metadata still marks it complete."""
    cfg = SyntheticConfig(seed=3)
    out = tmp_path / "ticks"
    day = dt.date(2025, 7, 7)
    rep = ingest_synthetic("EURUSD", day, day + dt.timedelta(days=1), out, cfg, use_ray=False)
    assert rep.ok
    path = tick_store.partition_dir(out, "EURUSD", day) / tick_store.PART_NAME
    meta = pq.read_metadata(path)
    cols = {
        meta.schema.column(i).name: meta.row_group(0).column(i) for i in range(meta.num_columns)
    }
    assert cols["ts"].compression == "LZ4" and "DELTA_BINARY_PACKED" in cols["ts"].encodings
    assert all("RLE_DICTIONARY" in c.encodings for n, c in cols.items() if n != "ts")
    before = tick_store.read_ticks(out, "EURUSD")
    old = pq.read_table(path)
    pq.write_table(old, path, compression="zstd")  # as earlier versions wrote it
    assert pq.read_metadata(path).row_group(0).column(0).compression == "ZSTD"
    assert tick_store.read_ticks(out, "EURUSD").equals(before)
    assert tick_store.is_complete(out, "EURUSD", day)
