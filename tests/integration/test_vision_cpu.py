"""The CPU backend (a real ChartNet on torch) in-process and through a Ray actor pool."""

from __future__ import annotations

import io

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from aio_ray.charts.raster import PALETTE, encode_png, rasterize
from aio_ray.patterns.detectors import support_resistance
from aio_ray.patterns.vocabulary import PATTERNS, TRENDS
from aio_ray.vision.backends import VisionSettings, make_backend
from aio_ray.vision.backends.base import AnalysisRequest, VisionBackend
from aio_ray.vision.backends.cpu import CpuBackend, analysis_from_probs
from aio_ray.vision.log import AnalysisLog, read_log
from aio_ray.vision.model import MODEL_ID, ChartNet, load_chartnet, predict, save_chartnet
from aio_ray.vision.pool import (
    analyze_dataset,
    analyze_requests,
    records_of,
    requests_dataset,
)

SIZE = (112, 112)
H = 3_600_000


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A seeded, untrained ChartNet saved in the shipped format (real weights, real model)."""
    torch.manual_seed(11)
    net = ChartNet(len(PALETTE))
    with torch.no_grad():  # spread the pattern outputs so some clear a 0.5 threshold
        net.pattern_head.bias.copy_(torch.linspace(-2.0, 2.0, len(PATTERNS)))
    return save_chartnet(net, tmp_path_factory.mktemp("w") / "chartnet.pt")


def _window(seed: int, n: int = 48, drift: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = 1.10 + np.cumsum(rng.normal(drift, 2e-4, n))
    o = np.r_[c[0] - 1e-4, c[:-1]]
    h = np.maximum(o, c) + rng.uniform(0, 2e-4, n)
    lo = np.minimum(o, c) - rng.uniform(0, 2e-4, n)
    return np.column_stack([o, h, lo, c])


def _request(i: int, *, png: bool = False, with_bars: bool = True) -> AnalysisRequest:
    ohlc = _window(i, drift=(1e-4 if i % 2 else -1e-4))
    img = rasterize(*ohlc.T, size=SIZE)
    return AnalysisRequest(
        image=encode_png(img) if png else img,
        instrument="EURUSD",
        timeframe="1h",
        window_start=i * H,
        window_end=(i + len(ohlc) - 1) * H,
        summary="",
        ohlc=ohlc if with_bars else None,
    )


def _settings(weights, **kw) -> VisionSettings:
    return VisionSettings(backend="cpu", cpu_weights=weights, **kw)


def test_cpu_backend_reads_chartnet_probabilities_exactly(weights):
    backend = make_backend("cpu", _settings(weights, pattern_threshold=0.6))
    assert isinstance(backend, VisionBackend) and backend.model_id == MODEL_ID == "aio-chartnet-v1"
    reqs = [_request(i) for i in range(6)]
    recs = backend.analyze(reqs)

    pred = predict(load_chartnet(weights), np.stack([r.image for r in reqs]))
    assert len(recs) == 6
    for k, (req, rec) in enumerate(zip(reqs, recs, strict=True)):
        a = rec.analysis
        assert rec.ok and rec.backend == "cpu" and rec.attempts == 1 and rec.raw_text is None
        assert (rec.window_start, rec.window_end) == (req.window_start, req.window_end)
        assert a.trend == TRENDS[int(np.argmax(pred.trend_probs[k]))]
        assert a.confidence == pytest.approx(float(pred.trend_probs[k].max()), abs=1e-6)
        expect = {p for p, q in zip(PATTERNS, pred.pattern_probs[k], strict=True) if q >= 0.6}
        assert set(a.patterns) == expect and expect  # the biased head clears the threshold
        o = req.ohlc
        assert a.levels == support_resistance(o[:, 1], o[:, 2], o[:, 3], max_levels=4)
        assert TRENDS[int(np.argmax(pred.trend_probs[k]))] in a.rationale.replace("trend", " ")
        assert f"p={a.confidence:.2f}" in a.rationale and len(a.rationale) <= 300


def test_png_and_palette_inputs_give_the_same_analysis(weights):
    backend = CpuBackend(_settings(weights))
    arrays = backend.analyze([_request(i) for i in range(3)])
    pngs = backend.analyze([_request(i, png=True) for i in range(3)])
    assert [r.analysis for r in arrays] == [r.analysis for r in pngs]


def test_an_rgb_png_is_mapped_back_to_the_palette(weights):
    from PIL import Image

    from aio_ray.charts.raster import to_rgb

    req = _request(4)
    buf = io.BytesIO()
    Image.fromarray(to_rgb(req.image), mode="RGB").save(buf, format="PNG")
    rgb_req = AnalysisRequest(
        image=buf.getvalue(),
        instrument="EURUSD",
        timeframe="1h",
        window_start=req.window_start,
        window_end=req.window_end,
        ohlc=req.ohlc,
    )
    backend = CpuBackend(_settings(weights))
    assert backend.analyze([rgb_req])[0].analysis == backend.analyze([req])[0].analysis


def test_without_bars_there_are_no_levels_and_a_bad_image_fails_alone(weights):
    backend = CpuBackend(_settings(weights))
    garbage = AnalysisRequest(
        image=b"\x89PNG\r\n\x1a\n" + b"garbage",
        instrument="EURUSD",
        timeframe="1h",
        window_start=0,
        window_end=0,
    )
    out_of_palette = AnalysisRequest(
        image=np.full((112, 112), 200, np.uint8),
        instrument="EURUSD",
        timeframe="1h",
        window_start=0,
        window_end=0,
    )
    recs = backend.analyze([_request(0, with_bars=False), garbage, out_of_palette, _request(1)])
    assert [r.status for r in recs] == ["ok", "failed", "failed", "ok"]
    assert recs[0].analysis.levels == []
    assert "cannot read chart image" in recs[1].error and "palette index 200" in recs[2].error


def test_charts_of_different_sizes_are_analysed_in_one_call(weights):
    backend = CpuBackend(_settings(weights))
    small = _request(2)
    big = AnalysisRequest(
        image=rasterize(*small.ohlc.T, size=(224, 224)),
        instrument="EURUSD",
        timeframe="1h",
        window_start=small.window_start,
        window_end=small.window_end,
        ohlc=small.ohlc,
    )
    recs = backend.analyze([small, big, _request(3)])
    assert all(r.ok for r in recs) and len(recs) == 3


def test_missing_weights_name_the_path(tmp_path):
    from aio_ray.vision.model import ModelNotFoundError

    with pytest.raises(ModelNotFoundError, match="nowhere.pt"):
        make_backend("cpu", VisionSettings(cpu_weights=tmp_path / "nowhere.pt"))


def test_analysis_from_probs_keeps_only_valid_levels_and_sorts_patterns():
    tp = np.array([0.2, 0.1, 0.7])
    pp = np.zeros(len(PATTERNS))
    pp[PATTERNS.index("doji")] = 0.55
    pp[PATTERNS.index("bull_flag")] = 0.9
    a = analysis_from_probs(tp, pp, threshold=0.5, levels=[1.1, float("nan"), -1.0, 1.2])
    assert a.trend == "sideways" and a.confidence == pytest.approx(0.7)
    assert a.patterns == ["bull_flag", "doji"] and a.levels == [1.1, 1.2]
    assert a.rationale.startswith(
        "ChartNet reads a sideways market (p=0.70) with bull_flag (p=0.90)"
    )


def test_analyze_requests_batches_and_logs_every_record(weights, tmp_path):
    backend = CpuBackend(_settings(weights))
    reqs = [_request(i) for i in range(7)]
    with AnalysisLog(tmp_path / "log", flush_rows=3) as log:
        recs = analyze_requests(backend, reqs, batch_size=3, log=log)
    assert [r.window_start for r in recs] == [r.window_start for r in reqs]
    table = read_log(tmp_path / "log")
    assert table.num_rows == 7 and set(table.column("model").to_pylist()) == {MODEL_ID}
    from aio_ray.vision.analysis import records_from_table

    assert records_from_table(table) == recs  # the log holds every field of every record
    with pytest.raises(ValueError, match="batch_size"):
        analyze_requests(backend, reqs, batch_size=0)


def test_request_rows_share_one_schema():
    from aio_ray.vision.pool import _batch_requests, request_rows

    same = request_rows([_request(i) for i in range(3)])
    assert all(isinstance(r["image"], np.ndarray) for r in same)  # a tensor column
    mixed = request_rows([_request(0), _request(1, png=True), _request(2, with_bars=False)])
    assert all(isinstance(r["image"], bytes) for r in mixed)  # one binary column
    assert mixed[2]["ohlc"] is None and len(mixed[0]["ohlc"]) == 4 * 48
    # a numpy batch as Ray Data hands it to the actor: images stacked, ohlc as object array
    batch = {k: np.array([r[k] for r in same]) for k in same[0] if k not in ("image", "ohlc")}
    batch["image"] = np.stack([r["image"] for r in same])
    batch["ohlc"] = np.array([np.asarray(r["ohlc"]) for r in same] + [None], dtype=object)[:-1]
    back = _batch_requests(batch)
    assert [b.window_start for b in back] == [0, H, 2 * H]
    assert np.array_equal(back[1].ohlc, _request(1).ohlc) and np.array_equal(
        back[2].image, same[2]["image"]
    )


@pytest.mark.ray
@pytest.mark.slow
def test_actor_pool_runs_the_cpu_backend_over_a_ray_dataset(ray_local, weights, tmp_path):
    reqs = [_request(i) for i in range(10)]
    settings = _settings(weights, concurrency=2, batch_size=3, num_cpus=0.5)
    out = analyze_dataset(requests_dataset(reqs), settings).materialize()
    recs = sorted(records_of(out), key=lambda r: r.window_start)
    assert len(recs) == 10 and all(r.ok for r in recs)
    assert [r.window_start for r in recs] == [q.window_start for q in reqs]
    local = CpuBackend(settings).analyze(reqs)
    for got, want in zip(recs, local, strict=True):
        assert got.analysis.trend == want.analysis.trend
        assert got.analysis.patterns == want.analysis.patterns
        assert got.analysis.levels == pytest.approx(want.analysis.levels)
        assert got.analysis.confidence == pytest.approx(want.analysis.confidence, abs=1e-5)
    assert str(out.schema().base_schema.field("window_start").type) == "timestamp[ms, tz=UTC]"

    from aio_ray.vision.pool import log_dataset

    with AnalysisLog(tmp_path / "log") as log:
        assert log_dataset(out, log) == 10
    assert read_log(tmp_path / "log").num_rows == 10


def test_default_settings_use_the_shipped_weights():
    from aio_ray.vision.model import DEFAULT_WEIGHTS

    if not DEFAULT_WEIGHTS.is_file():
        pytest.skip(f"no shipped ChartNet weights at {DEFAULT_WEIGHTS} yet")
    backend = make_backend()  # VisionSettings() defaults: the cpu backend, shipped weights
    [rec] = backend.analyze([_request(5)])
    assert backend.name == "cpu" and rec.ok and rec.model == MODEL_ID
