"""The aio-ray Ray Serve application: the strategy library over HTTP, a dashboard, live control.

Run it::

    serve run serve.app:app                                   # settings from the environment
    serve run serve.app:build app_config=configs/demo.yaml    # builder with arguments
    serve deploy configs/serve.yaml                           # against a running cluster
    uvicorn --factory serve.app:asgi_app                      # without Ray (development)

Endpoints (OpenAPI at ``/docs``): ``GET /health``, ``/runs``, ``/rankings`` (``.json``,
``.csv``), ``/strategies/{id}``, ``/strategies/{id}/pine``, ``/strategies/{id}/equity``,
``/strategies/{id}/candles``, ``/dashboard``; control (``Authorization: Bearer <token>``):
``POST /strategies/{id}/pause``, ``/resume``, ``/params`` and ``POST /config/reload``.
Charts and vision: ``POST /analyze`` (a PNG or a window of bars -> ChartAnalysis JSON),
``GET /analyses`` (the analysis log), ``GET /patterns`` (mined pattern statistics).

Every id a request carries is checked against a strict pattern before it reaches the
library (where it only ever travels as a bound SQL parameter); no request value is ever
used in a file path. Bodies over ``max_body_bytes`` answer 413 before they are read whole.
"""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Body, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import (
    FileResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError
from ray import serve as _serve
from starlette.concurrency import run_in_threadpool

from aio_ray.errors import AioError, ConfigError
from aio_ray.library import LibraryError
from aio_ray.library.repo import LibraryUnavailableError
from aio_ray.strategies.params import ParameterError
from aio_ray.vision.backends import BackendUnavailableError, VisionError
from serve.config import resolve
from serve.guard import (
    BodyLimit,
    ControlGuard,
    authorized,
    error_responses,
    safe_message,
    short_errors,
)
from serve.requests import (
    ControlNote,
    Operator,
    ParamsUpdate,
    RunIdQuery,
    StrategyId,
    TimeframeQuery,
)
from serve.service import Core, NotFound, Unavailable, dumps
from serve.vision import (
    INSTRUMENT,
    PNG_MAGIC,
    AnalysisRefused,
    AnalyzeBars,
    Timeframe,
    VisionService,
)

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
VENDOR_JS = STATIC_DIR / "vendor" / "lightweight-charts.standalone.production.js"

# ----------------------------------------------------------------------------- the app


def create_app(args: Mapping[str, Any] | None = None, core: Core | None = None) -> FastAPI:
    """The FastAPI application over the library that ``args`` name (see ServeSettings).

    Raises ConfigError (from :func:`serve.config.resolve`) for invalid settings.
    """
    core = core or Core(args)
    app = FastAPI(
        title="aio-ray strategy library",
        version="0.1.0",
        description="Ranked, verified EUR/USD strategies: rankings, Pine v6 scripts, equity "
        "curves, a dashboard, and live control (pause, resume, parameters, config reload).",
    )
    app.state.core = core
    app.add_middleware(ControlGuard, core=core)  # inside BodyLimit: 413, then 429, then 401
    app.add_middleware(
        BodyLimit,
        limit=lambda scope: (
            core.cfg.settings.max_upload_bytes
            if scope.get("path") == "/analyze"
            else core.cfg.settings.max_body_bytes
        ),
    )
    vision = VisionService(core)  # follows reloads
    app.state.vision = vision
    READ = error_responses(422, 503)
    ONE = error_responses(404, 422, 503)
    CONTROL = error_responses(400, 401, 404, 413, 422, 429, 503)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": short_errors(exc.errors())}, status_code=422)

    @app.exception_handler(NotFound)
    async def _not_found(_: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"detail": safe_message(str(exc))}, status_code=404)

    @app.exception_handler(Unavailable)
    async def _unavailable(_: Request, exc: Unavailable) -> JSONResponse:
        return JSONResponse({"detail": safe_message(str(exc))}, status_code=503)

    @app.exception_handler(LibraryError)
    async def _library(_: Request, exc: LibraryError) -> JSONResponse:
        log.error("library error: %s", exc)
        code = 503 if isinstance(exc, LibraryUnavailableError) else 500
        return JSONResponse(
            {"detail": f"library error: {safe_message(exc.problem)}"}, status_code=code
        )

    @app.exception_handler(AioError)
    async def _aio(_: Request, exc: AioError) -> JSONResponse:
        # a stage refused a value that passed the request's validation: the caller's input
        log.warning("refused input: %s", exc)
        return JSONResponse({"detail": safe_message(str(exc))}, status_code=422)

    def client_of(request: Request) -> str | None:
        return request.client.host if request.client else None

    # ------------------------------------------------------------------ reads

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("dashboard")

    @app.get(
        "/health",
        summary="Liveness and what is served (server paths only with the token)",
        responses=error_responses(500, 503),
    )
    async def health(request: Request) -> dict[str, Any]:
        out = await run_in_threadpool(core.health, authorized(request))
        out["dashboard_assets"] = "ok" if VENDOR_JS.exists() else "missing: run serve/vendor.sh"
        return out

    @app.get("/runs", summary="Every run, newest first", responses=error_responses(503))
    def runs() -> list[dict[str, Any]]:
        return core.runs()

    async def _rankings_bytes(run_id: str | None, timeframe: str | None) -> bytes:
        key = ("rankings.json", run_id, timeframe)
        if core.fresh(key):
            return core.rankings_json(run_id, timeframe)
        return await run_in_threadpool(core.rankings_json, run_id, timeframe)

    JSON_OK: dict[int | str, dict[str, Any]] = {
        200: {"description": "OK", "content": {"application/json": {"schema": {}}}}
    }

    @app.get(
        "/rankings",
        summary="Top strategies of a run (default: newest), with OOS metrics, holdout "
        "figures, Pine verification and live state",
        response_class=Response,
        responses={**JSON_OK, **ONE},
    )
    async def rankings(run_id: RunIdQuery = None, timeframe: TimeframeQuery = None) -> Response:
        return Response(await _rankings_bytes(run_id, timeframe), media_type="application/json")

    @app.get(
        "/rankings.json",
        summary="Rankings export (JSON download)",
        response_class=Response,
        responses={**JSON_OK, **ONE},
    )
    async def rankings_json(
        run_id: RunIdQuery = None, timeframe: TimeframeQuery = None
    ) -> Response:
        return Response(
            await _rankings_bytes(run_id, timeframe),
            media_type="application/json",
            headers={"Content-Disposition": 'attachment; filename="rankings.json"'},
        )

    @app.get(
        "/rankings.csv",
        summary="Rankings export (CSV download)",
        response_class=Response,
        responses={
            200: {
                "description": "CSV, one row per strategy",
                "content": {"text/csv": {"schema": {"type": "string"}}},
            },
            **ONE,
        },
    )
    def rankings_csv(run_id: RunIdQuery = None, timeframe: TimeframeQuery = None) -> Response:
        return Response(
            core.rankings_csv(run_id, timeframe),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="rankings.csv"'},
        )

    @app.get(
        "/strategies/{strategy_id}",
        summary="Parameters (ranked and in force), metrics, trades summary, state; "
        "control events' client addresses only with the token",
        response_class=Response,
        responses={**JSON_OK, **ONE},
    )
    def strategy(strategy_id: StrategyId, request: Request) -> Response:
        d = core.strategy(strategy_id)
        if not authorized(request):
            d = {
                **d,
                "control_events": [
                    {
                        **e,
                        "payload": {
                            k: v for k, v in (e.get("payload") or {}).items() if k != "client"
                        },
                    }
                    for e in d["control_events"]
                ],
            }
        return Response(dumps(d), media_type="application/json")

    @app.get(
        "/strategies/{strategy_id}/pine",
        response_class=PlainTextResponse,
        summary="The Pine v6 script of the parameters in force (kind=indicator: the overlay); "
        "verification and override in headers",
        responses={
            200: {
                "description": "Pine v6 source",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            },
            **ONE,
        },
    )
    async def pine(
        strategy_id: StrategyId, kind: Literal["strategy", "indicator"] = "strategy"
    ) -> PlainTextResponse:
        if core.fresh(("pine", strategy_id, kind)):
            code, ver, live = core.pine(strategy_id, kind)
        else:
            code, ver, live = await run_in_threadpool(core.pine, strategy_id, kind)
        headers = {"X-Pine-Verified": _verified(ver), "X-Pine-Params": live["source"]}
        if ver is not None and ver.get("first_diff_bar") is not None:
            headers["X-Pine-First-Diff-Bar"] = str(ver["first_diff_bar"])
        if live["source"] == "override":
            headers["X-Pine-Override-By"] = str(live["by"])
            headers["X-Pine-Override-At"] = str(live["at_ms"])
        return PlainTextResponse(code, headers=headers)

    @app.get(
        "/strategies/{strategy_id}/equity",
        summary="Equity and drawdown series and trades of the parameters in force",
        response_class=Response,
        responses={**JSON_OK, **ONE},
    )
    def equity(strategy_id: StrategyId) -> Response:
        return Response(dumps(core.equity(strategy_id)), media_type="application/json")

    @app.get(
        "/strategies/{strategy_id}/candles",
        summary="Mid OHLC bars of its timeframe",
        response_class=Response,
        responses={**JSON_OK, **ONE},
    )
    def candles(strategy_id: StrategyId) -> Response:
        return Response(dumps(core.candles(strategy_id)), media_type="application/json")

    @app.get("/dashboard", include_in_schema=False)
    async def dashboard() -> FileResponse:
        return FileResponse(STATIC_DIR / "dashboard.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    # ------------------------------------------------------------------ charts and vision

    @app.get(
        "/patterns",
        summary="Mined pattern statistics (forward returns, hit rate, t)",
        response_class=Response,
        responses={**JSON_OK, **READ},
    )
    def patterns(timeframe: TimeframeQuery = None, validated: bool = False) -> Response:
        return Response(
            dumps(vision.patterns(core.lib, timeframe, validated)), media_type="application/json"
        )

    @app.get(
        "/analyses",
        summary="The newest chart analyses of the analysis log: latest window end first, "
        "then latest logged (X-Analyses-Skipped: unreadable records left out)",
        response_class=Response,
        responses={**JSON_OK, **READ},
    )
    async def analyses(
        timeframe: TimeframeQuery = None, limit: Annotated[int, Query(ge=1, le=1000)] = 50
    ) -> Response:
        rows, skipped = await run_in_threadpool(vision.analyses, limit, timeframe)
        return Response(
            dumps(rows), media_type="application/json", headers={"X-Analyses-Skipped": str(skipped)}
        )

    @app.post(
        "/analyze",
        summary="Analyse a chart: a PNG body (Content-Type image/png, at most max_image_pixels) "
        "or JSON bars ({instrument, timeframe, bars: [{ts, open, high, low, close, volume?}]})",
        response_class=Response,
        responses={**JSON_OK, **error_responses(400, 413, 415, 422, 429, 503, 504)},
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "image/png": {"schema": {"type": "string", "format": "binary"}},
                    "application/json": {"schema": AnalyzeBars.model_json_schema()},
                },
            }
        },
    )
    async def analyze(
        request: Request,
        instrument: Annotated[str, Query(pattern=INSTRUMENT)] = "EURUSD",
        timeframe: Annotated[Timeframe, Query()] = "1h",
    ) -> Response:
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype not in ("image/png", "application/json"):
            raise HTTPException(415, "send image/png or application/json")
        raw = await request.body()
        try:
            if ctype == "image/png":
                if not raw.startswith(PNG_MAGIC):
                    raise HTTPException(422, "body is not a PNG image")
                out = await vision.submit(vision.analyze_png, raw, instrument, timeframe)
            else:
                try:
                    body = AnalyzeBars.model_validate_json(raw)
                except ValidationError as exc:
                    raise HTTPException(422, short_errors(exc.errors(include_url=False))) from None
                out = await vision.submit(vision.analyze_bars, body)
        except AnalysisRefused as exc:
            headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
            raise HTTPException(exc.status, str(exc), headers=headers) from None
        except BackendUnavailableError as exc:
            raise HTTPException(
                503, f"vision backend unavailable here: {safe_message(str(exc))}"
            ) from None
        except VisionError as exc:
            raise HTTPException(422, safe_message(str(exc))) from None
        return Response(dumps(out), media_type="application/json")

    # ------------------------------------------------------------------ control

    def _control(sid: str, action: str, payload: dict[str, Any], who: str) -> dict[str, Any]:
        try:
            return core.control(sid, action, payload, who)
        except ParameterError as exc:
            raise HTTPException(422, safe_message(str(exc), 300)) from None

    @app.post(
        "/strategies/{strategy_id}/pause",
        summary="Pause a strategy (bearer token)",
        responses=CONTROL,
    )
    def pause(
        strategy_id: StrategyId,
        who: Operator,
        request: Request,
        note: Annotated[ControlNote | None, Body()] = None,
    ) -> dict[str, Any]:
        body = {"reason": note.reason if note else None, "client": client_of(request)}
        return _control(strategy_id, "pause", body, who)

    @app.post(
        "/strategies/{strategy_id}/resume",
        summary="Resume a strategy (bearer token)",
        responses=CONTROL,
    )
    def resume(
        strategy_id: StrategyId,
        who: Operator,
        request: Request,
        note: Annotated[ControlNote | None, Body()] = None,
    ) -> dict[str, Any]:
        body = {"reason": note.reason if note else None, "client": client_of(request)}
        return _control(strategy_id, "resume", body, who)

    @app.post(
        "/strategies/{strategy_id}/params",
        summary="Override a strategy's live parameters (bearer token; the full set, validated "
        "against its family's space); DELETE clears the override",
        responses=CONTROL,
    )
    def params(
        strategy_id: StrategyId, update: ParamsUpdate, who: Operator, request: Request
    ) -> dict[str, Any]:
        if not update.params:
            raise HTTPException(
                422,
                "params: empty; to clear the override send "
                f"DELETE /strategies/{strategy_id}/params",
            )
        body = {"params": update.params, "reason": update.reason, "client": client_of(request)}
        return _control(strategy_id, "params", body, who)

    @app.delete(
        "/strategies/{strategy_id}/params",
        summary="Clear the live parameter override: the ranked parameters are in force again "
        "(bearer token)",
        responses=CONTROL,
    )
    def clear_params(strategy_id: StrategyId, who: Operator, request: Request) -> dict[str, Any]:
        return _control(strategy_id, "clear_params", {"client": client_of(request)}, who)

    @app.post(
        "/config/reload",
        summary="Re-read configuration without a restart (bearer token)",
        responses=error_responses(401, 413, 422, 429, 503),
    )
    def reload(who: Operator, request: Request) -> dict[str, Any]:
        try:
            return core.reload(who, client_of(request))
        except (ConfigError, AioError) as exc:
            raise HTTPException(
                422,
                f"configuration not reloaded (the previous one stays in force): "
                f"{safe_message(str(exc), 300)}",
            ) from None

    return app


