"""The analysis log: buffered Parquet (zstd) files, flushed on size, on close and at exit."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from aio_ray.vision.analysis import AnalysisRecord, ChartAnalysis, records_from_table
from aio_ray.vision.log import LOG_SCHEMA, AnalysisLog, LogError, read_log

REPO = Path(__file__).resolve().parents[2]


def _record(i: int, ok: bool = True, raw: str | None = None) -> AnalysisRecord:
    common = {
        "instrument": "EURUSD",
        "timeframe": "15m",
        "window_start": i * 900_000,
        "window_end": (i + 63) * 900_000,
        "model": "aio-chartnet-v1",
        "backend": "cpu",
        "latency_ms": 1.5 + i,
        "attempts": 1 if ok else 3,
    }
    if ok:
        return AnalysisRecord(
            **common,
            status="ok",
            analysis=ChartAnalysis(
                trend="up",
                patterns=["doji"],
                levels=[1.1 + i * 1e-4],
                confidence=0.6,
                rationale=f"Window {i} drifts up.",
            ),
        )
    return AnalysisRecord(
        **common,
        status="failed",
        raw_text=raw or f"garbage {i}",
        error="invalid answer (json): malformed JSON",
    )


def test_flushes_one_file_per_full_buffer_of_rows(tmp_path):
    log = AnalysisLog(tmp_path, flush_rows=4)
    log.extend(_record(i) for i in range(10))
    assert len(log.files) == 2 and log.pending == 2
    assert read_log(tmp_path).num_rows == 8
    log.close()
    assert len(log.files) == 3 and log.pending == 0
    table = read_log(tmp_path)
    assert table.num_rows == 10
    assert table.column("window_start").to_pylist()[0].year == 1970
    assert [r.window_start for r in records_from_table(table)] == [i * 900_000 for i in range(10)]


def test_flushes_when_the_buffered_bytes_reach_the_limit(tmp_path):
    big = "x" * 5000
    with AnalysisLog(tmp_path, flush_rows=1000, flush_bytes=12_000) as log:
        log.append(_record(0, ok=False, raw=big))
        log.append(_record(1, ok=False, raw=big))
        assert log.files == [] and log.pending == 2
        log.append(_record(2, ok=False, raw=big))  # third 5 kB answer crosses 12 kB
        assert len(log.files) == 1 and log.pending == 0
    assert read_log(tmp_path).column("raw_text").to_pylist() == [big] * 3


def test_files_are_zstd_parquet_with_the_log_schema_and_no_temporaries(tmp_path):
    with AnalysisLog(tmp_path, flush_rows=2) as log:
        log.extend([_record(0), _record(1, ok=False)])
    [f] = log.files
    assert f.name.startswith("analyses-") and f.suffix == ".parquet"
    meta = pq.ParquetFile(f).metadata
    assert meta.row_group(0).column(0).compression == "ZSTD"
    assert pq.read_schema(f).names == LOG_SCHEMA.names
    assert [p.name for p in tmp_path.iterdir()] == [f.name]


def test_failed_records_keep_raw_text_and_error(tmp_path):
    with AnalysisLog(tmp_path) as log:
        log.extend([_record(0), _record(1, ok=False, raw='{"trend": "up", "pat')])
    t = read_log(tmp_path)
    assert t.column("status").to_pylist() == ["ok", "failed"]
    assert t.column("raw_text").to_pylist() == [None, '{"trend": "up", "pat']
    assert t.column("error").to_pylist()[1].startswith("invalid answer")
    assert t.column("trend").to_pylist() == ["up", None]
    assert t.column("patterns").to_pylist() == [["doji"], None]
    assert t.column("attempts").to_pylist() == [1, 3]
    assert all(ts is not None for ts in t.column("logged_at").to_pylist())


def test_a_closed_log_refuses_records_and_close_is_idempotent(tmp_path):
    log = AnalysisLog(tmp_path)
    log.append(_record(0))
    log.close()
    log.close()
    with pytest.raises(LogError, match="closed"):
        log.append(_record(1))
    with pytest.raises(LogError, match="AnalysisRecord"):
        AnalysisLog(tmp_path / "other").append({"trend": "up"})  # type: ignore[arg-type]
    assert read_log(tmp_path).num_rows == 1


def test_a_dropped_log_flushes_when_collected(tmp_path):
    log = AnalysisLog(tmp_path)
    log.extend(_record(i) for i in range(3))
    del log
    gc.collect()
    assert read_log(tmp_path).num_rows == 3


def test_an_unclosed_log_is_flushed_at_interpreter_exit(tmp_path):
    script = textwrap.dedent(
        f"""
        import sys
        from aio_ray.vision.log import AnalysisLog
        from aio_ray.vision.analysis import AnalysisRecord
        log = AnalysisLog({str(tmp_path)!r}, flush_rows=100)
        for i in range(250):
            log.append(AnalysisRecord(instrument="EURUSD", timeframe="1h", window_start=i,
                                      window_end=i, model="m", backend="http", latency_ms=1.0,
                                      status="failed", raw_text="raw %d" % i, error="bad"))
        KEEP = log  # still referenced at exit: only the exit hook can flush it
        print(len(log.files), log.pending)
        sys.exit(0)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert out.stdout.split() == ["2", "50"]  # 200 flushed on size, 50 left for the exit hook
    t = read_log(tmp_path)
    assert t.num_rows == 250
    assert sorted(t.column("raw_text").to_pylist()) == sorted(f"raw {i}" for i in range(250))


