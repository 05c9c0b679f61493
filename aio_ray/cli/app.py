"""The ``aio`` command: one verb per job; every option has a default from ``configs/*.yaml``.

Global options (before the verb): ``--config FILE`` loads a configuration, ``--set key=value``
overrides one field (repeatable), ``--log-level``. The callback stores the loaded
configuration in typer's context (``ctx.obj``, a :class:`~aio_ray.cli.context.CliState`);
the verbs live in one module per group (``ingest``, ``bars``, ``backtest``, ``run``,
``library``, ``pine``, ``vision``) and are registered here, in the order ``aio --help`` lists.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from aio_ray.cli import backtest, bars, library, pine, run, vision
from aio_ray.cli.context import CliState, fail
from aio_ray.cli.ingest import ingest_app
from aio_ray.config import load_config
from aio_ray.errors import AioError
from aio_ray.logsetup import configure_logging

__all__ = ["app", "main"]

app = typer.Typer(
    name="aio",
    help="aio-ray: EUR/USD ticks -> bars -> indicators -> strategy search -> ranked, verified Pine.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(ingest_app, name="ingest")


@app.callback()
def main(
    ctx: typer.Context,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="YAML configuration (configs/*.yaml).")
    ] = None,
    set_: Annotated[
        list[str],
        typer.Option("--set", help="Override a config field: section.key=value (repeatable)."),
    ] = [],  # noqa: B006
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING or ERROR.")] = "INFO",
) -> None:
    """aio-ray command line."""
    configure_logging(log_level)
    try:
        ctx.obj = CliState(load_config(config, set_))
    except AioError as exc:
        fail(exc)
    lc = ctx.obj.config.logging
    # --log-level given on the command line wins over the file's level
    configure_logging(log_level if log_level.upper() != "INFO" else lc.level, lc.format)


app.command("bars")(bars.bars_cmd)
app.command("indicators")(bars.indicators_cmd)
app.command("backtest")(backtest.backtest_cmd)
app.command("optimize")(run.optimize_cmd)
app.command("rank")(library.rank_cmd)
app.command("pipeline")(run.pipeline_cmd)
app.command("pine")(pine.pine_cmd)
app.command("verify-pine")(pine.verify_pine_cmd)
app.command("analyze")(vision.analyze_cmd)
app.command("patterns")(vision.patterns_cmd)
