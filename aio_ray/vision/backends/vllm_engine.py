"""The GPU path: MiniCPM-V in vLLM, batched by Ray Data LLM or held by a Ray actor pool.

Stable public API::

    VLLM_VERSION                                  # "0.29.0": the vLLM this module is written for
    require_vllm() -> module                      # BackendUnavailableError when vllm is missing
    engine_kwargs(settings) -> dict               # vLLM engine arguments
    sampling_params(settings, *, retry=False) -> dict   # Ray Data LLM's per-row sampling_params
    stop_token_ids(tokenizer) -> list[int]        # MiniCPM-V's end-of-turn token ids
    build_processor_config(settings) -> ray.data.llm.vLLMEngineProcessorConfig
    build_vllm_processor(settings) -> ray.data.llm.Processor
    analyze_dataset_processor(ds, settings) -> ray.data.Dataset    # RECORD_SCHEMA rows
    prepare_row, engine_input_row, record_row, finalize_row         # the pure row steps
    VllmBackend(settings)                         # vllm.LLM in-process (one per pool actor)

Written against vLLM 0.29.0, the release ``ray[llm]==2.60.0`` pins (the ``gpu`` extra installs
exactly that pair; ``tests/integration/test_gpu_extra.py`` checks the pin against Ray's metadata). What
that vLLM expects, and what this module sends:

* structured outputs: ``SamplingParams(structured_outputs=StructuredOutputsParams(json=schema))``
  (the ``guided_*`` fields were removed in vLLM 0.12); in Ray Data LLM a row's
  ``sampling_params["structured_outputs"] = {"json": schema}``, which Ray 2.60's engine stage
  turns into ``StructuredOutputsParams(**...)``.
* stop tokens: MiniCPM-V's ``<|im_end|>`` / ``<|endoftext|>`` are special tokens, and vLLM
  matches ``stop`` strings against text decoded without special tokens by default, so the
  processor rows send them as ``stop`` strings with ``skip_special_tokens=False`` (no tokenizer
  is needed on the driver) and the in-process engine as ``stop_token_ids`` resolved with its
  tokenizer, as vLLM's MiniCPM-V example does.
* the image: OpenAI-format messages for Ray's multimodal stage (vLLM's chat parser inserts
  MiniCPM-V's placeholder), ``(<image>./</image>)`` + ``multi_modal_data`` for ``LLM.generate``.
  Ray's multimodal stage builds a ``vllm.config.ModelConfig`` of its own from
  ``model_config_kwargs`` only, so ``trust_remote_code`` is passed there too (MiniCPM-V's
  config is remote code).
* MiniCPM-V 4.5's thinking mode is off in every chat template rendering
  (``chat_template_kwargs={"enable_thinking": False}``): guided JSON starts at the first token.

Two ways to run it on a GPU cluster (``pip install -e '.[gpu]'`` on the GPU workers):

1. ``settings.vllm_mode = "processor"``: Ray Data LLM (``ray.data.llm.build_processor``) with
   :func:`build_processor_config`. Rows carry OpenAI-style messages with the chart as a
   ``data:image/png`` URL; Ray's multimodal stage turns them into vLLM inputs, its chat
   template stage renders MiniCPM-V's template (``trust_remote_code``), the engine stage runs
   ``concurrency`` vLLM replicas of ``batch_size`` rows on GPUs of ``accelerator_type``. The
   image-stage flag is ``prepare_multimodal_stage`` in Ray 2.60 (ray/data/llm.py,
   ``vLLMEngineProcessorConfig``: "prepare_multimodal_stage: Multimodal preprocessing stage
   config (bool | dict | PrepareMultimodalStageConfig). Defaults to False."); earlier releases
   named it ``has_image`` (later a ``PrepareImageStageConfig``), which 2.60 rejects. Ray 2.60's
   engine stage turns ``sampling_params["structured_outputs"]`` into
   ``vllm.sampling_params.StructuredOutputsParams`` (JSON-schema guided decoding). The chat
   template stage gets ``chat_template_kwargs`` through ``ChatTemplateStageConfig``.
2. ``settings.vllm_mode = "actors"``: :func:`aio_ray.vision.pool.analyze_dataset` runs
   :class:`VllmBackend` in a Ray actor pool (``map_batches`` with ``num_gpus`` per actor):
   each actor holds one ``vllm.LLM(model, trust_remote_code=True, limit_mm_per_prompt=
   {"image": 1}, ...)`` and prompts it with MiniCPM-V's documented raw format
   (:func:`aio_ray.vision.prompts.minicpmv_prompt`).

Invalid answers are retried ``settings.attempts`` times in all (at ``retry_temperature``);
in the processor mode a retry round re-runs the processor on the failed rows only (a new
engine pool: rare with guided decoding, where only truncated answers fail).
"""

