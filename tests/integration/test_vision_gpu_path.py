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
import sys
import types
import warnings

import numpy as np
import pytest

from aio_ray.vision.analysis import RECORD_COLUMNS, ChartAnalysis, analysis_json_schema
from aio_ray.vision.backends import VisionError, VisionSettings, make_backend
from aio_ray.vision.backends.base import AnalysisRequest, BackendUnavailableError
from aio_ray.vision.backends.vllm_engine import (
    VLLM_VERSION,
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
    stop_token_ids,
)
from aio_ray.vision.parse import ParseFailure, parse_analysis
from aio_ray.vision.prompts import MINICPMV_IMAGE_PLACEHOLDER, minicpmv_prompt

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
    # both are special tokens: vLLM only sees them in the text it matches stop strings against
    # when special tokens are kept
    assert sp["skip_special_tokens"] is False
    assert not any(k.startswith("guided") for k in sp)  # removed in vLLM 0.12
    assert sampling_params(SETTINGS, retry=True)["temperature"] == 0.5
    unguided = sampling_params(SETTINGS.model_copy(update={"guided_decoding": False}))
    assert "structured_outputs" not in unguided


def test_processor_config_is_built_by_ray_data_llm_with_the_image_stage():
    from ray.data.llm import (
        ChatTemplateStageConfig,
        PrepareMultimodalStageConfig,
        vLLMEngineProcessorConfig,
    )
    from ray.llm._internal.batch.stages.configs import resolve_stage_config

    cfg = build_processor_config(SETTINGS)
    assert isinstance(cfg, vLLMEngineProcessorConfig)
    assert cfg.model_source == "openbmb/MiniCPM-V-2_6"
    # resolved as Ray's vLLM processor builder resolves them
    mm = resolve_stage_config(cfg.prepare_multimodal_stage, PrepareMultimodalStageConfig, {})
    assert mm.enabled is True
    # the stage builds vllm.config.ModelConfig(**model_config_kwargs, model=model_source):
    # MiniCPM-V's config is remote code
    assert mm.model_config_kwargs == {"trust_remote_code": True}
    assert mm.chat_template_content_format == "string"
    chat = resolve_stage_config(cfg.chat_template_stage, ChatTemplateStageConfig, {})
    assert chat.enabled is True and chat.chat_template_kwargs == {"enable_thinking": False}
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


# --------------------------------------------------------------------------- vLLM 0.29 API

