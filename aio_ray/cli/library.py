"""``aio rank``: the verdict of a search and the strategies in the library that passed it."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from aio_ray.cli.context import JsonOpt, app_config, fail
from aio_ray.errors import AioError
from aio_ray.library.report import dumps_verdict, ranked_verdict, rejected_lines

__all__ = ["rank_cmd"]


def rank_cmd(
    ctx: typer.Context,
    db: Annotated[
        str | None, typer.Option("--db", help="Library URL (default from config).")
    ] = None,
    top: Annotated[int, typer.Option(help="How many strategies.")] = 5,
    run_id: Annotated[
        str | None, typer.Option(help="Run (default: the newest ranked run).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """The verdict of a search, then the strategies that passed every gate with their
    metrics, holdout figures and parameters; when none passed, the best rejected and the gates
    they failed.

    The score uses out-of-sample walk-forward results only; holdout figures are shown beside
    it and were never used to choose. --json prints one object: the verdict (verdict,
    passed, candidates, effective_trials, pbo, gates, best_rejected, message, run_id) with
    ``strategies`` the top N of the ranking (possibly empty). Without any ranked run,
    ``verdict`` is null, ``strategies`` empty and ``message`` says so (exit 0).
    """
    from aio_ray.library.repo import (
        open_library,
    )  # lazy: sqlmodel; keeps aio --help at 1.8 s CPU instead of 3.1 s

    if top < 1:
        raise typer.BadParameter("must be at least 1", param_hint="--top")
    try:
        lib = open_library(db or app_config(ctx).library.url)
        if run_id is not None and lib.get_run(run_id) is None:
            fail(LookupError(f"run {run_id!r} is not in the library {lib.safe_url}"))
        v = ranked_verdict(lib, run_id=run_id, top=top)
    except AioError as exc:
        fail(exc)
    if as_json:
        typer.echo(dumps_verdict(v))
        return
    typer.echo(v["message"])
    if v["run_id"] is None:
        return
    typer.echo(f"run {v['run_id']}")
    for r in v["strategies"]:
        c, h = r["criteria"], r["holdout"] or {}
        typer.echo(
            f"#{r['rank']} {r['family']:<14} {r['timeframe']:>4} score {r['score']:.3f} "
            f"| OOS sharpe {c.get('sharpe', float('nan')):.2f} dd {c.get('max_drawdown', float('nan')):.1%} "
            f"DSR {c.get('dsr', float('nan')):.2f} | holdout sharpe {_num(h.get('sharpe'))} "
            f"| {r['strategy_id']} {json.dumps(r['params'])}"
        )
    rejected = rejected_lines(v) if not v["strategies"] else []
    if rejected:
        typer.echo("best rejected (not significant):")
        for line in rejected:
            typer.echo(line)


def _num(x: Any) -> str:
    return "n/a" if x is None else f"{x:.2f}"