from __future__ import annotations

import io
import json
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from types import ModuleType
from typing import Any

import numpy as np

from aio_ray.charts.raster import to_rgb
from aio_ray.vision.analysis import (
    RECORD_COLUMNS,
    AnalysisRecord,
    ChartAnalysis,
    analysis_json_schema,
    records_from_table,
    records_to_table,
)
from aio_ray.vision.backends.base import (
    AnalysisRequest,
    BackendUnavailableError,
    failed_record,
    ok_record,
    request_png,
)
from aio_ray.vision.parse import parse_analysis
from aio_ray.vision.prompts import (
    MINICPMV_STOP_TOKENS,
    chat_messages,
    chat_template_kwargs,
    minicpmv_prompt,
    png_data_url,
)

__all__ = [
    "VLLM_INSTALL_HINT",
    "VLLM_VERSION",
    "VllmBackend",
    "analyze_dataset_processor",
    "build_processor_config",
    "build_vllm_processor",
    "engine_input_row",
    "engine_kwargs",
    "finalize_row",
    "prepare_row",
    "record_row",
    "require_vllm",
    "run_with_retries",
    "sampling_params",
    "stop_token_ids",
]

VLLM_VERSION = "0.29.0"
"""The vLLM release this module is written against: the one ``ray[llm]==2.60.0`` pins, and the
one the ``gpu`` extra installs."""

VLLM_INSTALL_HINT = (
    "install it with `pip install -e '.[gpu]'` on the GPU workers (vLLM needs a CUDA GPU; "
    "or use the 'http' backend against a `vllm serve` server, or the 'cpu' backend)"
)

_CARRY = ("instrument", "timeframe", "window_start", "window_end")
"""Request columns carried through the engine so every output row names its window."""


def require_vllm() -> ModuleType:
    """Import vllm, or raise :class:`BackendUnavailableError` saying how to install it.

    Another vLLM release than :data:`VLLM_VERSION` is used with a ``RuntimeWarning``: Ray
    2.60's LLM stages and this module were not written against its API.
    """
    try:
        import vllm  # type: ignore[import-not-found,unused-ignore]  # only in the gpu extra
    except ImportError as exc:
        raise BackendUnavailableError("vllm", "the package 'vllm'", VLLM_INSTALL_HINT) from exc
    found = str(getattr(vllm, "__version__", "unknown"))
    if found.split("+", 1)[0] != VLLM_VERSION:
        warnings.warn(
            f"vllm {found} is installed, but the vllm backend and Ray 2.60's LLM stages are "
            f"written against vllm {VLLM_VERSION}; install it with `pip install -e '.[gpu]'`",
            RuntimeWarning,
            stacklevel=2,
        )
    module: ModuleType = vllm
    return module


def engine_kwargs(settings: Any) -> dict[str, Any]:
    """vLLM engine arguments for MiniCPM-V from ``settings`` (plain dict, JSON-able)."""
    kw: dict[str, Any] = {
        "trust_remote_code": settings.trust_remote_code,
        "max_model_len": settings.max_model_len,
        "limit_mm_per_prompt": {"image": settings.max_images_per_prompt},
        "gpu_memory_utilization": settings.gpu_memory_utilization,
        "dtype": settings.dtype,
    }
    if settings.max_num_seqs is not None:
        kw["max_num_seqs"] = settings.max_num_seqs
    return kw


