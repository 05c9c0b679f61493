"""`aio ingest bars`: trader bar files (TradingView, MetaTrader, HistData, own CSV/Parquet) in,
the project's bars layout out, bad rows quarantined with a reason, bad files named."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from aio_ray.bars import bars_from_ticks, read_bars, read_manifest
from aio_ray.cli import app
from aio_ray.data.bar_ingest import ingest_bar_files
from aio_ray.errors import ConfigError, CorruptFileError, SchemaError, TimezoneError
from aio_ray.schema import TICK_SCHEMA, TS_TYPE

runner = CliRunner()
H = 3_600_000
T0 = int(dt.datetime(2024, 1, 2, tzinfo=dt.UTC).timestamp())  # a Tuesday, 00:00 UTC


def aio(*args: str) -> tuple[int, str, str]:
    res = runner.invoke(app, list(args))
    return res.exit_code, res.stdout, res.stderr


def ms(s: str) -> int:
    return int(dt.datetime.fromisoformat(s).timestamp() * 1000)


def tv_rows(n: int = 48, start: int = T0, step: int = 3600) -> list[str]:
    rows = []
    price = 1.1
    for i in range(n):
        o = price
        c = o + (0.0004 if i % 3 else -0.0003)
        rows.append(
            f"{start + i * step},{o:.5f},{max(o, c) + 0.0002:.5f},{min(o, c) - 0.0001:.5f},{c:.5f},{10 + i}"
        )
        price = c
    return rows


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def quarantine(out: Path, tf: str = "1h") -> pl.DataFrame:
    return pl.read_parquet(
        out / "_quarantine" / f"timeframe={tf}" / "symbol=EURUSD" / "part-0.parquet"
    )


# ----------------------------------------------------------------------------- formats


def test_tradingview_export_becomes_mid_bars_with_the_spread_around_it_and_rolls_up(
    tmp_path: Path,
) -> None:
    f = write(tmp_path / "EURUSD_60.csv", ["time,open,high,low,close,Volume", *tv_rows()])
    rep = ingest_bar_files(
        [f], "1h", "eurusd", tmp_path / "bars", spread=0.0002, timeframes=["1h", "4h", "1d"]
    )
    assert rep.files[0]["format"] == "tradingview" and rep.files[0]["price"] == "mid"
    assert rep.totals["input"] == rep.totals["kept"] == 48
    b = read_bars(tmp_path / "bars", "1h")
    src = pl.read_csv(f)
    assert b["ts"][0] == dt.datetime(2024, 1, 2, tzinfo=dt.UTC)
    assert np.allclose(b["mid_close"], src["close"]) and np.allclose(
        b["ask_close"] - b["bid_close"], 0.0002
    )
    assert np.allclose(b["bid_high"], src["high"] - 0.0001) and (b["spread_mean"] == 0.0002).all()
    assert (b["ticks"] == 0).all() and np.allclose(b["bid_volume"] + b["ask_volume"], src["Volume"])
    four = read_bars(tmp_path / "bars", "4h")
    assert (
        four.height == 12
        and four["mid_open"][1] == b["mid_open"][4]
        and four["mid_close"][1] == b["mid_close"][7]
    )
    assert np.isclose(four["mid_high"][0], b["mid_high"][:4].max()) and np.isclose(
        four["bid_volume"][0], b["bid_volume"][:4].sum()
    )
    assert read_bars(tmp_path / "bars", "1d").height == 2
    m = read_manifest(tmp_path / "bars")
    assert m["rows"] == {"1h": {"EURUSD": 48}, "4h": {"EURUSD": 12}, "1d": {"EURUSD": 2}}
    assert m["entries"]["EURUSD"]["source"]["kind"] == "bar files"


def test_iso_times_with_offsets_are_converted_to_utc_row_by_row(tmp_path: Path) -> None:
    # Berlin local time across the DST change: offsets +01:00 then +02:00 in one file.
    lines = [
        "time,open,high,low,close",
        "2024-03-31T00:00:00+01:00,1.1,1.2,1.0,1.1",
        "2024-03-31T01:00:00+01:00,1.1,1.2,1.0,1.1",
        "2024-03-31T03:00:00+02:00,1.1,1.2,1.0,1.1",
        "2024-03-31T04:00:00Z,1.1,1.2,1.0,1.1",
    ]
    rep = ingest_bar_files(
        [write(tmp_path / "tv.csv", lines)], "1h", "EURUSD", tmp_path / "b", spread=0
    )
    ts = read_bars(tmp_path / "b", "1h")["ts"].dt.epoch("ms").to_list()
    assert ts == [
        ms("2024-03-30T23:00:00+00:00"),
        ms("2024-03-31T00:00:00+00:00"),
        ms("2024-03-31T01:00:00+00:00"),
        ms("2024-03-31T04:00:00+00:00"),
    ]
    assert rep.files[0]["spread"].startswith("fixed --spread 0")


def test_naive_and_offset_times_mixed_in_one_file_are_an_error_naming_both_lines(
    tmp_path: Path,
) -> None:
    f = write(
        tmp_path / "mixed.csv",
        [
            "time,open,high,low,close",
            "2024-01-02T00:00:00Z,1.1,1.2,1.0,1.1",
            "2024-01-02 01:00:00,1.1,1.2,1.0,1.1",
        ],
    )
    with pytest.raises(TimezoneError, match=r"mixed.csv: .*line/row 2.*without \(line/row 3"):
        ingest_bar_files([f], "1h", "EURUSD", tmp_path / "b", spread=0)
    code, _, err = aio(
        "ingest", "bars", str(f), "--timeframe", "1h", "--out", str(tmp_path / "b"), "--spread", "0"
    )
    assert code == 2 and "mixes times with a UTC offset" in err and not (tmp_path / "b").exists()


def test_metatrader5_export_is_bid_with_spread_in_points_and_tick_volume(tmp_path: Path) -> None:
    lines = [
        "<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>\t<VOL>\t<SPREAD>",
        "2024.01.02\t00:00:00\t1.10000\t1.10050\t1.09950\t1.10020\t120\t0\t8",
        "2024.01.02\t01:00:00\t1.10020\t1.10060\t1.10000\t1.10040\t80\t0\t12",
    ]
    # MetaTrader 5 writes UTF-16 with a byte-order mark.
    f = tmp_path / "EURUSD_H1.csv"
    f.write_bytes("\n".join(lines).encode("utf-16"))
    rep = ingest_bar_files(
        [f], "1h", "EURUSD", tmp_path / "b", tz="+02:00", timeframes=["1h", "2h"]
    )
    assert rep.files[0]["format"] == "metatrader" and rep.files[0]["price"] == "bid"
    b = read_bars(tmp_path / "b", "1h")
    assert b["ts"].dt.epoch("ms").to_list() == [
        ms("2024-01-01T22:00:00+00:00"),
        ms("2024-01-01T23:00:00+00:00"),
    ]
    assert b["bid_open"].to_list() == [1.1, 1.1002]
    assert np.allclose(b["ask_open"] - b["bid_open"], [8e-5, 12e-5]) and b["ticks"].to_list() == [
        120,
        80,
    ]
    two = read_bars(tmp_path / "b", "2h")
    assert two["ticks"].to_list() == [200] and np.isclose(
        two["spread_mean"][0], (120 * 8e-5 + 80 * 12e-5) / 200
    )


def test_metatrader4_history_without_header(tmp_path: Path) -> None:
    f = write(
        tmp_path / "EURUSD60.csv",
        [
            "2024.01.02,00:00,1.1000,1.1005,1.0995,1.1002,55",
            "2024.01.02,01:00,1.1002,1.1006,1.1000,1.1004,40",
        ],
    )
    rep = ingest_bar_files([f], "1h", "EURUSD", tmp_path / "b", spread=0.0001)
    assert rep.files[0]["format"] == "metatrader" and rep.totals["kept"] == 2
    b = read_bars(tmp_path / "b", "1h")
    assert b["ticks"].to_list() == [55, 40] and np.allclose(b["ask_close"], [1.1003, 1.1005])


def test_histdata_minutes_are_est_without_daylight_saving(tmp_path: Path) -> None:
    f = write(
        tmp_path / "DAT_ASCII_EURUSD_M1_2024.csv",
        [
            "20240102 000000;1.104270;1.104290;1.104250;1.104290;0",
            "20240102 000100;1.104290;1.104300;1.104200;1.104210;0",
            "20240702 000000;1.070000;1.070100;1.069900;1.070050;0",
        ],
    )
    rep = ingest_bar_files([f], "1m", "EURUSD", tmp_path / "b", spread=0.00002, timeframes=["1m"])
    assert rep.files[0]["format"] == "histdata" and rep.files[0]["tz"] == "Etc/GMT+5"
    ts = read_bars(tmp_path / "b", "1m")["ts"].dt.epoch("ms").to_list()
    # 05:00 UTC in January and in July: no daylight saving.
    assert ts == [
        ms("2024-01-02T05:00:00+00:00"),
        ms("2024-01-02T05:01:00+00:00"),
        ms("2024-07-02T05:00:00+00:00"),
    ]


def test_column_map_reads_a_parquet_file_with_bid_and_ask_and_naive_local_times(
    tmp_path: Path,
) -> None:
    local = [
        dt.datetime(2024, 11, 3, 0),
        dt.datetime(2024, 11, 3, 1),
        dt.datetime(2024, 11, 3, 1),
        dt.datetime(2024, 11, 3, 2),
    ]  # New York: 01:00 happens twice
    n = len(local)
    table = pa.table(
        {
            "Date": local,
            **{f"B{p}": [1.1] * n for p in "OHLC"},
            **{f"A{p}": [1.1002] * n for p in "OHLC"},
        }
    )
    table = table.set_column(2, "BH", pa.array([1.1001] * n)).set_column(
        6, "AH", pa.array([1.1003] * n)
    )
    f = tmp_path / "mine.parquet"
    pq.write_table(table, f)
    args = [f"bid_{x}=B{p}" for x, p in zip(("open", "high", "low", "close"), "OHLC", strict=True)]
    args += [f"ask_{x}=A{p}" for x, p in zip(("open", "high", "low", "close"), "OHLC", strict=True)]
    cmd = [
        "ingest",
        "bars",
        str(f),
        "--timeframe",
        "1h",
        "--out",
        str(tmp_path / "b"),
        "--map",
        "ts=Date",
        "--tz",
        "America/New_York",
        "--timeframes",
        "1h",
        "--json",
    ]
    for a in args:
        cmd += ["--map", a]
    code, out, err = aio(*cmd)
    assert code == 0, err
    doc = json.loads(out)
    assert doc["totals"]["kept"] == 4 and doc["files"][0]["price"] == "bid/ask"
    b = read_bars(tmp_path / "b", "1h")
    assert b["ts"].dt.epoch("ms").to_list() == [
        ms("2024-11-03T04:00:00+00:00") + i * H for i in range(4)
    ]
    assert np.allclose(b["mid_high"], 1.1002) and np.allclose(b["spread_mean"], 0.0002)


def test_ticks_written_as_bid_ask_minute_bars_roll_up_to_the_tick_paths_bars(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(3)
    n = 20_000
    ts = ms("2024-01-02T00:00:00+00:00") + np.cumsum(rng.integers(0, 2_000, n))
    bid = 1.1 + np.cumsum(rng.integers(-2, 3, n)) / 1e5
    ticks = pa.Table.from_arrays(
        [
            pa.array(ts).cast(TS_TYPE),
            pa.array(bid),
            pa.array(bid + rng.integers(1, 4, n) / 1e5),
            pa.array(np.ones(n, np.float32)),
            pa.array(np.ones(n, np.float32)),
        ],
        schema=TICK_SCHEMA,
    )
    ref = bars_from_ticks(ticks, ["1m", "15m", "1h"])
    m1 = pl.from_arrow(ref["1m"]).with_columns(volume=pl.col("bid_volume") + pl.col("ask_volume"))
    f = tmp_path / "m1.parquet"
    m1.select(
        "ts",
        *[f"{s}_{p}" for s in ("bid", "ask") for p in ("open", "high", "low", "close")],
        "ticks",
        "volume",
    ).write_parquet(f)
    ingest_bar_files([f], "1m", "EURUSD", tmp_path / "b", timeframes=["1m", "15m", "1h"])
    for tf in ("15m", "1h"):
        got, want = read_bars(tmp_path / "b", tf), pl.from_arrow(ref[tf])
        cols = ["ts", "ticks"] + [
            f"{s}_{p}" for s in ("bid", "ask") for p in ("open", "high", "low", "close")
        ]
        cols += ["mid_open", "mid_close", "spread_max"]
        assert got.select(cols).equals(want.select(cols)), tf
        assert np.allclose(
            got["bid_volume"] + got["ask_volume"], want["bid_volume"] + want["ask_volume"]
        )


# ----------------------------------------------------------------------------- bad input


def test_bad_rows_are_quarantined_with_reason_row_and_column_and_nothing_valid_is_lost(
    tmp_path: Path,
) -> None:
    rows = tv_rows(10)
    rows[2] = rows[2].replace(rows[2].split(",")[2], "abc")  # text in a price column (line 4)
    rows[3] = ",".join(
        [rows[3].split(",")[0], "1.1", "1.0", "1.2", "1.1", "5"]
    )  # high below low (line 5)
    rows[4] = rows[4].replace(rows[4].split(",")[1], "NaN")  # NaN price (line 6)
    rows[5] = ",".join([rows[5].split(",")[0], "", *rows[5].split(",")[2:]])  # empty open (line 7)
    dup = rows[6]
    conflict = ",".join([rows[7].split(",")[0], "1.2", "1.3", "1.1", "1.2", "1"])
    f = write(
        tmp_path / "bad.csv",
        ["time,open,high,low,close,Volume", *rows, dup, conflict, "x,1,1,1,1,1"],
    )
    code, out, err = aio(
        "ingest",
        "bars",
        str(f),
        "--timeframe",
        "1h",
        "--out",
        str(tmp_path / "b"),
        "--spread",
        "0.0001",
        "--json",
    )
    assert code == 0, err
    doc = json.loads(out)
    t = doc["totals"]
    assert t["input"] == 13 and t["kept"] == 6
    assert {k: v for k, v in t.items() if v and k not in ("input", "kept")} == {
        "not_a_number": 1,
        "inverted": 1,
        "bad_price": 1,
        "missing_value": 1,
        "duplicate": 1,
        "conflict": 1,
        "bad_time": 1,
    }
    q = quarantine(tmp_path / "b")
    assert q.height == t["input"] - t["kept"]
    by_reason = {r["reason"]: r for r in q.iter_rows(named=True)}
    assert (
        by_reason["not_a_number"]["row"] == 4
        and "column 'high' (high): 'abc' is not a number" in by_reason["not_a_number"]["detail"]
    )
    assert "high=abc" in by_reason["not_a_number"]["raw"] and by_reason["not_a_number"][
        "source"
    ] == str(f)
    assert by_reason["inverted"]["row"] == 5 and by_reason["bad_price"]["row"] == 6
    assert by_reason["missing_value"]["row"] == 7 and by_reason["duplicate"]["row"] == 12
    assert by_reason["conflict"]["row"] == 13 and "bad.csv row 9" in by_reason["conflict"]["detail"]
    assert (
        by_reason["bad_time"]["row"] == 14
        and "'x' is not a time" in by_reason["bad_time"]["detail"]
    )
    assert read_bars(tmp_path / "b", "1h").height == 6
    assert json.loads((tmp_path / "b" / "_ingest_report_EURUSD.json").read_text())["totals"] == t


def test_missing_columns_name_the_file_and_what_is_missing(tmp_path: Path) -> None:
    f = write(tmp_path / "nolow.csv", ["Date,Open,High,Close", "2024-01-02,1,1,1"])
    with pytest.raises(
        SchemaError, match=r"nolow.csv: .*not recognized.*the file has: 'Date', 'Open'"
    ):
        ingest_bar_files([f], "1d", "EURUSD", tmp_path / "b", spread=0)
    code, _, err = aio(
        "ingest",
        "bars",
        str(f),
        "--timeframe",
        "1d",
        "--out",
        str(tmp_path / "b"),
        "--spread",
        "0",
        "--map",
        "ts=Date",
        "--map",
        "open=Open",
        "--map",
        "high=High",
        "--map",
        "close=Close",
    )
    assert code == 2 and "nolow.csv" in err and "['low']" in err
    code, _, err = aio(
        "ingest",
        "bars",
        str(f),
        "--timeframe",
        "1d",
        "--out",
        str(tmp_path / "b"),
        "--spread",
        "0",
        "--map",
        "ts=Date",
        "--map",
        "open=Open",
        "--map",
        "high=High",
        "--map",
        "close=Close",
        "--map",
        "low=Lo",
    )
    assert code == 2 and "missing column 'Lo' (for low)" in err


def test_a_file_that_is_neither_csv_nor_parquet_fails_by_name_and_writes_nothing(
    tmp_path: Path,
) -> None:
    good = write(
        tmp_path / "good.csv",
        ["time,open,high,low,close", *[r.rsplit(",", 1)[0] for r in tv_rows(5)]],
    )
    junk = tmp_path / "bars.xlsx"
    junk.write_bytes(b"PK\x03\x04\x00\x00binary\x00stuff")
    with pytest.raises(CorruptFileError, match=r"bars.xlsx: binary data, not CSV text"):
        ingest_bar_files([good, junk], "1h", "EURUSD", tmp_path / "b", spread=0)
    fake = tmp_path / "fake.parquet"
    fake.write_text("time,open\n1,2\n")
    code, _, err = aio(
        "ingest",
        "bars",
        str(good),
        str(fake),
        "--timeframe",
        "1h",
        "--out",
        str(tmp_path / "b"),
        "--spread",
        "0",
    )
    assert code == 2 and "fake.parquet: not a readable Parquet file" in err
    assert not (tmp_path / "b").exists()


def test_single_price_bars_without_any_spread_are_refused(tmp_path: Path) -> None:
    f = write(
        tmp_path / "tv.csv",
        ["time,open,high,low,close", *[r.rsplit(",", 1)[0] for r in tv_rows(5)]],
    )
    with pytest.raises(ConfigError, match="need a spread"):
        ingest_bar_files([f], "1h", "EURUSD", tmp_path / "b")


def test_out_of_order_rows_are_sorted_and_counted_and_gaps_reported(tmp_path: Path) -> None:
    rows = tv_rows(24 * 8, start=T0 - 24 * 3600)  # Mon .. next Mon
    keep = [
        r for r in rows if dt.datetime.fromtimestamp(int(r.split(",")[0]), dt.UTC).weekday() < 5
    ]
    keep = keep[:10] + keep[12:]  # a 2-hour hole on Monday
    keep[3], keep[4] = keep[4], keep[3]
    f = write(tmp_path / "tv.csv", ["time,open,high,low,close,Volume", *keep])
    rep = ingest_bar_files([f], "1h", "EURUSD", tmp_path / "b", spread=0.0001, timeframes=["1h"])
    assert rep.out_of_order == 1 and rep.totals["kept"] == len(keep)
    assert (
        rep.gaps["count"] == 2 and rep.gaps["weekend"] == 1 and rep.gaps["missing_bars"] == 2 + 48
    )
    assert read_bars(tmp_path / "b", "1h")["ts"].is_sorted()


def test_misaligned_bars_are_quarantined_and_a_file_off_the_grid_is_an_error(
    tmp_path: Path,
) -> None:
    rows = tv_rows(6)
    rows[2] = str(int(rows[2].split(",")[0]) + 1800) + "," + rows[2].split(",", 1)[1]
    f = write(tmp_path / "tv.csv", ["time,open,high,low,close,Volume", *rows])
    rep = ingest_bar_files([f], "1h", "EURUSD", tmp_path / "b", spread=0)
    assert rep.totals["misaligned"] == 1 and rep.totals["kept"] == 5
    daily = write(
        tmp_path / "d.csv",
        ["time,open,high,low,close,Volume", *tv_rows(5, start=T0 - 2 * 3600, step=86400)],
    )
    with pytest.raises(SchemaError, match=r"no bar opens on the 1d grid .*new_york_close"):
        ingest_bar_files([daily], "1d", "EURUSD", tmp_path / "d", spread=0)
    rep = ingest_bar_files(
        [daily], "1d", "EURUSD", tmp_path / "d", spread=0, daily_close="new_york_close"
    )
    assert rep.totals["kept"] == 5


def test_the_wrong_timeframe_is_an_error(tmp_path: Path) -> None:
    f = write(tmp_path / "m1.csv", ["time,open,high,low,close,Volume", *tv_rows(120, step=60)])
    with pytest.raises(SchemaError, match=r"1 min apart \(median\), shorter than --timeframe 1h"):
        ingest_bar_files([f], "1h", "EURUSD", tmp_path / "b", spread=0)


def test_a_dst_gap_time_is_quarantined_as_bad_time(tmp_path: Path) -> None:
    f = write(
        tmp_path / "ny.csv",
        [
            "date,open,high,low,close",
            "2024-03-10 01:00,1,1,1,1",
            "2024-03-10 02:00,1,1,1,1",
            "2024-03-10 03:00,1,1,1,1",
        ],
    )
    rep = ingest_bar_files([f], "1h", "EURUSD", tmp_path / "b", spread=0, tz="America/New_York")
    assert rep.totals["bad_time"] == 1 and rep.totals["kept"] == 2
    assert "daylight saving gap" in quarantine(tmp_path / "b")["detail"][0]


# ----------------------------------------------------------------------------- usable downstream


def test_ingested_bars_backtest_from_the_command_line(tmp_path: Path) -> None:
    mid = 1.1 + 0.01 * np.sin(np.arange(401) / 15)
    rows = [
        f"{T0 + i * 3600},{mid[i]:.5f},{max(mid[i], mid[i + 1]) + 1e-4:.5f},{min(mid[i], mid[i + 1]) - 1e-4:.5f},"
        f"{mid[i + 1]:.5f},1"
        for i in range(400)
    ]
    f = write(tmp_path / "EURUSD_60.csv", ["time,open,high,low,close,Volume", *rows])
    code, out, err = aio(
        "ingest",
        "bars",
        str(f),
        "--timeframe",
        "1h",
        "--out",
        str(tmp_path / "b"),
        "--spread",
        "0.0001",
        "--timeframes",
        "1h,4h",
    )
    assert code == 0, err
    assert "wrote 1h 400, 4h 100 bars" in out
    code, out, err = aio(
        "backtest",
        "--bars",
        str(tmp_path / "b"),
        "--timeframe",
        "1h",
        "--family",
        "ma_cross",
        "--params",
        json.dumps({"fast": 5, "slow": 20, "ma": "sma"}),
        "--json",
    )
    assert code == 0, err
    doc = json.loads(out)
    assert doc["metrics"]["trades"] > 0
    code, _, err = aio(
        "ingest",
        "bars",
        str(f),
        "--timeframe",
        "1h",
        "--out",
        str(tmp_path / "free"),
        "--spread",
        "0",
    )
    assert code == 0, err
    code, out, err = aio(
        "backtest",
        "--bars",
        str(tmp_path / "free"),
        "--timeframe",
        "1h",
        "--family",
        "ma_cross",
        "--params",
        json.dumps({"fast": 5, "slow": 20, "ma": "sma"}),
        "--json",
    )
    free = json.loads(out)
    # The same trades; the bid/ask fills on the spread-carrying bars pay the spread.
    assert free["metrics"]["trades"] == doc["metrics"]["trades"]
    assert free["metrics"]["net_profit"] > doc["metrics"]["net_profit"]
