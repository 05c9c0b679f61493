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
from pydantic import ValidationError

from aio_ray.config import AppConfig
from aio_ray.errors import ConfigError
from aio_ray.library.engine import redact_url
from serve.settings import ServeSettings

# ServeSettings lives in serve.settings; re-exported from here, its former home.
__all__ = ["REPO_ROOT", "Resolved", "ServeSettings", "home", "resolve"]

REPO_ROOT = Path(__file__).resolve().parents[1]


def home() -> Path:
    """Base of relative paths: ``$AIO_HOME`` when set, else the repository root."""
    env = os.environ.get("AIO_HOME")
    return Path(env).expanduser().resolve() if env else REPO_ROOT


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
        url = redact_url(self.library_url)
        if not full:
            scheme, sep, rest = url.partition(":///")
            if sep and scheme.startswith("sqlite"):
                url = f"{scheme}:///.../{Path(rest).name}" if "/" in rest else url
            elif "@" in url or "//" in url:  # a server: its scheme and database name only
                url = f"{url.split('://')[0]}://.../{url.rsplit('/', 1)[-1].split('?')[0]}"
        out = {
            "library": url,
            "bars_dir": None
            if self.bars_dir is None
            else (str(self.bars_dir) if full else "configured"),
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
        log_dir = (
            app.vision.log_dir
            if app.vision and app.vision.log_dir
            else app.data.workdir / "vision" / "log"
        )
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
