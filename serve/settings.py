"""The Serve app's own settings, :class:`ServeSettings` (the ``serve:`` section of a pipeline
config, or the app builder's arguments).

Kept free of project imports so that the root configuration (:mod:`aio_ray.config`) can
compose it while :mod:`serve.config`, which resolves the settings against a pipeline config,
imports the root configuration: the dependency goes one way. Re-exported by
:mod:`serve.config`.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["ServeSettings"]


class ServeSettings(BaseModel):
    """What the Serve app serves and how it guards control (frozen; unknown fields are errors).

    Relative paths (and a relative SQLite file in ``library_url``) are taken from
    :func:`serve.config.home`, not from the replica's working directory, so the same settings
    work under ``serve run``, ``serve deploy`` and plain uvicorn.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    app_config: Path | None = Field(
        None, description="pipeline config (YAML) whose library and bars are served"
    )
    library_url: str | None = Field(
        None, description="library URL; None: app_config's library.url, else AIO_LIBRARY_URL"
    )
    bars_dir: Path | None = Field(
        None, description="bars directory for candles/equity; None: app_config's <workdir>/bars"
    )
    token_env: str = Field("AIO_CONTROL_TOKEN", description="environment variable of the token")
    token_file: Path | None = Field(None, description="file holding the token (wins over env)")
    max_body_bytes: int = Field(16_384, ge=256, le=16_777_216, description="request body cap")
    max_upload_bytes: int = Field(
        2_000_000, ge=1024, le=67_108_864, description="POST /analyze body cap (a PNG or bars)"
    )
    top: int = Field(5, ge=1, le=50, description="strategies per ranking")
    refresh_s: float = Field(
        0.5, ge=0.0, le=60.0, description="how often caches check the library for changes, s"
    )
    max_candles: int = Field(5_000, ge=100, le=100_000, description="bars a chart returns")
    # POST /analyze: images, the worker queue and its time limit
    max_image_pixels: int = Field(
        4_194_304, ge=256, le=67_108_864, description="pixels an uploaded PNG may have (w*h)"
    )
    decode_budget_s: float = Field(2.0, gt=0, le=60, description="time to decode one PNG, s")
    analyze_timeout_s: float = Field(
        20.0, gt=0, le=600, description="an analysis past this answers 504 (not logged), s"
    )
    analyze_queue: int = Field(
        8, ge=1, le=1024, description="analyses waiting or running per replica; more: 503"
    )
    # rate limits per client address (token buckets): sustained rate and burst
    analyze_rate_per_s: float = Field(10.0, gt=0, le=10_000, description="POST /analyze, req/s")
    analyze_burst: int = Field(20, ge=1, le=100_000, description="POST /analyze burst, requests")
    control_rate_per_s: float = Field(2.0, gt=0, le=10_000, description="control calls, req/s")
    control_burst: int = Field(20, ge=1, le=100_000, description="control burst, requests")
    # the analysis log written by POST /analyze
    log_flush_rows: int = Field(64, ge=1, le=100_000, description="records per appended batch")
    log_flush_s: float = Field(2.0, gt=0, le=3600, description="longest a record waits, s")
    log_max_files: int = Field(16, ge=1, le=10_000, description="files before a compaction")
    log_max_rows: int | None = Field(
        100_000, ge=1, description="records a compaction keeps (newest windows); None: all"
    )
    log_max_age_days: float | None = Field(
        None, gt=0, description="records older than this are dropped at compaction; None: kept"
    )

    @field_validator("token_env")
    @classmethod
    def _env_name(cls, v: str) -> str:
        if not v or not v.replace("_", "").isalnum() or v[0].isdigit():
            raise ValueError(f"token_env must be an environment variable name, got {v!r}")
        return v