# A Qwen3-style chat template (MiniCPM-V 4.5 is built on Qwen3-8B): with enable_thinking false
# the generation prompt carries an empty think block; a ChatML template like MiniCPM-V 2.6's
# has no such variable and ignores it.
QWEN3_STYLE_TEMPLATE = (
    "{%- for m in messages %}{{- '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}"
    "{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}{%- endif %}"
)
CHATML_TEMPLATE = (
    "{% for m in messages %}{{ '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


class _Tokenizer:
    """Stand-in for the model's Hugging Face tokenizer: a Jinja chat template and a vocabulary
    with Qwen2/Qwen3's ids of the two end-of-turn tokens."""

    unk_token_id = 0

    def __init__(self, template: str, vocab: dict[str, int] | None = None) -> None:
        import jinja2

        self.template = jinja2.Environment().from_string(template)
        self.vocab = {"<|im_end|>": 151645, "<|endoftext|>": 151643} if vocab is None else vocab
        self.template_kwargs: list[dict] = []

    def convert_tokens_to_ids(self, token: str) -> int:
        return self.vocab.get(token, self.unk_token_id)

    def apply_chat_template(self, messages, *, tokenize, add_generation_prompt, **kwargs):
        assert tokenize is False
        self.template_kwargs.append(kwargs)
        return self.template.render(
            messages=messages, add_generation_prompt=add_generation_prompt, **kwargs
        )


def test_the_raw_prompt_turns_minicpmv_45_thinking_off():
    kw = _request(3).prompt_kwargs()
    tok = _Tokenizer(QWEN3_STYLE_TEMPLATE)
    prompt = minicpmv_prompt(tok, **kw)
    assert tok.template_kwargs == [{"enable_thinking": False}]
    assert prompt.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    user = prompt.split("<|im_start|>user\n", 1)[1]
    assert user.startswith(MINICPMV_IMAGE_PLACEHOLDER + "\n") and "id=3" in user
    # a template without the variable renders the same turns and a plain generation prompt
    plain = minicpmv_prompt(_Tokenizer(CHATML_TEMPLATE), **kw)
    assert plain.endswith("<|im_start|>assistant\n") and "<think>" not in plain
    assert prompt.startswith(plain)


def test_stop_token_ids_follow_the_tokenizer():
    assert stop_token_ids(_Tokenizer(CHATML_TEMPLATE)) == [151645, 151643]
    # a vocabulary without <|endoftext|> (unknown id) keeps only <|im_end|>
    assert stop_token_ids(_Tokenizer(CHATML_TEMPLATE, {"<|im_end|>": 73440})) == [73440]


def _fake_vllm(version: str, answer) -> tuple[types.ModuleType, dict]:
    """A stand-in ``vllm`` module with vLLM 0.29's names: ``LLM(model, **engine_kwargs)``,
    ``get_tokenizer``, ``generate(inputs, params)``, ``SamplingParams`` and
    ``sampling_params.StructuredOutputsParams`` as keyword-only dataclasses, so a removed
    field (``guided_decoding``) or a misspelt one is a TypeError, as it is in vLLM."""
    from dataclasses import dataclass, field

    calls: dict = {"llm": None, "generate": []}

    @dataclass(kw_only=True)
    class StructuredOutputsParams:
        json: str | dict | None = None
        regex: str | None = None
        choice: list[str] | None = None
        grammar: str | None = None
        json_object: bool | None = None

    @dataclass(kw_only=True)
    class SamplingParams:
        temperature: float = 1.0
        max_tokens: int | None = 16
        stop: list[str] | None = None
        stop_token_ids: list[int] | None = None
        skip_special_tokens: bool = True
        structured_outputs: StructuredOutputsParams | None = None
        extra: dict = field(default_factory=dict)

    class LLM:
        def __init__(self, model: str, **kwargs) -> None:
            calls["llm"] = {"model": model, **kwargs}
            self.tokenizer = _Tokenizer(QWEN3_STYLE_TEMPLATE)

        def get_tokenizer(self):
            return self.tokenizer

        def generate(self, inputs, params):
            calls["generate"].append((list(inputs), params))
            out = types.SimpleNamespace
            return [out(outputs=[out(text=answer(inp, params))]) for inp in inputs]

    mod = types.ModuleType("vllm")
    mod.__version__ = version
    mod.LLM = LLM
    mod.SamplingParams = SamplingParams
    mod.sampling_params = types.ModuleType("vllm.sampling_params")
    mod.sampling_params.StructuredOutputsParams = StructuredOutputsParams
    mod.sampling_params.SamplingParams = SamplingParams
    return mod, calls


def test_require_vllm_warns_on_another_vllm_release(monkeypatch):
    assert VLLM_VERSION == "0.29.0"
    mod, _ = _fake_vllm("0.29.0", lambda inp, p: "")
    monkeypatch.setitem(sys.modules, "vllm", mod)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert require_vllm() is mod
    mod.__version__ = "0.29.0+cu130"  # a local build of the same release
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        require_vllm()
    mod.__version__ = "0.33.1"
    with pytest.warns(RuntimeWarning, match=r"vllm 0\.33\.1 is installed.*vllm 0\.29\.0"):
        assert require_vllm() is mod


def test_the_in_process_engine_uses_the_vllm_029_api(monkeypatch):
    """VllmBackend (the actors mode) against the stand-in: engine arguments, the MiniCPM-V
    prompt with the image in multi_modal_data, stop token ids, structured outputs, retries."""
    from PIL import Image

    def answer(inp, params):
        ident = int(inp["prompt"].split("id=")[1].split()[0])
        if ident == 1 and params.temperature == 0.0:
            return "<think>\nThe chart {maybe} rises\n"  # cut off: invalid, retried
        if ident == 2:  # a reasoning block before the object is skipped by the parser
            return "<think>\nrange {1.14, 1.145}\n</think>\n\n" + json.dumps(GOOD)
        return json.dumps(GOOD)

    mod, calls = _fake_vllm(VLLM_VERSION, answer)
    monkeypatch.setitem(sys.modules, "vllm", mod)
    backend = VllmBackend(SETTINGS)
    assert calls["llm"] == {"model": "openbmb/MiniCPM-V-2_6", **engine_kwargs(SETTINGS)}
    assert backend.stop_token_ids == [151645, 151643]

    recs = backend.analyze([_request(i) for i in range(3)])
    assert [r.status for r in recs] == ["ok", "ok", "ok"]
    assert [r.attempts for r in recs] == [1, 2, 1]
    assert recs[1].analysis == ChartAnalysis(**GOOD)

    (first_inputs, first), (retry_inputs, retry) = calls["generate"]
    assert len(first_inputs) == 3 and len(retry_inputs) == 1
    for inp in first_inputs:
        user = inp["prompt"].split("<|im_start|>user\n", 1)[1]
        assert user.startswith(MINICPMV_IMAGE_PLACEHOLDER + "\n")
        assert inp["prompt"].endswith("<think>\n\n</think>\n\n")  # thinking off
        img = inp["multi_modal_data"]["image"]
        assert isinstance(img, Image.Image) and img.mode == "RGB"
    assert first.stop_token_ids == [151645, 151643]
    assert first.structured_outputs.json == analysis_json_schema()
    assert first.temperature == 0.0 and first.max_tokens == 256
    assert retry.temperature == 0.5

    unguided = VllmBackend(SETTINGS.model_copy(update={"guided_decoding": False}))
    unguided.analyze([_request(0)])
    assert calls["generate"][-1][1].structured_outputs is None


@pytest.mark.ray
def test_sampling_params_survive_ray_datas_rows_into_the_engine_stage(ray_local):
    """The per-row sampling_params travel through Ray Data (Arrow blocks) before Ray 2.60's
    engine stage undoes the ndarray conversion and builds StructuredOutputsParams(**...)."""
    import ray.data
    from ray.llm._internal.batch.stages.common import maybe_convert_ndarray_to_list

    prepared = [prepare_row(_request(i).to_row()) for i in range(2)]
    rows = (
        ray.data.from_items(prepared)
        .map(engine_input_row, fn_kwargs={"settings": SETTINGS})
        .map_batches(lambda b: b, batch_format="pyarrow")
        .take_all()
    )
    for row in rows:
        sp = maybe_convert_ndarray_to_list(row["sampling_params"])
        assert sp == sampling_params(SETTINGS)
        mod, _ = _fake_vllm(VLLM_VERSION, lambda inp, p: "")
        structured = mod.sampling_params.StructuredOutputsParams(**sp.pop("structured_outputs"))
        params = mod.SamplingParams(**sp, structured_outputs=structured)
        assert params.structured_outputs.json == analysis_json_schema()


def test_a_leading_reasoning_block_is_not_the_answer():
    good = json.dumps(GOOD)
    assert parse_analysis("<think>\nlevels {1.14}\n</think>\n\n" + good) == ChartAnalysis(**GOOD)
    assert parse_analysis("<think>\n\n</think>\n\n" + good) == ChartAnalysis(**GOOD)
    cut = parse_analysis("<think>\nThe chart {maybe} rises")
    assert isinstance(cut, ParseFailure) and cut.stage == "extract"
    assert "unclosed <think>" in cut.error and cut.raw_text == "<think>\nThe chart {maybe} rises"
    # a think block anywhere but at the start is text around the object, as before
    two = parse_analysis(good + "\n<think>{}</think>")
    assert isinstance(two, ParseFailure) and "2 JSON objects" in two.error