def sampling_params(settings: Any, *, retry: bool = False) -> dict[str, Any]:
    """Per-row ``sampling_params`` for Ray Data LLM's vLLM engine stage.

    ``structured_outputs`` (``{"json": schema}``) is what Ray 2.60 turns into vLLM's
    ``StructuredOutputsParams``. The stop strings are MiniCPM-V's end-of-turn tokens, which are
    special tokens: ``skip_special_tokens=False`` keeps them in the text vLLM matches stop
    strings against (a matched stop string is cut from the answer; Ray's detokenize stage
    decodes the answer again without special tokens).
    """
    sp: dict[str, Any] = {
        "temperature": max(settings.temperature, settings.retry_temperature)
        if retry
        else settings.temperature,
        "max_tokens": settings.max_tokens,
        "stop": list(MINICPMV_STOP_TOKENS),
        "skip_special_tokens": False,
    }
    if settings.guided_decoding:
        sp["structured_outputs"] = {"json": analysis_json_schema()}
    return sp


# --------------------------------------------------------------------------- row steps


def prepare_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """Request row -> the row the processor path carries: window ids + messages JSON.

    ``_messages`` is the OpenAI-format conversation (chart as a PNG data URL) as JSON text,
    so a retry round can resend it without the original request; ``_attempt`` starts at 1.
    """
    req = AnalysisRequest.from_row(row)
    messages = chat_messages(png_data_url(request_png(req)), **req.prompt_kwargs())
    out: dict[str, Any] = {k: getattr(req, k) for k in _CARRY}
    out.update(_messages=json.dumps(messages), _attempt=1, _latency_ms=0.0)
    return out


def engine_input_row(row: Mapping[str, Any], *, settings: Any) -> dict[str, Any]:
    """Processor ``preprocess``: prepared row -> ``messages`` + ``sampling_params`` (+ carry)."""
    out = {k: row[k] for k in (*_CARRY, "_messages", "_attempt", "_latency_ms")}
    out["messages"] = json.loads(row["_messages"])
    out["sampling_params"] = sampling_params(settings, retry=int(row["_attempt"]) > 1)
    return out


def _request_stub(row: Mapping[str, Any]) -> AnalysisRequest:
    # The records only need the window ids; a 1x1 palette image stands in for the chart.
    return AnalysisRequest(
        image=np.zeros((1, 1), np.uint8),
        instrument=str(row["instrument"]),
        timeframe=str(row["timeframe"]),
        window_start=row["window_start"],
        window_end=row["window_end"],
    )


def record_row(row: Mapping[str, Any], *, model: str) -> dict[str, Any]:
    """Processor ``postprocess``: engine output (``generated_text``) -> record row + carry.

    The record columns are those of :data:`RECORD_SCHEMA` (windows as epoch ms); ``_messages``,
    ``_attempt`` and ``_latency_ms`` (accumulated over attempts) stay for a retry round.
    """
    req = _request_stub(row)
    text = row.get("generated_text")
    taken = row.get("time_taken_llm")
    latency = float(row["_latency_ms"]) + (
        float(taken) * 1000.0 if taken is not None and float(taken) > 0 else 0.0
    )
    attempt = int(row["_attempt"])
    parsed = parse_analysis(text if isinstance(text, str) else "")
    if isinstance(parsed, ChartAnalysis):
        rec = ok_record(
            req,
            parsed,
            backend="vllm",
            model=model,
            latency_ms=latency,
            attempts=attempt,
            raw_text=text,
        )
    else:
        rec = failed_record(
            req,
            f"invalid answer ({parsed.stage}): {parsed.error}",
            backend="vllm",
            model=model,
            latency_ms=latency,
            attempts=attempt,
            raw_text=text if isinstance(text, str) else None,
        )
    out = rec.to_row()
    out.update(_messages=row["_messages"], _attempt=attempt, _latency_ms=latency)
    return out


def finalize_row(row: Mapping[str, Any], *, model: str) -> dict[str, Any]:
    """After the processor: an engine error row (``__inference_error__`` set, which bypasses
    ``postprocess``) becomes a failed record row; a record row keeps its columns."""
    err = row.get("__inference_error__")
    if err:
        rec = failed_record(
            _request_stub(row),
            f"engine error: {err}",
            backend="vllm",
            model=model,
            latency_ms=float(row.get("_latency_ms") or 0.0),
            attempts=int(row.get("_attempt") or 1),
            raw_text=None,
        )
        out = rec.to_row()
        out.update(
            _messages=row.get("_messages"), _attempt=rec.attempts, _latency_ms=rec.latency_ms
        )
        return out
    return {k: row[k] for k in (*RECORD_COLUMNS, "_messages", "_attempt", "_latency_ms")}


# --------------------------------------------------------------------------- processor


