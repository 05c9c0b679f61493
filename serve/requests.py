"""What a request may carry: the strict patterns of ids, the bodies of control calls, and the
operator behind a control call (its bearer token checked in constant time).

Every id is matched against its pattern before it reaches the library; parameters are bounded
(a 400-digit number is a 422, not a crash); unknown body fields are errors.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Query, Request
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field

from serve.guard import check_token
from serve.vision import Timeframe

__all__ = [
    "OPERATOR",
    "PARAM_INT",
    "RUN_ID",
    "STRATEGY_ID",
    "ControlNote",
    "Operator",
    "ParamValue",
    "ParamsUpdate",
    "RunIdQuery",
    "StrategyId",
    "TimeframeQuery",
    "operator",
]

STRATEGY_ID = r"^[0-9a-f]{20}$"
"""Library strategy ids: 20 lowercase hex digits (see ``aio_ray.library.strategy_id``)."""
RUN_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
OPERATOR = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")

StrategyId = Annotated[str, PathParam(pattern=STRATEGY_ID, description="20 hex digits")]
RunIdQuery = Annotated[str | None, Query(pattern=RUN_ID, max_length=128)]
TimeframeQuery = Annotated[Timeframe | None, Query(description="a built timeframe, 1m..1d")]
PARAM_INT = 10**15
"""Integer parameters are accepted within +-10**15 (a 400-digit number is a 422, not a crash)."""
ParamValue = (
    Annotated[bool, Field(strict=True)]
    | Annotated[int, Field(strict=True, ge=-PARAM_INT, le=PARAM_INT)]
    | Annotated[float, Field(strict=True, ge=-1e15, le=1e15, allow_inf_nan=False)]
    | Annotated[str, Field(max_length=64)]
)


class ControlNote(BaseModel):
    """Optional body of pause/resume: why (kept with the event)."""

    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(None, max_length=500)


class ParamsUpdate(BaseModel):
    """New parameters of a strategy (the full set; validated against its family's space)."""

    model_config = ConfigDict(extra="forbid")
    params: dict[Annotated[str, Field(max_length=64)], ParamValue] = Field(..., max_length=32)
    reason: str | None = Field(None, max_length=500)


def operator(
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
    x_operator: Annotated[str | None, Header(max_length=64)] = None,
) -> str:
    """Who is calling (``X-Operator``, default "operator"), after checking the bearer token
    against the configured one in constant time; 401 otherwise."""
    problem = check_token(request.app.state.core.cfg.token_sha256, authorization)
    if problem is not None:
        raise HTTPException(401, problem, headers={"WWW-Authenticate": "Bearer"})
    return x_operator if x_operator and OPERATOR.match(x_operator) else "operator"


Operator = Annotated[str, Depends(operator)]
