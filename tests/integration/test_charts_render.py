"""Rendering bar windows: the plain function and the same over Ray Data."""

from __future__ import annotations

import io

import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from PIL import Image

from aio_ray.bars.store import write_bars
from aio_ray.charts.raster import OVERLAY_FIRST, rasterize
from aio_ray.charts.render import (
    RENDER_SCHEMA,
    RenderError,
    overlay_lines,
    render_windows,
    render_windows_ray,
    window_starts,
)
from aio_ray.indicators import bbands, sma
from aio_ray.schema import BAR_SCHEMA

HOUR = 3_600_000
T0 = 1_549_238_400_000  # 2019-02-04 00:00 UTC


def make_bars(n: int, seed: int = 0) -> pa.Table:
    """``n`` hourly EUR/USD-like bars with the full bar schema."""
    rng = np.random.default_rng(seed)
    mid_c = 1.14 + np.cumsum(rng.normal(0, 4e-4, n))
    mid_o = np.concatenate([[1.14], mid_c[:-1]])
    mid_h = np.maximum(mid_o, mid_c) + np.abs(rng.normal(0, 2e-4, n))
    mid_l = np.minimum(mid_o, mid_c) - np.abs(rng.normal(0, 2e-4, n))
    half = 5e-5
    cols: dict[str, object] = {
        "ts": pa.array(T0 + np.arange(n) * HOUR, pa.int64()).cast(BAR_SCHEMA.field("ts").type)
    }
    for side, d in (("bid", -half), ("ask", half), ("mid", 0.0)):
        for k, v in (("open", mid_o), ("high", mid_h), ("low", mid_l), ("close", mid_c)):
            cols[f"{side}_{k}"] = v + d
    cols["spread_mean"] = np.full(n, 2 * half)
    cols["spread_max"] = np.full(n, 3 * half)
    cols["ticks"] = rng.integers(100, 1000, n)
    cols["bid_volume"] = rng.gamma(2.0, 50.0, n)
    cols["ask_volume"] = rng.gamma(2.0, 50.0, n)
    return pa.table(cols, schema=BAR_SCHEMA)


def test_window_starts() -> None:
    assert window_starts(10, 4, 3).tolist() == [0, 3, 6]
    assert window_starts(10, 4, 1).tolist() == list(range(7))
    assert window_starts(4, 4, 5).tolist() == [0]
    assert window_starts(3, 4, 1).size == 0
    assert window_starts(10, 4, 3).dtype == np.int64
    with pytest.raises(RenderError, match="stride"):
        window_starts(10, 4, 0)
    with pytest.raises(RenderError, match="window"):
        window_starts(10, 0, 1)


def test_render_windows_counts_and_timestamps() -> None:
    bars = make_bars(100)
    table = render_windows(bars, window=16, stride=8, size=(96, 128))
    assert table.schema.remove_metadata().equals(RENDER_SCHEMA)
    assert table.schema.metadata[b"format"] == b"png"
    assert table.num_rows == (100 - 16) // 8 + 1 == 11
    start = table.column("window_start").cast(pa.int64()).to_numpy()
    end = table.column("window_end").cast(pa.int64()).to_numpy()
    np.testing.assert_array_equal(start, T0 + np.arange(11) * 8 * HOUR)
    np.testing.assert_array_equal(end - start, np.full(11, 15 * HOUR))  # open of the last bar
    for png in table.column("image").to_pylist():
        im = Image.open(io.BytesIO(png))
        assert im.mode == "P" and im.size == (128, 96)
    # default stride: windows do not overlap
    assert render_windows(bars, window=16, size=(96, 128)).num_rows == 100 // 16