def _verified(ver: Mapping[str, Any] | None) -> str:
    if ver is None:
        return "unchecked"
    if not ver.get("parsed"):
        return "syntax-error"
    p = ver.get("parity_passed")
    return "parsed" if p is None else ("parity-passed" if p else "parity-failed")


def asgi_app() -> FastAPI:
    """Factory for uvicorn (``uvicorn --factory serve.app:asgi_app``): settings from the
    environment (``AIO_APP_CONFIG``, ``AIO_LIBRARY_URL``, ``AIO_CONTROL_TOKEN``)."""
    return create_app(_env_args())


def _env_args() -> dict[str, Any]:
    args: dict[str, Any] = {}
    if os.environ.get("AIO_APP_CONFIG"):
        args["app_config"] = os.environ["AIO_APP_CONFIG"]
    elif not os.environ.get("AIO_LIBRARY_URL"):
        args["app_config"] = "configs/demo.yaml"
    return args


# ----------------------------------------------------------------------------- Ray Serve


@_serve.deployment(
    name="aio",
    num_replicas=1,
    ray_actor_options={"num_cpus": 0.25},
    max_ongoing_requests=256,
    health_check_period_s=10,
)
@_serve.ingress()
class AioServe:
    """One replica of the app: its own library connection and caches, built from the
    builder arguments (followed by reloads, see :mod:`serve.service`)."""

    def __init__(self, args: dict[str, Any] | None = None) -> None:
        self.args = dict(args or {})
        self.core = Core(self.args)
        # Everything loaded so far (libraries, the app) lives as long as the replica: move it
        # out of the collector's reach so a full collection stays short on the request path.
        gc.collect()
        gc.freeze()

    def __serve_build_asgi_app__(self) -> FastAPI:
        return create_app(core=self.core)

    def check_health(self) -> None:
        self.core.lib.change_marker()  # raises when the library is unreachable


def build(args: dict[str, Any]) -> Any:
    """Application builder (``serve run serve.app:build key=value ...`` or ``args:`` in a
    Serve config file): the :class:`serve.config.ServeSettings` fields, plus optional
    ``num_replicas``, ``num_cpus`` (per replica, default 0.25) and ``access_log``
    (default false: Serve's per-request access log costs p99 latency, 14-23 ms against 3-7 ms
    at 1,000 req/s on a 2-core machine; control calls are recorded in the library anyway)."""
    args = dict(args)
    n = int(args.pop("num_replicas", 1))
    cpus = float(args.pop("num_cpus", 0.25))
    access = str(args.pop("access_log", False)).lower() in ("true", "1", "yes")
    resolve(args)  # fail at deploy time, naming the bad setting
    return AioServe.options(  # type: ignore[attr-defined]
        num_replicas=n,
        ray_actor_options={"num_cpus": cpus},
        logging_config={"enable_access_log": access},
    ).bind(args)


app = AioServe.bind(_env_args())  # type: ignore[attr-defined]
"""``serve run serve.app:app``: settings from the environment (see :func:`asgi_app`)."""

__all__ = ["BodyLimit", "ControlNote", "ParamsUpdate", "asgi_app", "build", "create_app"]
