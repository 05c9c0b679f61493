"""The vLLM / Ray Serve LLM path: everything around the engine call, on a CPU-only machine.

vLLM cannot run here (no GPU, no weights), so these tests pin what can: the clear error when
it is missing, the engine/processor/Serve configuration built for MiniCPM-V (checked by Ray's
own config classes), and the row steps before and after the engine, including the retry
rounds, with a stand-in for the engine's text output.
"""

from __future__ import annotations

import base64
import importlib.util
import json

import numpy as np
import pytest

from aio_ray.vision.backends import VisionError, VisionSettings, make_backend
from aio_ray.vision.backends.base import AnalysisRequest, BackendUnavailableError
from aio_ray.vision.backends.vllm_engine import (
    VllmBackend,
    build_processor_config,
    build_vllm_processor,
    engine_input_row,
    engine_kwargs,
    finalize_row,
    prepare_row,
    record_row,
    require_vllm,
    run_with_retries,
    sampling_params,
)
from aio_ray.vision.schema import RECORD_COLUMNS, ChartAnalysis, analysis_json_schema

HAVE_VLLM = importlib.util.find_spec("vllm") is not None
no_vllm = pytest.mark.skipif(HAVE_VLLM, reason="vllm is installed here")

GOOD = {
    "trend": "sideways",
    "patterns": ["symmetric_triangle"],
    "levels": [1.14, 1.145],
    "confidence": 0.55,
    "rationale": "Converging swings inside a range.",
}

SETTINGS = VisionSettings(
    backend="vllm",
    model_source="openbmb/MiniCPM-V-2_6",
    served_model="minicpm-v",
    concurrency=2,
    batch_size=8,
    accelerator_type="A10G",
    max_model_len=4096,
    gpu_memory_utilization=0.85,
    temperature=0.0,
    retry_temperature=0.5,
    max_tokens=256,
    attempts=3,
)


