"""The one overlay grammar: specs, line names, semantics, and the same chart for the model in
training (the dataset, ChartNet's training set) and at inference (render_windows)."""

from __future__ import annotations

import numpy as np
import pytest
import talib

from aio_ray.charts.overlays import (
    DEFAULT_OVERLAYS,
    OverlayError,
    canonical_overlays,
    history_bars,
    line_names,
    overlay_lines,
)
from aio_ray.charts.raster import MAX_OVERLAYS
from aio_ray.charts.render import RenderError, render_windows
from aio_ray.vision.chart_sets import OVERLAY_SETS, _lead_in
from aio_ray.vision.dataset import DatasetError, build_dataset, decode_image
from tests.integration.test_vision_dataset import make_bars


def test_specs_name_their_lines_in_colour_order_and_match_talib() -> None:
    c = 1.1 + np.cumsum(np.random.default_rng(2).normal(0, 1e-4, 300))
    lines = overlay_lines(c, ["ema_10", "bb_20_2.5", "sma_5"])
    assert list(lines) == ["ema_10", "bb_20_2.5_upper", "bb_20_2.5_lower", "sma_5"]
    upper, _, lower = talib.BBANDS(c, 20, 2.5, 2.5, 0)
    np.testing.assert_allclose(lines["bb_20_2.5_upper"], upper, rtol=0, atol=1e-12, equal_nan=True)
    np.testing.assert_allclose(lines["bb_20_2.5_lower"], lower, rtol=0, atol=1e-12, equal_nan=True)
    np.testing.assert_allclose(lines["sma_5"], talib.SMA(c, 5), rtol=0, atol=1e-12, equal_nan=True)
    assert np.isnan(lines["sma_5"][:4]).all() and not np.isnan(lines["sma_5"][4:]).any()
    assert line_names(DEFAULT_OVERLAYS) == ["sma_20", "bb_20_upper", "bb_20_lower"]


def test_the_old_bb_name_means_bb_20() -> None:
    c = np.linspace(1.0, 1.2, 80)
    assert canonical_overlays(["sma_20", "bb"]) == DEFAULT_OVERLAYS
    old, new = overlay_lines(c, ["bb"]), overlay_lines(c, ["bb_20"])
    assert list(old) == list(new) == ["bb_20_upper", "bb_20_lower"]
    assert all(np.array_equal(old[k], new[k], equal_nan=True) for k in new)


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        (["wma_9"], "unknown overlay 'wma_9'"),
        (["sma_0"], "length must be >= 1"),
        (["sma_20_2"], "only 'bb_N_MULT' takes a multiplier"),
        (["bb_20_0"], "multiplier must be > 0"),
        (["sma_20", "sma_20"], "given twice"),
        (["sma_20", "bb", "bb_20"], "given twice"),  # "bb" is "bb_20"
        ([f"sma_{n}" for n in range(2, 3 + MAX_OVERLAYS)], f"at most {MAX_OVERLAYS}"),
        ("sma_20", "a list of specs"),
        (["sma_20; drop table"], "unknown overlay"),
    ],
)
def test_bad_specs_are_refused_with_the_reason(specs: list[str], message: str) -> None:
    with pytest.raises(OverlayError, match=message):
        canonical_overlays(specs)
    with pytest.raises(RenderError, match=message):
        render_windows(make_bars(80), overlays=specs)
    with pytest.raises(DatasetError, match=message):
        build_dataset(make_bars(80), timeframe="1h", overlays=specs)


def test_lines_are_causal_and_rows_are_separate_series() -> None:
    c = 1.1 + np.cumsum(np.random.default_rng(4).normal(0, 1e-4, 200))
    full = overlay_lines(c, DEFAULT_OVERLAYS)
    cut = overlay_lines(c[:120], DEFAULT_OVERLAYS)  # no bar after 119 changes a value up to it
    assert all(np.array_equal(full[k][:120], cut[k], equal_nan=True) for k in full)
    rows = overlay_lines(np.stack([c[:100], c[100:]]), ["sma_20"])["sma_20"]
    assert np.array_equal(rows[1], overlay_lines(c[100:], ["sma_20"])["sma_20"], equal_nan=True)
    assert history_bars(["sma_20", "bb_20"]) == 19 and history_bars([]) == 0
    assert history_bars(["ema_10"]) == 40


def test_a_dataset_chart_is_the_chart_inference_draws() -> None:
    """ChartNet is trained on dataset-style charts and run on render_windows charts: for the
    same bars, window and overlays, the two are the same image, pixel for pixel, including
    windows far from the series start (lines carry over from earlier bars, no warm-up gap)."""
    bars = make_bars(300, seed=8)
    kw = {"window": 64, "stride": 16, "size": (224, 224)}
    data = build_dataset(bars, timeframe="1h", overlays=DEFAULT_OVERLAYS, horizons=(1,), **kw)
    seen = render_windows(bars, overlays=DEFAULT_OVERLAYS, volume=False, as_png=False, **kw)
    assert data.num_rows == seen.num_rows > 10
    for k in range(data.num_rows):
        got = np.frombuffer(seen.column("image")[k].as_py(), np.uint8).reshape(224, 224)
        assert np.array_equal(decode_image(data.column("image")[k].as_py()), got), k


def test_training_windows_carry_lines_from_a_lead_in() -> None:
    """Generated training windows get a history, so their lines cross the whole window as at
    inference (only the first windows of a real series show a warm-up gap)."""
    assert OVERLAY_SETS[-1] == DEFAULT_OVERLAYS
    rng = np.random.default_rng(0)
    o = np.full(64, 1.1)
    c = 1.1 + np.cumsum(rng.normal(0, 2e-4, 64))
    lead = _lead_in(o, c, np.random.default_rng(1))
    assert lead.shape == (40,) and lead[-1] == pytest.approx(1.1)
    lines = overlay_lines(np.concatenate([lead, c]), DEFAULT_OVERLAYS)
    assert all(not np.isnan(v[-64:]).any() for v in lines.values())
