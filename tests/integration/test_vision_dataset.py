"""The multimodal chart dataset: summaries, labels, leakage, Parquet and the Ray variant."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import talib

from aio_ray.charts.raster import rasterize
from aio_ray.patterns.detectors import synthetic_pattern, window_patterns
from aio_ray.patterns.vocabulary import PATTERNS
from aio_ray.schema import BAR_SCHEMA
from aio_ray.vision.dataset import (
    DatasetError,
    build_dataset,
    build_dataset_ray,
    dataset_info,
    decode_image,
    forward_labels,
    overlay_lines,
    read_dataset,
    trend_label,
    write_dataset,
)
from aio_ray.vision.summary import indicator_summary, summary_values

T0 = int(dt.datetime(2025, 7, 1, tzinfo=dt.UTC).timestamp() * 1000)
H1 = 3_600_000


def make_bars(n: int, seed: int = 0, drift: float = 0.0) -> pl.DataFrame:
    """``n`` hourly bars of a random walk around 1.10 with the bar schema (mid = bid + half spread)."""
    rng = np.random.default_rng(seed)
    c = 1.10 * np.exp(np.cumsum(drift + 4e-4 * rng.standard_normal(n)))
    o = np.r_[1.10, c[:-1]]
    h = np.maximum(o, c) + 2e-4 * rng.random(n)
    lo = np.minimum(o, c) - 2e-4 * rng.random(n)
    return bars_frame(o, h, lo, c)


def bars_frame(o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray) -> pl.DataFrame:
    n = len(c)
    half = 0.5e-4
    cols: dict[str, pa.Array] = {
        "ts": pa.array(T0 + H1 * np.arange(n), pa.int64()).cast(BAR_SCHEMA.field("ts").type)
    }
    for side, off in (("bid", -half), ("ask", half), ("mid", 0.0)):
        for name, arr in (("open", o), ("high", h), ("low", lo), ("close", c)):
            cols[f"{side}_{name}"] = pa.array(arr + off)
    cols["spread_mean"] = pa.array(np.full(n, 2 * half))
    cols["spread_max"] = pa.array(np.full(n, 2 * half))
    cols["ticks"] = pa.array(np.arange(n, dtype=np.int64) % 50 + 10)
    cols["bid_volume"] = pa.array(np.ones(n))
    cols["ask_volume"] = pa.array(np.ones(n))
    return pl.from_arrow(pa.Table.from_pydict(cols, schema=BAR_SCHEMA))


def mid(df: pl.DataFrame) -> tuple[np.ndarray, ...]:
    return tuple(df[f"mid_{p}"].to_numpy().copy() for p in ("open", "high", "low", "close"))


def with_mid(
    df: pl.DataFrame, o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray
) -> pl.DataFrame:
    return df.with_columns(
        pl.Series("mid_open", o),
        pl.Series("mid_high", h),
        pl.Series("mid_low", lo),
        pl.Series("mid_close", c),
    )


SMALL = {"timeframe": "1h", "window": 64, "stride": 8, "horizons": (1, 4, 12), "size": (224, 224)}


# --------------------------------------------------------------------------- summary


def test_summary_reports_the_window_indicators_like_talib() -> None:
    o, h, lo, c = mid(make_bars(80, seed=3))
    text = indicator_summary(o, h, lo, c)
    rsi = talib.RSI(c, 14)[-1]
    assert f"RSI(14) {rsi:.1f}" in text
    sma = talib.SMA(c, 20)[-1]
    assert ("close above SMA(20)" if c[-1] > sma else "close below SMA(20)") in text
    upper, _, lower = talib.BBANDS(c, 20, 2.0, 2.0, 0)
    assert f"BB %B {(c[-1] - lower[-1]) / (upper[-1] - lower[-1]):.2f}" in text
    hist = talib.MACD(c, 12, 26, 9)[2][-1]  # seeds differ slightly from Pine; the sign agrees
    assert ("MACD hist positive" if hist > 0 else "MACD hist negative") in text
    vals = summary_values(o, h, lo, c)
    assert f"ATR(14) {vals.atr_pips:.1f} pips" in text and 0 < vals.atr_pips < 100
    assert 0 <= vals.adx <= 100 and f"ADX(14) {vals.adx:.1f}" in text


def test_summary_marks_indicators_still_warming_up() -> None:
    o, h, lo, c = mid(make_bars(20, seed=1))
    text = indicator_summary(o, h, lo, c)
    assert "MACD hist n/a" in text and "EMA(50) n/a" in text and "ADX(14) n/a" in text
    assert "RSI(14) n/a" not in text  # 20 bars are enough for RSI(14)


# --------------------------------------------------------------------------- labels


def test_trend_label_follows_the_regression_rule() -> None:
    n = 64
    x = np.arange(n, dtype=float)
    c = 1.1 + 1e-4 * x
    h, lo = c + 1e-4, c - 1e-4
    label, score = trend_label(h, lo, c)
    # the line moves 63e-4 over a mean true range of 2e-4 (the first bar) .. 2.5e-4
    tr = np.r_[
        2e-4, np.maximum(h[1:] - lo[1:], np.maximum(abs(h[1:] - c[:-1]), abs(lo[1:] - c[:-1])))
    ]
    assert label == "up" and score == pytest.approx(63e-4 / tr.mean())
    assert trend_label(h[::-1], lo[::-1], c[::-1])[0] == "down"
    rng = np.random.default_rng(0)
    flat = 1.1 + 1e-5 * rng.standard_normal(n)
    assert trend_label(flat + 2e-4, flat - 2e-4, flat)[0] == "sideways"
    assert trend_label(h, lo, c, threshold=1e6)[0] == "sideways"


def test_forward_labels_are_log_returns_in_bps_from_the_last_close() -> None:
    c = np.array([1.0, 1.1, 1.21, 1.0, 1.05])
    f = forward_labels(c, 1, (1, 3, 4))
    assert f[4] is None
    ret, sign, vol = f[3]
    assert ret == pytest.approx(math.log(1.05 / 1.1) * 1e4) and sign == -1
    r = np.diff(np.log(c[1:5]))
    assert vol == pytest.approx(math.sqrt(np.sum(r**2)) * 1e4)
    assert f[1] == pytest.approx((math.log(1.1) * 1e4, 1, math.log(1.1) * 1e4))


# --------------------------------------------------------------------------- dataset


@pytest.fixture(scope="module")
def bars() -> pl.DataFrame:
    return make_bars(200, seed=11)


@pytest.fixture(scope="module")
def table(bars: pl.DataFrame) -> pa.Table:
    return build_dataset(bars, **SMALL)


def test_one_row_per_window_in_time_order(bars: pl.DataFrame, table: pa.Table) -> None:
    starts = list(range(0, 200 - 64 + 1, 8))
    assert table.num_rows == len(starts)
    ts = bars["ts"].dt.epoch("ms").to_numpy()
    ws = table.column("window_start").cast(pa.int64()).to_numpy()
    we = table.column("window_end").cast(pa.int64()).to_numpy()
    assert (
        ws.tolist() == ts[starts].tolist() and we.tolist() == ts[[s + 63 for s in starts]].tolist()
    )
    assert set(table.column("instrument").to_pylist()) == {"EURUSD"}
    assert set(table.column("timeframe").to_pylist()) == {"1h"}
    o, h, lo, c = mid(bars)
    for row, s in zip(
        table.select(["summary", "trend", "patterns", "pattern_hot", "last_close"]).to_pylist(),
        starts,
        strict=True,
    ):
        w = slice(s, s + 64)
        assert row["summary"] == indicator_summary(o[w], h[w], lo[w], c[w])
        assert row["trend"] == trend_label(h[w], lo[w], c[w])[0]
        assert row["patterns"] == window_patterns(o[w], h[w], lo[w], c[w])
        assert row["pattern_hot"] == [int(p in row["patterns"]) for p in PATTERNS]
        assert row["last_close"] == c[s + 63]


def test_windows_near_the_end_get_null_forward_labels_and_are_counted(table: pa.Table) -> None:
    info = dataset_info(table)
    last_bars = np.arange(0, 137, 8) + 63
    for h in (1, 4, 12):
        expect = int(np.sum(last_bars + h > 199))
        col = table.column(f"fwd_ret_{h}")
        assert col.null_count == expect == info["null_forward"][str(h)]
        assert table.column(f"fwd_sign_{h}").null_count == expect
        assert table.column(f"fwd_vol_{h}").null_count == expect
        assert col.to_pylist()[: len(last_bars) - expect] == [
            x for x in col.to_pylist() if x is not None
        ]
    assert info["null_forward"]["12"] > 0  # the check above is not vacuous
    assert info["windows"] == table.num_rows and info["bars"] == 200


def test_future_bars_do_not_change_a_windows_image_summary_or_patterns(
    bars: pl.DataFrame, table: pa.Table
) -> None:
    k = 5  # window 5: bars 40..103
    t = 8 * k + 63
    o, h, lo, c = mid(bars)
    f = np.ones(len(c))
    f[t + 1 :] = np.exp(np.linspace(0.0, 0.05, len(c) - t - 1))  # a different future
    changed = build_dataset(with_mid(bars, o * f, h * f, lo * f, c * f), **SMALL)
    window_cols = [
        "window_start",
        "window_end",
        "image",
        "summary",
        "last_close",
        "trend",
        "trend_score",
        "patterns",
        "pattern_hot",
    ]
    for j in range(k + 1):  # every window ending at or before bar t
        assert changed.select(window_cols).slice(j, 1).equals(table.select(window_cols).slice(j, 1))
    # ... while the labels after bar t did change, and so did later windows' images
    assert changed.column("fwd_ret_4")[k].as_py() != table.column("fwd_ret_4")[k].as_py()
    assert changed.column("image")[k + 1].as_py() != table.column("image")[k + 1].as_py()


def test_window_bars_do_not_change_its_forward_labels(bars: pl.DataFrame, table: pa.Table) -> None:
    k = 9  # window 9: bars 72..135, last close kept
    t = 8 * k + 63
    o, h, lo, c = mid(bars)
    rng = np.random.default_rng(5)
    f = np.ones(len(c))
    f[: t + 1] = np.exp(0.01 * rng.standard_normal(t + 1))
    c2 = c * f
    c2[t] = c[t]
    changed = build_dataset(with_mid(bars, o * f, h * f + 1e-3, lo * f - 1e-3, c2), **SMALL)
    fwd = [n for n in table.column_names if n.startswith("fwd_")]
    assert changed.select(fwd).slice(k, 1).equals(table.select(fwd).slice(k, 1))
    assert changed.column("image")[k].as_py() != table.column("image")[k].as_py()
    assert changed.column("summary")[k].as_py() != table.column("summary")[k].as_py()


def test_parquet_round_trip_decodes_to_the_raster(
    bars: pl.DataFrame, table: pa.Table, tmp_path
) -> None:
    path = write_dataset(table, tmp_path / "ds.parquet")
    back = read_dataset(path)
    assert back.equals(table) and dataset_info(back) == dataset_info(table)
    meta = pq.ParquetFile(path).metadata
    assert all(meta.row_group(0).column(i).compression == "ZSTD" for i in range(meta.num_columns))
    assert back.schema.field("image").type == pa.binary()
    o, h, lo, c = mid(bars)
    series_lines = overlay_lines(c, ("sma_20", "bb_20"))  # on the whole series, as at inference
    assert list(series_lines) == ["sma_20", "bb_20_upper", "bb_20_lower"]
    for k in (0, 7):
        w = slice(8 * k, 8 * k + 64)
        lines = {name: v[w] for name, v in series_lines.items()}
        expect = rasterize(o[w], h[w], lo[w], c[w], size=(224, 224), overlays=lines)
        got = decode_image(back.column("image")[k].as_py())
        assert got.dtype == np.uint8 and np.array_equal(got, expect)


def test_out_dir_writes_the_parquet_file(bars: pl.DataFrame, tmp_path) -> None:
    t = build_dataset(
        bars,
        timeframe="1h",
        window=64,
        stride=64,
        horizons=(2,),
        size=(128, 128),
        overlays=None,
        volume=True,
        out_dir=tmp_path,
    )
    back = read_dataset(tmp_path / "EURUSD_1h.parquet")
    assert back.equals(t) and t.num_rows == 3
    spec = dataset_info(back)["spec"]
    assert spec["volume"] is True and spec["overlays"] == [] and spec["horizons"] == [2]


def test_pattern_windows_are_labelled_with_their_pattern() -> None:
    o, h, lo, c = synthetic_pattern("double_top", n_bars=64, seed=4)
    t = build_dataset(
        bars_frame(o, h, lo, c), timeframe="1h", window=64, horizons=(1,), size=(128, 128)
    )
    assert t.num_rows == 1
    assert "double_top" in t.column("patterns")[0].as_py()
    assert t.column("pattern_hot")[0].as_py()[PATTERNS.index("double_top")] == 1
    assert t.column("fwd_ret_1").null_count == 1


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"window": 1}, "window"),
        ({"stride": 0}, "stride"),
        ({"horizons": ()}, "horizons"),
        ({"horizons": (4, 4)}, "horizons"),
        ({"overlays": ("wma_9",)}, "overlay"),
        ({"window": 500}, "fewer than one window"),
    ],
)
def test_bad_arguments_name_the_argument(bars: pl.DataFrame, kwargs: dict, needle: str) -> None:
    args = {**SMALL, **kwargs}
    with pytest.raises(DatasetError, match=needle):
        build_dataset(bars, **args)


def test_ray_variant_builds_the_same_rows(
    ray_local, bars: pl.DataFrame, table: pa.Table, tmp_path
) -> None:
    t = build_dataset_ray(bars, **SMALL, windows_per_task=5, out_dir=tmp_path)
    assert t.equals(table)
    assert dataset_info(t) == dataset_info(table)
    assert read_dataset(tmp_path / "EURUSD_1h.parquet").equals(table)
