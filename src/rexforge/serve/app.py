"""The HTTP application of ``rexforge serve``: ``create_app(forecaster, limits)``.

    GET  /health    -> {"status": "ok", "model": ..., "quantile_levels": [...], ...}
    POST /forecast  {"series": [[...], ...], "prediction_length": H,
                     "quantile_levels": [...] (optional), "rollout": one of the model's}
                    -> {"quantiles": [B][H][Q], "mean": [B][H], "quantile_levels": [...]}

The numbers are those of ``forecaster.predict_quantiles(series, H)`` (missing
values are sent as null, and null comes back where a forecast is NaN). Every error, whatever
its cause, is a JSON body ``{"error": "<one line>"}``: 400 for a body that is not JSON, 413
for one over the size limit, 422 for a request that is valid JSON but not a valid forecast
request, 500 for a failure while forecasting (the server keeps serving).
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import Literal

import numpy as np
import torch
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt
from starlette.exceptions import HTTPException as StarletteHTTPException

from rexforge.errors import InputError
from rexforge.forecast.api import interpolate_quantiles
from rexforge.serve.batching import ForecastBatcher, ForecastFunction, ForecastKey
from rexforge.serve.limits import ServeLimits

logger = logging.getLogger(__name__)


class ForecastRequest(BaseModel):
    # Unknown keys are refused: a misspelt "quantile_level" must not silently do nothing.
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"series": [[1, 2, 3, None, 5]], "prediction_length": 4}]},
    )
    series: list[list[StrictFloat | None]] = Field(
        description="one list of values per series (any lengths); null marks a missing value"
    )
    prediction_length: StrictInt = Field(description="steps to forecast")
    quantile_levels: list[StrictFloat] | None = Field(
        default=None,
        description="levels within the model's trained range (interpolated between trained "
        "levels); default: the model's own levels",
    )
    rollout: Literal["exact", "stateful", "median", "paths", "cut"] | None = Field(
        default=None,
        description="how horizons past one pass of the model are computed (TiRex: exact, "
        "stateful, median, paths; TiRex-2: cut, median, paths); default: the model's",
    )


class ForecastResponse(BaseModel):
    quantiles: list[list[list[float | None]]] = Field(description="[series][step][level]")
    mean: list[list[float | None]] = Field(description="[series][step]: the median forecast")
    quantile_levels: list[float]


class ErrorResponse(BaseModel):
    error: str


class RequestRejected(HTTPException):
    """A request this server will not forecast; a FastAPI ``HTTPException`` so that raising
    it while FastAPI reads the body still reaches our JSON error handler."""

    def __init__(self, status_code: int, message: str):
        super().__init__(status_code=status_code, detail=message)


def create_app(
    forecaster, limits: ServeLimits | None = None, model_name: str | None = None
) -> FastAPI:
    """The FastAPI application serving ``forecaster`` (a loaded ``TiRexForecaster``)."""
    limits = limits or ServeLimits()
    model_name = model_name or str(getattr(forecaster, "source", "") or "model")
    batcher = ForecastBatcher(
        forecast_function(forecaster), limits.max_wait_ms / 1000.0, limits.max_batch_series
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await batcher.start()
        try:
            yield
        finally:
            await batcher.stop()

    app = FastAPI(
        title="rexforge forecasting service",
        description=f"TiRex quantile forecasts from the model {model_name!r}.",
        lifespan=lifespan,
    )
    app.state.batcher = batcher
    app.add_middleware(BodySizeLimit, max_bytes=limits.max_body_bytes)
    install_error_handlers(app)

    @app.get("/health")
    async def health() -> dict:
        return {
            "status": "ok",
            "model": model_name,
            "quantile_levels": list(forecaster.quantiles),
            "default_rollout": _default_rollout(forecaster),
            # Requests per forward pass tells how much batching is happening under load.
            "forward_passes": batcher.forward_passes,
            "requests_served": batcher.requests_served,
        }

    error_responses = {code: {"model": ErrorResponse} for code in (400, 413, 422, 500)}

    @app.post("/forecast", response_model=ForecastResponse, responses=error_responses)
    async def forecast(request: ForecastRequest):
        series, key = parse_forecast_request(request, forecaster, limits)
        try:
            quantiles, mean = await batcher.submit(series, key)
        except InputError as exc:
            raise RequestRejected(422, str(exc)) from None
        except Exception as exc:
            logger.exception("forecast failed")
            return error_json(500, f"forecast failed: {type(exc).__name__}: {exc}")
        levels = list(key.quantile_levels or forecaster.quantiles)
        # Built by hand rather than through ForecastResponse: validating B*H*Q floats with
        # pydantic would cost more than the forecast of a small request.
        return JSONResponse(
            {
                "quantiles": json_values(quantiles),
                "mean": json_values(mean),
                "quantile_levels": levels,
            }
        )

    return app


def forecast_function(forecaster) -> ForecastFunction:
    """The batcher's forecast: ``forecaster.predict_quantiles`` (every family has it) with the
    request's rollout, then the requested levels as ``predict_quantiles`` computes them
    (linear between the trained levels). A model that forecasts fewer steps than asked (TiRex-2
    past its cap, without a rollout that goes further) is an ``InputError``."""
    further = [r for r in getattr(forecaster, "rollouts", ()) if r in ("median", "paths")]

    def run(series: list[np.ndarray], key: ForecastKey) -> tuple[np.ndarray, np.ndarray]:
        options = {} if key.rollout is None else {"rollout": key.rollout}
        quantiles, mean = forecaster.predict_quantiles(series, key.prediction_length, **options)
        quantiles, mean = np.asarray(quantiles), np.asarray(mean)
        if quantiles.shape[1] < key.prediction_length:
            raise InputError(
                f"prediction_length: this model forecasts at most {quantiles.shape[1]} steps in "
                f"one pass; ask for a rollout ({' or '.join(further)}) to forecast further"
            )
        if key.quantile_levels is not None:
            trained = forecaster.quantiles
            levels = key.quantile_levels
            quantiles = interpolate_quantiles(torch.from_numpy(quantiles), trained, levels).numpy()
        return quantiles, mean

    return run


def parse_forecast_request(
    request: ForecastRequest, forecaster, limits: ServeLimits
) -> tuple[list[np.ndarray], ForecastKey]:
    """The request's series as float64 arrays (null -> NaN) and its batching key, or a 422
    (413 for a request over a limit) that says what is wrong."""
    if not request.series:
        raise RequestRejected(422, "series: give at least one series")
    if len(request.series) > limits.max_series_per_request:
        raise RequestRejected(
            413,
            f"series: {len(request.series)} series, more than the limit of "
            f"{limits.max_series_per_request} per request",
        )
    arrays = []
    for index, values in enumerate(request.series):
        if not values:
            raise RequestRejected(422, f"series {index} is empty")
        if len(values) > limits.max_series_length:
            raise RequestRejected(
                413,
                f"series {index} has {len(values)} values, more than the limit of "
                f"{limits.max_series_length}",
            )
        array = np.array(values, dtype=np.float64)  # None -> NaN
        if np.isinf(array).any():
            raise RequestRejected(422, f"series {index} holds +-Infinity; send null if missing")
        arrays.append(array)
    horizon = request.prediction_length
    if not 1 <= horizon <= limits.max_prediction_length:
        raise RequestRejected(
            422 if horizon < 1 else 413,
            f"prediction_length must be between 1 and {limits.max_prediction_length}, got {horizon}",
        )
    default_rollout = _default_rollout(forecaster)
    rollouts = tuple(getattr(forecaster, "rollouts", ()))
    if request.rollout is not None and request.rollout not in rollouts:
        offered = ", ".join(rollouts) if rollouts else "none"
        raise RequestRejected(422, f"rollout: this model's rollouts are {offered}")
    key = ForecastKey(
        prediction_length=horizon,
        rollout=request.rollout or default_rollout,
        quantile_levels=_checked_levels(request.quantile_levels, forecaster.quantiles),
    )
    return arrays, key


def _default_rollout(forecaster) -> str | None:
    """A TiRex model's default rollout; None for a family without TiRex's rollouts."""
    return getattr(forecaster, "default_rollout", None)


def _checked_levels(levels: list[float] | None, trained: list[float]) -> tuple[float, ...] | None:
    # Checked here, not in the batch: a bad level would otherwise fail the whole batch first.
    if levels is None:
        return None
    if not levels:
        raise RequestRejected(422, "quantile_levels: give at least one level, or leave it out")
    outside = [q for q in levels if not trained[0] <= q <= trained[-1]]
    if outside:
        raise RequestRejected(
            422,
            f"quantile_levels {outside} are outside the trained range "
            f"[{trained[0]:g}, {trained[-1]:g}] (levels are interpolated, not extrapolated)",
        )
    return tuple(float(q) for q in levels)


def json_values(array: np.ndarray) -> list:
    """Nested lists of floats with NaN as None (JSON has no NaN)."""
    if np.isfinite(array).all():
        return array.tolist()
    return np.where(np.isfinite(array), array, None).tolist()


def error_json(status_code: int, message: str, headers=None) -> JSONResponse:
    one_line = " ".join(str(message).split())
    return JSONResponse({"error": one_line}, status_code=status_code, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Every error FastAPI or Starlette would answer in its own shape answers ``{"error"}``."""

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        problems = exc.errors()
        first = problems[0] if problems else {"type": "", "loc": (), "msg": "invalid request"}
        if first.get("type") == "json_invalid":
            return error_json(400, "request body is not valid JSON")
        where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
        message = f"{where}: {first.get('msg')}" if where else str(first.get("msg"))
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        return error_json(422, message + more)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return error_json(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, exc: Exception):
        logger.exception("unexpected error")
        return error_json(500, f"internal error: {type(exc).__name__}")


class BodySizeLimit:
    """ASGI middleware: refuse bodies over ``max_bytes`` with 413, by their declared
    Content-Length when there is one, else while they are read (chunked uploads)."""

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large()(scope, receive, send)
            return
        received = 0

        async def limited_receive():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise RequestRejected(413, self._too_large_message())
            return message

        await self.app(scope, limited_receive, send)

    def _too_large_message(self) -> str:
        return f"request body is larger than the limit of {self.max_bytes} bytes"

    def _too_large(self) -> JSONResponse:
        return error_json(413, self._too_large_message())