def test_read_log_of_an_empty_or_missing_directory_is_empty(tmp_path):
    assert read_log(tmp_path).num_rows == 0
    assert read_log(tmp_path / "missing").schema == LOG_SCHEMA
    (tmp_path / "analyses-bad.parquet").write_bytes(b"not parquet")
    with pytest.raises(LogError, match="analyses-bad.parquet"):
        read_log(tmp_path)


def test_a_file_in_place_of_the_directory_is_an_error(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(LogError, match="not a directory"):
        AnalysisLog(f)
    with pytest.raises(LogError, match="flush_rows"):
        AnalysisLog(tmp_path / "d", flush_rows=0)


def test_a_tolerant_read_skips_and_names_an_unreadable_file(tmp_path):
    from aio_ray.vision.log import read_log_tolerant

    with AnalysisLog(tmp_path, flush_rows=2) as log:
        log.extend([_record(i) for i in range(4)])
    bad = tmp_path / "analyses-99999999T999999999999-1-000000-deadbeef.parquet"
    bad.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(LogError, match="cannot read"):
        read_log(tmp_path)
    table, problems = read_log_tolerant(tmp_path)
    assert table.num_rows == 4
    assert len(problems) == 1 and bad.name in problems[0] and "cannot read" in problems[0]
    from aio_ray.vision.log import compact_log

    rep = compact_log(tmp_path)  # a compaction sets it aside: later reads are clean
    assert rep.kept == 4 and len(rep.problems) == 1 and bad.name in rep.problems[0]
    assert (tmp_path / "_unreadable" / bad.name).exists() and read_log(tmp_path).num_rows == 4


def test_compaction_merges_every_file_into_one_newest_window_first(tmp_path):
    from aio_ray.vision.log import compact_log, log_files

    for batch in ([3, 0], [5, 1], [2, 4]):  # windows logged out of order, in three files
        with AnalysisLog(tmp_path) as log:
            log.extend([_record(i) for i in batch])
    assert len(log_files(tmp_path)) == 3
    rep = compact_log(tmp_path)
    assert (rep.merged, rep.kept, rep.dropped, rep.problems) == (3, 6, 0, [])
    files = log_files(tmp_path)
    assert files == [rep.path] and "compact" in rep.path.name
    starts = [r.window_start // 900_000 for r in records_from_table(read_log(tmp_path))]
    assert starts == [5, 4, 3, 2, 1, 0]
    assert not list(tmp_path.glob(".*.tmp"))
    assert compact_log(tmp_path).path is None  # one file, nothing to drop: left alone


def test_compaction_keeps_at_most_max_rows_and_drops_old_records(tmp_path):
    from aio_ray.vision.log import compact_log

    with AnalysisLog(tmp_path, flush_rows=3) as log:
        log.extend([_record(i) for i in range(9)])
    rep = compact_log(tmp_path, max_rows=4)
    assert (rep.kept, rep.dropped) == (4, 5)
    starts = [r.window_start // 900_000 for r in records_from_table(read_log(tmp_path))]
    assert starts == [8, 7, 6, 5]  # the newest windows stay
    later = read_log(tmp_path)["logged_at"].cast("int64").to_pylist()
    rep = compact_log(tmp_path, max_age_ms=60_000, now_ms=max(later) + 61_000)
    assert (rep.kept, rep.dropped) == (0, 4) and read_log(tmp_path).num_rows == 0