def build_processor_config(settings: Any) -> Any:
    """The ``ray.data.llm.vLLMEngineProcessorConfig`` for MiniCPM-V (needs no vllm to build).

    The image stage (``prepare_multimodal_stage``, Ray 2.60's name: see the module doc) builds
    its own ``vllm.config.ModelConfig`` from ``model_config_kwargs`` and the model source only,
    so it is given ``trust_remote_code`` as well; the chat template stage renders with thinking
    off (:func:`aio_ray.vision.prompts.chat_template_kwargs`).
    """
    # optional dependency (gpu extra): ray[llm]
    from ray.data.llm import (
        ChatTemplateStageConfig,
        PrepareMultimodalStageConfig,
        vLLMEngineProcessorConfig,
    )

    return vLLMEngineProcessorConfig(
        model_source=settings.model_source,
        engine_kwargs=engine_kwargs(settings),
        concurrency=settings.concurrency,
        batch_size=settings.batch_size,
        accelerator_type=settings.accelerator_type,
        prepare_multimodal_stage=PrepareMultimodalStageConfig(
            model_config_kwargs={"trust_remote_code": settings.trust_remote_code}
        ),
        chat_template_stage=ChatTemplateStageConfig(chat_template_kwargs=chat_template_kwargs()),
        should_continue_on_error=settings.continue_on_error,
    )


def build_vllm_processor(settings: Any) -> Any:
    """The Ray Data LLM processor: prepared rows in, record rows (+ carry) out."""
    require_vllm()

    # optional dependency (gpu extra): ray[llm]
    from ray.data.llm import build_processor

    return build_processor(
        build_processor_config(settings),
        preprocess=partial(engine_input_row, settings=settings),
        postprocess=partial(record_row, model=settings.model_source),
    )


def run_with_retries(
    prepared: Any,
    run_once: Callable[[Any], Any],
    *,
    attempts: int,
    model: str,
) -> Any:
    """Run ``run_once`` (prepared rows -> record rows) and re-run it on failed rows.

    ``run_once`` is the processor; each round materializes its output, keeps ``ok`` rows and
    rows out of attempts, and sends the others back with ``_attempt + 1``. Returns a dataset
    with the :data:`RECORD_SCHEMA` columns.
    """
    done: list[Any] = []
    pending = prepared
    for attempt in range(1, attempts + 1):
        out = run_once(pending).map(finalize_row, fn_kwargs={"model": model}).materialize()
        if attempt == attempts:
            done.append(out)
            break
        done.append(out.filter(expr="status == 'ok'"))
        retry = out.filter(expr="status != 'ok'").materialize()
        if retry.count() == 0:
            break
        pending = retry.map(_next_attempt)
    result = done[0] if len(done) == 1 else done[0].union(*done[1:])
    return result.map_batches(_to_record_table, batch_format="pyarrow")


def _next_attempt(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in _CARRY} | {
        "_messages": row["_messages"],
        "_attempt": int(row["_attempt"]) + 1,
        "_latency_ms": float(row["_latency_ms"]),
    }


def _to_record_table(batch: Any) -> Any:
    """Record rows (any extra columns) -> a validated :data:`RECORD_SCHEMA` table."""
    return records_to_table(records_from_table(batch))


def analyze_dataset_processor(ds: Any, settings: Any) -> Any:
    """Analyse a dataset of request rows with Ray Data LLM; a dataset of record rows."""
    processor = build_vllm_processor(settings)
    return run_with_retries(
        ds.map(prepare_row), processor, attempts=settings.attempts, model=settings.model_source
    )


# --------------------------------------------------------------------------- in-process engine


def _structured(vllm: ModuleType, schema: dict[str, Any]) -> dict[str, Any]:
    """SamplingParams kwargs for JSON-schema guided decoding in vLLM 0.29.

    ``structured_outputs=StructuredOutputsParams(json=...)`` (vLLM's structured outputs docs:
    the ``guided_*`` API, ``GuidedDecodingParams`` included, was removed in v0.12.0).
    """
    return {"structured_outputs": vllm.sampling_params.StructuredOutputsParams(json=schema)}


