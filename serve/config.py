"""Settings of the Serve app: where the library and bars are, who may control, request limits.

Resolution order (later wins): defaults; the pipeline configuration file ``app_config``
(its ``library.url`` and ``data.workdir``/bars, plus an optional ``serve:`` section with the
fields of :class:`ServeSettings`); the arguments given to the app builder (``serve run
serve.app:build key=value`` or ``args:`` in ``configs/serve.yaml``). ``POST /config/reload``
runs the same resolution again, so editing the file (or rotating the token in the environment
or token file) takes effect without restarting the app.

The control token itself is never part of a configuration file: it is read from the
environment variable named by ``token_env`` (default ``AIO_CONTROL_TOKEN``) or from the file
``token_file`` (e.g. a mounted secret). Without a token every control call answers 401.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from aio_ray.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[1]


def home() -> Path:
    """Base of relative paths: ``$AIO_HOME`` when set, else the repository root."""
    env = os.environ.get("AIO_HOME")
    return Path(env).expanduser().resolve() if env else REPO_ROOT


class ServeSettings(BaseModel):
    """What the Serve app serves and how it guards control (frozen; unknown fields are errors).

    Relative paths (and a relative SQLite file in ``library_url``) are taken from
    :func:`home`, not from the replica's working directory, so the same settings work under
    ``serve run``, ``serve deploy`` and plain uvicorn.
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


@dataclass(frozen=True)
class Resolved:
    """Settings after resolution: absolute paths, the library URL and the token's digest."""

    settings: ServeSettings
    library_url: str
    bars_dir: Path | None
    symbol: str
    token_sha256: str | None
    source: str
    vision: Any = None
    analyses_dir: Path | None = None

    def public(self, full: bool = True) -> dict[str, Any]:
        """What ``/health`` and ``/config/reload`` may show (no token, password hidden);
        ``full`` False (a caller without the token): no server paths, only file names."""
        from aio_ray.library.repo import _safe_url

        url = _safe_url(self.library_url)
        if not full:
            scheme, sep, rest = url.partition(":///")
            if sep and scheme.startswith("sqlite"):
                url = f"{scheme}:///.../{Path(rest).name}" if "/" in rest else url
            elif "@" in url or "//" in url:  # a server: its scheme and database name only
                url = f"{url.split('://')[0]}://.../{url.rsplit('/', 1)[-1].split('?')[0]}"
        out = {
            "library": url,
            "bars_dir": None if self.bars_dir is None else (
                str(self.bars_dir) if full else "configured"),
            "symbol": self.symbol,
            "control": "enabled" if self.token_sha256 else "disabled (no token configured)",
            "max_body_bytes": self.settings.max_body_bytes,
            "top": self.settings.top,
            "source": self.source if full or self.source == "arguments" else Path(self.source).name,
        }
        if full:
            out["analyses_dir"] = None if self.analyses_dir is None else str(self.analyses_dir)
        return out


def _abs(p: Path, base: Path) -> Path:
    p = p.expanduser()
    return p if p.is_absolute() else (base / p).resolve()


def _abs_sqlite(url: str, base: Path) -> str:
    prefix = "sqlite:///"
    if url.startswith(prefix):
        rest = url[len(prefix) :]
        if rest and rest != ":memory:" and not rest.startswith("/"):
            return prefix + str(_abs(Path(rest), base))
    return url


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        tree = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read configuration: {exc}") from exc
    if not isinstance(tree, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    return tree


def _token(settings: ServeSettings, base: Path) -> str | None:
    if settings.token_file is not None:
        path = _abs(settings.token_file, base)
        try:
            raw = path.read_text().strip()
        except OSError as exc:
            raise ConfigError(f"token_file {path}: cannot read: {exc}") from exc
    else:
        raw = os.environ.get(settings.token_env, "").strip()
    if not raw:
        return None
    if len(raw) < 16:
        raise ConfigError(
            f"control token from {settings.token_file or settings.token_env} is shorter than "
            "16 characters; use a long random one (e.g. `openssl rand -hex 32`)"
        )
    return hashlib.sha256(raw.encode()).hexdigest()


def resolve(args: Mapping[str, Any] | ServeSettings | None = None) -> Resolved:
    """Resolve the app's settings from builder ``args`` and the files they name.

    Raises
    ------
    ConfigError
        An unknown or invalid setting, an unreadable ``app_config`` or ``token_file``, or a
        token shorter than 16 characters; the message names the file or field.
    """
    from aio_ray.config import AppConfig

    base = home()
    try:
        given = (
            args
            if isinstance(args, ServeSettings)
            else ServeSettings.model_validate(dict(args or {}))
        )
    except ValidationError as exc:
        raise ConfigError(f"serve settings: {exc}") from None
    explicit = given.model_dump(exclude_unset=True)
    library_url = os.environ.get("AIO_LIBRARY_URL")
    bars_dir: Path | None = None
    symbol = "EURUSD"
    source = "arguments"
    vision = None
    analyses_dir: Path | None = None
    settings = given
    if given.app_config is not None:
        path = _abs(given.app_config, base)
        tree = _read_yaml(path)
        section = tree.pop("serve", None) or {}
        try:
            app = AppConfig.model_validate(tree)
            settings = ServeSettings.model_validate({**dict(section), **explicit})
        except ValidationError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        library_url = app.library.url
        bars_dir = _abs(app.data.bars_dir, base)
        symbol = app.data.symbol
        source = str(path)
        vision = app.vision
        log_dir = app.vision.log_dir if app.vision and app.vision.log_dir else app.data.workdir / "vision" / "log"
        analyses_dir = _abs(log_dir, base)
    if settings.library_url is not None:
        library_url = settings.library_url
    if settings.bars_dir is not None:
        bars_dir = _abs(settings.bars_dir, base)
    if library_url is None:
        raise ConfigError(
            "serve settings: no library to serve; give app_config (a pipeline config), "
            "library_url, or set AIO_LIBRARY_URL"
        )
    return Resolved(
        settings=settings,
        library_url=_abs_sqlite(library_url, base),
        bars_dir=bars_dir,
        symbol=symbol,
        token_sha256=_token(settings, base),
        source=source,
        vision=vision,
        analyses_dir=analyses_dir,
    )