def test_each_image_is_its_window_with_lines_computed_on_the_whole_series() -> None:
    bars = make_bars(120, seed=2)
    frame = pl.from_arrow(bars)
    table = render_windows(frame, window=32, stride=10, size=(120, 160), as_png=False)
    assert table.schema.metadata[b"format"] == b"raw"
    c = frame["mid_close"].to_numpy()
    ma, (up, _, lo) = sma(c, 20), bbands(c, 20, 2.0)
    vol = (frame["bid_volume"] + frame["ask_volume"]).to_numpy()
    for k, raw in enumerate(table.column("image").to_pylist()):
        s = slice(10 * k, 10 * k + 32)
        img = np.frombuffer(raw, np.uint8).reshape(120, 160)
        want = rasterize(
            *(frame[f"mid_{f}"].to_numpy()[s] for f in ("open", "high", "low", "close")),
            size=(120, 160),
            volume=vol[s],
            overlays={"sma_20": ma[s], "bb_20_upper": up[s], "bb_20_lower": lo[s]},
        )
        np.testing.assert_array_equal(img, want)
    # the first window lies in the SMA's warm-up for 19 bars: a gap at its left, line after
    first = np.frombuffer(table.column("image")[0].as_py(), np.uint8).reshape(120, 160)
    cols = np.flatnonzero((first == OVERLAY_FIRST).any(axis=0))
    assert cols.min() > 160 * 19 // 32 - 5 and cols.max() > 150


def test_png_and_raw_agree_and_overlays_can_be_left_out() -> None:
    bars = make_bars(70, seed=4)
    png = render_windows(bars, window=64, stride=3, size=(112, 112), overlays=(), volume=False)
    raw = render_windows(
        bars, window=64, stride=3, size=(112, 112), overlays=(), volume=False, as_png=False
    )
    assert png.num_rows == raw.num_rows == 3
    for p, r in zip(png.column("image").to_pylist(), raw.column("image").to_pylist()):
        np.testing.assert_array_equal(
            np.asarray(Image.open(io.BytesIO(p))), np.frombuffer(r, np.uint8).reshape(112, 112)
        )
        assert not (np.frombuffer(r, np.uint8) >= OVERLAY_FIRST - 2).any()  # no lines, no volume


def test_short_series_gives_no_windows_and_bad_arguments_raise() -> None:
    bars = make_bars(10)
    assert render_windows(bars, window=16).num_rows == 0
    with pytest.raises(RenderError, match="unknown overlay 'rsi_14'"):
        render_windows(bars, window=4, overlays=("rsi_14",))
    with pytest.raises(RenderError, match="lack column"):
        render_windows(bars.drop_columns(["mid_high"]), window=4)
    with pytest.raises(RenderError, match="cannot hold"):
        render_windows(bars, window=8, size=(64, 4))
    lines = overlay_lines(np.linspace(1, 2, 50), ["ema_10", "bb_20_2.5"])
    assert list(lines) == ["ema_10", "bb_20_2.5_upper", "bb_20_2.5_lower"]


@pytest.mark.ray
def test_render_windows_ray_matches_the_plain_function(ray_local, tmp_path) -> None:
    bars = make_bars(300, seed=6)
    kw = {"window": 32, "stride": 5, "size": (64, 96)}
    plain = render_windows(bars, **kw)
    ds = render_windows_ray(bars, windows_per_task=7, **kw)
    got = pa.concat_tables(_tables(ds)).sort_by("window_start")
    assert got.num_rows == plain.num_rows == (300 - 32) // 5 + 1
    assert got.column("window_start").equals(plain.column("window_start"))
    assert got.column("window_end").equals(plain.column("window_end"))
    assert got.column("image").to_pylist() == plain.column("image").to_pylist()

    # from a bars directory, by timeframe
    write_bars(tmp_path / "bars", "1h", "EURUSD", bars)
    from_dir = render_windows_ray(tmp_path / "bars", timeframe="1h", windows_per_task=50, **kw)
    rows = sorted(from_dir.take_all(), key=lambda r: r["window_start"])
    assert [r["image"] for r in rows] == plain.column("image").to_pylist()
    with pytest.raises(RenderError, match="timeframe"):
        render_windows_ray(tmp_path / "bars", **kw)


def _tables(ds) -> list[pa.Table]:
    import ray

    return list(ray.get(ds.to_arrow_refs()))