def stop_token_ids(tokenizer: Any) -> list[int]:
    """Ids of MiniCPM-V's end-of-turn tokens (:data:`MINICPMV_STOP_TOKENS`) in ``tokenizer``.

    As in vLLM's MiniCPM-V example (``convert_tokens_to_ids`` of ``<|im_end|>`` and
    ``<|endoftext|>``); a token the vocabulary lacks (``None`` or the unknown token's id) is
    left out.
    """
    unk = getattr(tokenizer, "unk_token_id", None)
    out: list[int] = []
    for tok in MINICPMV_STOP_TOKENS:
        i = tokenizer.convert_tokens_to_ids(tok)
        if isinstance(i, int) and not isinstance(i, bool) and i != unk and i not in out:
            out.append(i)
    return out


def _pil_rgb(req: AnalysisRequest) -> Any:
    # optional dependency (vision extra): pillow
    from PIL import Image

    if isinstance(req.image, np.ndarray):
        return Image.fromarray(to_rgb(req.image), mode="RGB")
    with Image.open(io.BytesIO(req.image)) as im:
        return im.convert("RGB")


class VllmBackend:
    """MiniCPM-V in an in-process ``vllm.LLM`` (one per GPU actor of the pool).

    Prompts follow MiniCPM-V's documented format: the image placeholder leads the user turn
    and the tokenizer's chat template (``trust_remote_code``, thinking off) renders it;
    generation stops at the ids of ``<|im_end|>``/``<|endoftext|>`` and is JSON-schema guided.
    """

    name = "vllm"

    def __init__(self, settings: Any) -> None:
        vllm = require_vllm()
        self.settings = settings
        self.model_id: str = settings.model_source
        self._vllm = vllm
        self.llm = vllm.LLM(model=settings.model_source, **engine_kwargs(settings))
        self.tokenizer = self.llm.get_tokenizer()
        self.stop_token_ids = stop_token_ids(self.tokenizer)
        self._guided = _structured(vllm, analysis_json_schema()) if settings.guided_decoding else {}

    def _params(self, retry: bool) -> Any:
        s = self.settings
        return self._vllm.SamplingParams(
            temperature=max(s.temperature, s.retry_temperature) if retry else s.temperature,
            max_tokens=s.max_tokens,
            stop_token_ids=self.stop_token_ids,
            **self._guided,
        )

    def analyze(self, requests: Sequence[AnalysisRequest]) -> list[AnalysisRecord]:
        """Generate for the whole batch at once; retry only the windows that failed."""
        t0 = time.perf_counter()
        n = len(requests)
        out: list[AnalysisRecord | None] = [None] * n
        inputs: dict[int, dict[str, Any]] = {}
        for i, req in enumerate(requests):
            try:
                inputs[i] = {
                    "prompt": minicpmv_prompt(self.tokenizer, **req.prompt_kwargs()),
                    "multi_modal_data": {"image": _pil_rgb(req)},
                }
            except Exception as exc:  # noqa: BLE001 - the window fails, not the batch
                out[i] = failed_record(
                    req,
                    f"cannot prepare chart: {exc}",
                    backend=self.name,
                    model=self.model_id,
                    latency_ms=0.0,
                )
        pending = sorted(inputs)
        last: dict[int, tuple[str, str]] = {}
        used: dict[int, int] = {}
        for attempt in range(1, self.settings.attempts + 1):
            if not pending:
                break
            results = self.llm.generate([inputs[i] for i in pending], self._params(attempt > 1))
            still = []
            for i, res in zip(pending, results, strict=True):
                used[i] = attempt
                text = res.outputs[0].text if res.outputs else ""
                parsed = parse_analysis(text)
                if isinstance(parsed, ChartAnalysis):
                    out[i] = ok_record(
                        requests[i],
                        parsed,
                        backend=self.name,
                        model=self.model_id,
                        latency_ms=0.0,
                        attempts=attempt,
                        raw_text=text,
                    )
                else:
                    last[i] = (text, f"invalid answer ({parsed.stage}): {parsed.error}")
                    still.append(i)
            pending = still
        per_ms = (time.perf_counter() - t0) * 1000.0 / max(1, len(inputs))
        records = []
        for i, rec in enumerate(out):
            if rec is None:
                text, err = last[i]
                rec = failed_record(
                    requests[i],
                    err,
                    backend=self.name,
                    model=self.model_id,
                    latency_ms=per_ms,
                    attempts=used[i],
                    raw_text=text,
                )
            elif rec.ok:
                rec = rec.model_copy(update={"latency_ms": per_ms})
            records.append(rec)
        return records
