"""What every ``aio`` verb shares: the state the ``aio`` callback puts in ``ctx.obj``.

The callback (:func:`aio_ray.cli.app.main`) loads ``--config``/``--set`` once and stores a
:class:`CliState` in typer's context; each verb takes ``ctx: typer.Context`` and reads the
configuration with :func:`app_config` (defaults when no callback ran, e.g. a verb invoked alone).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from aio_ray.config import AppConfig
from aio_ray.raycluster import ensure_ray

__all__ = [
    "CliState",
    "JsonOpt",
    "LocalOpt",
    "OutOpt",
    "app_config",
    "fail",
    "parse_json_object",
    "use_ray",
]


@dataclass
class CliState:
    """The configuration of the running ``aio`` command (``ctx.obj``)."""

    config: AppConfig = field(default_factory=AppConfig)


def app_config(ctx: typer.Context) -> AppConfig:
    """The configuration the ``aio`` callback loaded (defaults when it did not run)."""
    obj = ctx.find_object(CliState)
    return obj.config if obj is not None else AppConfig()


def fail(exc: Exception | str, code: int = 2) -> NoReturn:
    """Print ``error: <exc>`` in red on stderr and exit with ``code`` (2: bad input)."""
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def parse_json_object(raw: str) -> dict[str, Any]:
    """``--params`` as a JSON object (a bad value is a usage error naming ``--params``)."""
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"not valid JSON: {exc}", param_hint="--params") from None
    if not isinstance(value, dict):
        raise typer.BadParameter(
            'must be a JSON object such as {"fast": 10}', param_hint="--params"
        )
    return value


def use_ray(ctx: typer.Context, local: bool) -> bool:
    """Join (or start) Ray as configured unless ``--local``; True when Ray is to be used."""
    if local:
        return False
    ensure_ray(app_config(ctx).ray)
    return True


LocalOpt = Annotated[
    bool, typer.Option("--local", help="Run in this process without Ray (small inputs, debugging).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the summary as one JSON line.")]
OutOpt = Annotated[
    Path,
    typer.Option("--out", help="Tick dataset folder (Parquet, partitioned by symbol and UTC day)."),
]
