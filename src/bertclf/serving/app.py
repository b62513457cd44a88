"""``bertclf serve``: a REST server for a trained classifier, with micro-batching, limits, health and metrics.

Requests put their texts on the :class:`~bertclf.serving.batcher.Batcher`, which tokenizes them and gathers the
texts of concurrent requests into model calls, off the event loop, and hands every request exactly its own rows.
With ``max_batch_size`` 1 every request is its own call. Excess load is refused, not queued forever: beyond
``max_concurrent_requests`` requests in flight the answer is 503 with ``Retry-After``. Every error is JSON,
``{"error": "..."}``, naming the problem, with the status of its kind (:data:`~bertclf.serving.schemas.ERROR_STATUS`).
The routes live on a router and read what they share (classifier, settings, batcher, metrics) from ``app.state``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import numpy as np
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from bertclf import __version__
from bertclf.classifier import TextClassifier
from bertclf.errors import first_line
from bertclf.serving.batcher import Batcher
from bertclf.serving.monitoring import ServerMetrics
from bertclf.serving.schemas import (
    ERROR_RESPONSES,
    ERROR_STATUS,
    ErrorKind,
    PredictRequest,
    PredictResponse,
    ServeError,
)
from bertclf.serving.settings import ServeSettings

log = logging.getLogger("bertclf")
router = APIRouter()
LIMITS = ("max_batch_size", "max_batch_tokens", "max_wait_ms", "max_concurrent_requests", "max_texts_per_request",
          "max_text_chars", "max_body_bytes")  # the settings /info shows


def create_app(classifier: TextClassifier, settings: ServeSettings | None = None) -> FastAPI:
    """The ASGI app serving ``classifier``; the model is warmed up before ``/ready`` says so."""
    app = FastAPI(title="bertclf", version=__version__, lifespan=_lifespan,
                  description="Text classification with a model trained by bertclf.")
    app.state.classifier, app.state.settings = classifier, settings or ServeSettings()
    app.state.metrics, app.state.ready, app.state.in_flight = ServerMetrics(), False, 0
    app.add_exception_handler(ServeError, _answer_error)
    app.add_exception_handler(StarletteHTTPException, _answer_http_error)  # 404, 405: {"error"}, not {"detail"}
    app.add_exception_handler(RequestValidationError, _answer_validation_error)
    app.add_exception_handler(Exception, _answer_unexpected_error)  # outside /predict, which answers its own
    app.middleware("http")(_limits_and_metrics)
    app.include_router(router)
    return app


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    state = app.state
    state.batcher = Batcher(state.classifier, state.settings, state.metrics)
    state.batcher.start()
    await state.batcher.warm_up()
    state.ready = True
    try:
        yield
    finally:
        state.ready = False
        await state.batcher.stop()


def _json_error(message: str, status: int, headers: Mapping[str, str] | None = None) -> JSONResponse:
    # A message may quote what the client sent: a lone surrogate in it is escaped, or the answer could not be UTF-8.
    text = message.encode("utf-8", "backslashreplace").decode("utf-8")
    return JSONResponse({"error": text}, status_code=status, headers=dict(headers) if headers else None)


def _error_response(problem: ServeError) -> JSONResponse:
    return _json_error(problem.message, problem.status, problem.headers)


async def _answer_error(_request: Request, problem: ServeError) -> JSONResponse:
    return _error_response(problem)


async def _answer_http_error(_request: Request, problem: StarletteHTTPException) -> JSONResponse:
    return _json_error(str(problem.detail), problem.status_code, problem.headers)


async def _answer_validation_error(_request: Request, problem: RequestValidationError) -> JSONResponse:
    first = problem.errors()[0] if problem.errors() else {}
    where = ".".join(str(part) for part in first.get("loc", ())) or "request"
    return _error_response(ServeError(ErrorKind.INVALID, f"{where}: {first.get('msg', 'invalid')}"))


def _unexpected(error: Exception) -> JSONResponse:
    """A fault of the server's, not of the request: a 500 that says what broke (the traceback goes to the log)."""
    log.error("internal error answering a request", exc_info=error)
    return _error_response(ServeError(ErrorKind.INTERNAL, f"internal error: {first_line(error)}"))


async def _answer_unexpected_error(_request: Request, error: Exception) -> JSONResponse:
    return _unexpected(error)


