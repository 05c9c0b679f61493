"""Configuration of the vision stage: :class:`VisionConfig` (the ``vision:`` section of a
pipeline config) and :class:`VisionSettings` (which backend analyses charts, and how).

Kept free of heavy imports (no numpy, polars, torch, charts or backends) so that the root
configuration (:mod:`aio_ray.config`) can compose it cheaply and without an import cycle.
Both names are re-exported from their former homes (``aio_ray.vision.analyze`` and
``aio_ray.vision.backends``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from aio_ray.vision.registry import BACKENDS

__all__ = ["DEFAULT_VLM", "VisionConfig", "VisionSettings"]

DEFAULT_VLM = "openbmb/MiniCPM-V-2_6"
"""The default vision-language model: MiniCPM-V 2.6, an 8B release supported by vLLM."""


class VisionSettings(BaseModel):
    """How charts are analysed (frozen; unknown fields are errors).

    Units: seconds for timeouts, prices never appear here. ``model_source`` is a Hugging
    Face id or a local directory with the weights (vLLM and Ray Serve LLM load it);
    ``served_model`` is the name an HTTP server knows the model by.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: str = Field(
        default="cpu",
        description="a backend registered in aio_ray.vision.registry: cpu | vllm | http",
        json_schema_extra={"enum": list(BACKENDS)},
    )

    # Model.
    model_source: str = Field(default=DEFAULT_VLM, description="HF id or local path of the VLM")
    served_model: str | None = Field(
        default=None, description="http: model name sent in requests; None: model_source"
    )
    cpu_weights: Path | None = Field(
        default=None,
        description="cpu: ChartNet checkpoint; None: the weights shipped in the package",
    )
    pattern_threshold: float = Field(
        default=0.5,
        gt=0,
        lt=1,
        description="cpu: a pattern is reported when its probability >= this",
    )
    max_levels: int = Field(
        default=4, ge=0, le=6, description="cpu: support/resistance levels reported"
    )

    # Generation (vllm, http).
    temperature: float = Field(
        default=0.0, ge=0, le=2, description="sampling temperature, 1st attempt"
    )
    retry_temperature: float = Field(
        default=0.3, ge=0, le=2, description="temperature of retries after an invalid answer"
    )
    max_tokens: int = Field(default=512, ge=16, description="answer length limit, tokens")
    attempts: int = Field(
        default=3, ge=1, le=10, description="model calls per window before 'failed'"
    )

    # HTTP (OpenAI-compatible server).
    base_url: str = Field(
        default="http://127.0.0.1:8000/v1", description="ends before /chat/completions"
    )
    api_key_env: str | None = Field(
        default="AIO_VISION_API_KEY", description="env var holding the bearer token; None: no auth"
    )
    timeout_s: float = Field(default=120.0, gt=0, description="per request, seconds")
    backoff_s: float = Field(default=0.5, ge=0, description="delay before the 1st retry; doubles")
    max_in_flight: int = Field(default=8, ge=1, description="http: concurrent requests per backend")
    guided_decoding: bool = Field(
        default=True, description="send the JSON Schema as response_format / structured outputs"
    )

    # vLLM engine.
    vllm_mode: Literal["processor", "actors"] = Field(
        default="processor",
        description="processor: ray.data.llm build_processor; actors: a Ray actor pool of vllm.LLM",
    )
    max_model_len: int = Field(default=4096, ge=512, description="tokens of prompt + answer")
    gpu_memory_utilization: float = Field(
        default=0.9, gt=0, le=1, description="fraction of GPU memory"
    )
    max_images_per_prompt: int = Field(
        default=1, ge=1, description="vLLM limit_mm_per_prompt['image']"
    )
    trust_remote_code: bool = Field(default=True, description="MiniCPM-V ships custom model code")
    dtype: str = Field(default="auto", description="vLLM dtype: auto | bfloat16 | float16")
    max_num_seqs: int | None = Field(
        default=None, ge=1, description="vLLM max_num_seqs; None: vLLM's"
    )
    continue_on_error: bool = Field(
        default=True, description="vllm processor: a failed engine row becomes a failed record"
    )

    # Ray scaling.
    concurrency: int = Field(default=1, ge=1, description="actors (engine replicas) in the pool")
    batch_size: int = Field(default=16, ge=1, description="windows per batch handed to an actor")
    num_gpus: float | None = Field(
        default=None, ge=0, description="GPUs per actor; None: 1 for vllm, 0 otherwise"
    )
    num_cpus: float = Field(default=1.0, gt=0, description="CPUs per actor")
    accelerator_type: str | None = Field(default=None, description='e.g. "A10G", "L4", "H100"')

    @field_validator("backend")
    @classmethod
    def _registered_backend(cls, v: str) -> str:
        if v not in BACKENDS:
            raise ValueError(f"unknown vision backend {v!r}; accepted: {', '.join(BACKENDS)}")
        return v

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {v!r}")
        return v.rstrip("/")

    @model_validator(mode="after")
    def _gpu(self) -> VisionSettings:
        if self.backend == "vllm" and self.num_gpus == 0:
            raise ValueError("backend 'vllm' needs num_gpus > 0 (or None for 1)")
        return self

    @property
    def gpus_per_actor(self) -> float:
        """GPUs reserved by each pool actor."""
        if self.num_gpus is not None:
            return self.num_gpus
        return 1.0 if self.backend == "vllm" else 0.0

    @property
    def http_model(self) -> str:
        return self.served_model or self.model_source


class VisionConfig(BaseModel):
    """The pipeline's vision stage (``vision:`` in a config; absent: the stage is skipped).

    ``model`` chooses and configures the backend (cpu: our ChartNet, runs anywhere; vllm:
    MiniCPM-V on GPU actors; http: an OpenAI-compatible server).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    timeframe: str = Field("1h", description="bars analysed")
    window: int = Field(64, ge=8, le=512, description="bars per chart")
    stride: int = Field(16, ge=1, description="bars between consecutive windows")
    windows: int = Field(48, ge=1, description="how many of the latest windows are analysed")
    overlays: tuple[str, ...] = Field(("sma_20", "bb_20"), description="lines drawn on the chart")
    size: tuple[int, int] = Field((448, 448), description="chart (height, width), pixels")
    use_ray: bool = Field(True, description="analyse with a Ray actor pool (one model per actor)")
    log_dir: Path | None = Field(None, description="analysis log; None: <workdir>/vision/log")
    model: VisionSettings = VisionSettings()