def _png(seed: int) -> bytes:
    import io

    from PIL import Image

    arr = np.random.default_rng(seed).integers(0, 255, (6, 6, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr, mode="RGB").save(buf, format="PNG")
    return buf.getvalue()


def _request(i: int) -> AnalysisRequest:
    return AnalysisRequest(
        image=_png(i),
        instrument="EURUSD",
        timeframe="4h",
        window_start=i * 14_400_000,
        window_end=(i + 63) * 14_400_000,
        summary=f"id={i}",
        ohlc=np.array([[1.14, 1.146, 1.139, 1.145]] * 3),
    )


# --------------------------------------------------------------------------- missing vllm


@no_vllm
def test_missing_vllm_is_a_clear_error_naming_the_install_command():
    with pytest.raises(BackendUnavailableError) as exc:
        require_vllm()
    msg = str(exc.value)
    assert "'vllm'" in msg and "pip install -e '.[gpu]'" in msg
    assert exc.value.backend == "vllm"
    for build in (
        lambda: make_backend("vllm", SETTINGS),
        lambda: VllmBackend(SETTINGS),
        lambda: build_vllm_processor(SETTINGS),
    ):
        with pytest.raises(BackendUnavailableError, match=r"pip install -e '\.\[gpu\]'"):
            build()


def test_unknown_backend_names_the_accepted_ones():
    with pytest.raises(VisionError, match="unknown vision backend 'gpt'.*cpu, vllm, http"):
        make_backend("gpt", SETTINGS)


def test_vllm_settings_need_a_gpu_per_actor():
    assert SETTINGS.gpus_per_actor == 1.0
    assert VisionSettings(backend="cpu").gpus_per_actor == 0.0
    with pytest.raises(ValueError, match="num_gpus > 0"):
        VisionSettings(backend="vllm", num_gpus=0)
    with pytest.raises(ValueError, match="Extra inputs"):
        VisionSettings(backend="cpu", gpus=1)
    hash(SETTINGS)  # frozen settings are hashable (config ids, caching)


# --------------------------------------------------------------------------- configuration


def test_engine_kwargs_follow_the_minicpmv_example():
    kw = engine_kwargs(SETTINGS)
    assert kw == {
        "trust_remote_code": True,
        "max_model_len": 4096,
        "limit_mm_per_prompt": {"image": 1},
        "gpu_memory_utilization": 0.85,
        "dtype": "auto",
    }
    assert engine_kwargs(SETTINGS.model_copy(update={"max_num_seqs": 32}))["max_num_seqs"] == 32


def test_sampling_params_carry_the_json_schema_for_structured_outputs():
    sp = sampling_params(SETTINGS)
    assert sp["structured_outputs"] == {"json": analysis_json_schema()}
    assert sp["temperature"] == 0.0 and sp["max_tokens"] == 256
    assert sp["stop"] == ["<|im_end|>", "<|endoftext|>"]
    assert sampling_params(SETTINGS, retry=True)["temperature"] == 0.5
    unguided = sampling_params(SETTINGS.model_copy(update={"guided_decoding": False}))
    assert "structured_outputs" not in unguided


def test_processor_config_is_built_by_ray_data_llm_with_the_image_stage():
    from ray.data.llm import vLLMEngineProcessorConfig

    cfg = build_processor_config(SETTINGS)
    assert isinstance(cfg, vLLMEngineProcessorConfig)
    assert cfg.model_source == "openbmb/MiniCPM-V-2_6"
    assert cfg.prepare_multimodal_stage is True
    assert cfg.concurrency == 2 and cfg.batch_size == 8 and cfg.accelerator_type == "A10G"
    assert cfg.engine_kwargs["trust_remote_code"] is True
    assert cfg.engine_kwargs["limit_mm_per_prompt"] == {"image": 1}
    assert cfg.should_continue_on_error is True
    # Ray 2.60 knows the image stage only by this name; the older flag is rejected
    with pytest.raises(ValueError, match="has_image"):
        vLLMEngineProcessorConfig(model_source="m", has_image=True)


def test_serve_llm_config_is_a_valid_ray_llm_config():
    from aio_ray.vision.backends.serve_llm import llm_config_dict, serve_config

    d = llm_config_dict(SETTINGS)
    assert d["model_loading_config"] == {
        "model_id": "minicpm-v",
        "model_source": "openbmb/MiniCPM-V-2_6",
    }
    assert d["deployment_config"]["autoscaling_config"] == {"min_replicas": 1, "max_replicas": 2}
    # ray.serve.llm.LLMConfig is a thin public subclass of this class, which imports without vllm
    from ray.llm._internal.serve.core.configs.llm_config import LLMConfig

    cfg = LLMConfig(**d)
    assert cfg.model_id == "minicpm-v" and cfg.accelerator_type == "A10G"
    assert cfg.engine_kwargs["limit_mm_per_prompt"] == {"image": 1}
    app = serve_config(SETTINGS)["applications"][0]
    assert app["import_path"] == "ray.serve.llm:build_openai_app"
    assert app["args"]["llm_configs"] == [d]
    json.dumps(serve_config(SETTINGS))  # plain data, ready for a YAML file


@no_vllm
def test_building_the_serve_app_without_vllm_says_what_to_install():
    from aio_ray.vision.backends.serve_llm import build_llm_app

    with pytest.raises(BackendUnavailableError, match=r"vllm.*pip install -e '\.\[gpu\]'"):
        build_llm_app(SETTINGS)


# --------------------------------------------------------------------------- row steps


def test_prepare_and_engine_rows_carry_the_chart_as_a_data_url():
    req = _request(2)
    prepared = prepare_row(req.to_row())
    assert prepared["_attempt"] == 1 and prepared["window_start"] == req.window_start
    row = engine_input_row(prepared, settings=SETTINGS)
    system, user = row["messages"]
    assert system["role"] == "system" and user["role"] == "user"
    url = user["content"][0]["image_url"]["url"]
    assert base64.b64decode(url.split(",", 1)[1]) == req.image
    assert "id=2" in user["content"][1]["text"] and "EURUSD 4h" in user["content"][1]["text"]
    assert row["sampling_params"] == sampling_params(SETTINGS)
    retry = engine_input_row({**prepared, "_attempt": 2}, settings=SETTINGS)
    assert retry["sampling_params"]["temperature"] == 0.5


def test_engine_output_becomes_a_record_row():
    carry = prepare_row(_request(1).to_row())
    ok = record_row(
        {**carry, "generated_text": json.dumps(GOOD), "time_taken_llm": 0.25},
        model="openbmb/MiniCPM-V-2_6",
    )
    assert ok["status"] == "ok" and ok["trend"] == "sideways" and ok["latency_ms"] == 250.0
    assert ok["model"] == "openbmb/MiniCPM-V-2_6" and ok["backend"] == "vllm"
    bad = record_row(
        {
            **carry,
            "generated_text": '{"trend": "sideways", "pat',
            "time_taken_llm": 0.1,
            "_attempt": 3,
            "_latency_ms": 500.0,
        },
        model="m",
    )
    assert bad["status"] == "failed" and bad["raw_text"] == '{"trend": "sideways", "pat'
    assert bad["attempts"] == 3 and bad["latency_ms"] == pytest.approx(600.0)
    assert "invalid answer (json)" in bad["error"] and bad["trend"] is None
    assert set(RECORD_COLUMNS) <= set(ok)


def test_an_engine_error_row_becomes_a_failed_record():
    carry = prepare_row(_request(1).to_row())
    row = finalize_row(
        {**carry, "__inference_error__": "CUDA out of memory", "prompt": "..."}, model="m"
    )
    assert row["status"] == "failed" and row["error"] == "engine error: CUDA out of memory"
    assert row["window_start"] == carry["window_start"]
    passthrough = record_row({**carry, "generated_text": json.dumps(GOOD)}, model="m")
    assert finalize_row({**passthrough, "__inference_error__": ""}, model="m")["status"] == "ok"


def _stand_in_engine(settings):
    """Replaces only vLLM's generation: row -> text. Window id 0 answers badly once, id 1
    always; the others answer at once. The rationale echoes the sampling temperature."""

    def generate(row):
        text = row["messages"][1]["content"][1]["text"]
        ident = int(text.split("id=")[1].split()[0].split("\n")[0])
        temp = row["sampling_params"]["temperature"]
        if ident == 1 or (ident == 0 and row["_attempt"] == 1):
            out = "I think the trend is sideways."
        else:
            out = json.dumps({**GOOD, "rationale": f"Range at temperature {temp}."})
        keep = {k: v for k, v in row.items() if k not in ("messages", "sampling_params")}
        return {**keep, "generated_text": out, "time_taken_llm": 0.01}

    def run_once(ds):
        return (
            ds.map(engine_input_row, fn_kwargs={"settings": settings})
            .map(generate)
            .map(record_row, fn_kwargs={"model": settings.model_source})
        )

    return run_once


@pytest.mark.ray
def test_retry_rounds_resend_only_the_failed_windows(ray_local):
    import ray.data

    from aio_ray.vision.pool import records_of, request_rows

    reqs = [_request(i) for i in range(4)]
    prepared = ray.data.from_items(request_rows(reqs)).map(prepare_row)
    out = run_with_retries(
        prepared, _stand_in_engine(SETTINGS), attempts=3, model=SETTINGS.model_source
    )
    recs = {r.window_start // 14_400_000: r for r in records_of(out)}
    assert sorted(recs) == [0, 1, 2, 3]
    assert recs[0].ok and recs[0].attempts == 2
    assert recs[0].analysis.rationale == "Range at temperature 0.5."
    assert recs[1].status == "failed" and recs[1].attempts == 3
    assert recs[1].raw_text == "I think the trend is sideways."
    for i in (2, 3):
        assert recs[i].ok and recs[i].attempts == 1
        assert recs[i].analysis == ChartAnalysis(
            **{**GOOD, "rationale": "Range at temperature 0.0."}
        )