async def _limits_and_metrics(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    """``/predict`` only: refuse beyond the requests in flight or a declared body size, and count and time it."""
    if request.url.path != "/predict":
        return await call_next(request)
    state, started = request.app.state, time.perf_counter()
    settings, metrics = state.settings, state.metrics
    if state.in_flight >= settings.max_concurrent_requests:
        response: Response = _error_response(ServeError(
            ErrorKind.OVERLOADED, f"too many requests in flight (limit {settings.max_concurrent_requests}); retry"))
    elif int(request.headers.get("content-length") or 0) > settings.max_body_bytes:
        response = _error_response(ServeError(ErrorKind.TOO_LARGE,
                                              f"request body over {settings.max_body_bytes} bytes"))
    else:
        state.in_flight += 1
        metrics.in_flight.inc()
        try:
            response = await call_next(request)
        except Exception as error:  # answered as JSON here, so that /metrics counts it like any other answer
            response = _unexpected(error)
        finally:
            state.in_flight -= 1
            metrics.in_flight.dec()
    metrics.requests.labels(str(response.status_code)).inc()
    metrics.latency.observe(time.perf_counter() - started)
    return response


_BODY = {"required": True, "content": {"application/json": {"schema": PredictRequest.model_json_schema()}}}


@router.post("/predict", summary="Classify one text or a list of texts", response_model=PredictResponse,
             response_model_exclude_unset=True, responses=ERROR_RESPONSES, openapi_extra={"requestBody": _BODY})
async def predict(request: Request) -> dict[str, Any]:
    state = request.app.state
    classifier: TextClassifier = state.classifier
    payload = await read_payload(request, state.settings.max_body_bytes)
    texts = check_texts(payload, state.settings)
    if payload.threshold is not None and classifier.task_ != "multilabel":
        raise ServeError(ErrorKind.INVALID, "threshold: applies to multilabel models only")
    if not state.ready:
        raise ServeError(ErrorKind.NOT_READY, "the model is still loading; retry")
    probabilities = await state.batcher.probabilities(texts)
    return {"predictions": answers(classifier, probabilities, payload)}


@router.get("/health", summary="The server is alive")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready", summary="The model is loaded and warmed up", responses={503: ERROR_RESPONSES[503]})
async def ready(request: Request) -> Any:
    if request.app.state.ready:
        return {"status": "ready"}
    # No Retry-After here: a probe asks again on its own schedule.
    return JSONResponse({"error": "the model is still loading"}, status_code=ERROR_STATUS[ErrorKind.NOT_READY])


@router.get("/info", summary="The model being served")
async def info(request: Request) -> dict[str, Any]:
    classifier: TextClassifier = request.app.state.classifier
    config = classifier.config
    return {"task": classifier.task_, "labels": classifier.classes_, "model": config.model,
            "runtime": classifier.runtime_.name, "max_length": classifier.max_length_,
            "long_text": config.long_text, "version": __version__,
            "limits": {name: getattr(request.app.state.settings, name) for name in LIMITS}}


@router.get("/metrics", summary="Prometheus metrics")
async def prometheus(request: Request) -> PlainTextResponse:
    metrics: ServerMetrics = request.app.state.metrics
    return PlainTextResponse(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)


async def read_payload(request: Request, max_body_bytes: int) -> PredictRequest:
    """The request's JSON body, read here rather than by FastAPI so that its size is capped however it is sent
    (a chunked upload has no Content-Length) and every problem gets its own status and message."""
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > max_body_bytes:
            raise ServeError(ErrorKind.TOO_LARGE, f"request body over {max_body_bytes} bytes")
    try:
        data = json.loads(body)
    except ValueError as problem:
        raise ServeError(ErrorKind.MALFORMED, f"malformed JSON: {problem}") from None
    except RecursionError:
        raise ServeError(ErrorKind.MALFORMED, "malformed JSON: nested too deeply") from None
    try:
        return PredictRequest.model_validate(data)
    except ValidationError as problem:
        first = problem.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ())) or "body"
        raise ServeError(ErrorKind.INVALID, f"{where}: {first.get('msg')}") from None


def check_texts(payload: PredictRequest, settings: ServeSettings) -> list[str]:
    if (payload.texts is None) == (payload.text is None):
        raise ServeError(ErrorKind.INVALID, "give either 'texts' (a list of strings) or 'text' (a string)")
    texts = payload.texts if payload.texts is not None else [payload.text]
    if not texts:
        raise ServeError(ErrorKind.INVALID, "texts: the list is empty")
    if len(texts) > settings.max_texts_per_request:
        raise ServeError(ErrorKind.TOO_LARGE, f"texts: {len(texts)} texts, over the limit of "
                                              f"{settings.max_texts_per_request} per request")
    too_long = next((i for i, text in enumerate(texts) if len(text) > settings.max_text_chars), None)
    if too_long is not None:
        raise ServeError(ErrorKind.TOO_LARGE, f"texts.{too_long}: {len(texts[too_long])} characters, over the limit "
                                              f"of {settings.max_text_chars}")
    for position, text in enumerate(texts):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as problem:  # JSON's "\ud800" escape, or its UTF-8 bytes, give a lone surrogate
            where = "text" if payload.text is not None else f"texts.{position}"
            raise ServeError(ErrorKind.MALFORMED, f"{where}: not Unicode text (a lone surrogate "
                                                  f"{text[problem.start]!r})") from None
    return texts


def answers(classifier: TextClassifier, probabilities: np.ndarray, payload: PredictRequest) -> list[dict[str, Any]]:
    """Per text, in order: the label(s) and the probabilities (the ``top_k`` most probable when asked)."""
    classes = classifier.classes_
    predictor = classifier.predictor()
    if payload.threshold is not None:
        predictor.thresholds = np.full(len(classes), payload.threshold)
    decisions = predictor.decisions(probabilities)  # the saved or the requested thresholds, as offline
    result = []
    for row, scores in enumerate(probabilities):
        order = np.argsort(-scores, kind="stable")[: payload.top_k]
        entry: dict[str, Any] = {"probabilities": {str(classes[i]): float(scores[i]) for i in order}}
        if classifier.task_ == "multilabel":
            entry["labels"] = [classes[i] for i in np.flatnonzero(decisions[row])]
        else:
            entry["label"] = classes[int(decisions[row])]
        result.append(entry)
    return result
