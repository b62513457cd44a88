"""``bertclf serve``: a REST server for a trained classifier, with micro-batching, limits, health and metrics.

Requests put their texts on one queue; a batcher gathers the texts of concurrent requests into model calls
(flushed at ``max_batch_size`` texts or ``max_batch_tokens`` tokens, or ``max_wait_ms`` after the first one
arrived), runs each call in a worker thread off the event loop, and hands every request exactly its own rows.
With ``max_batch_size`` 1 every request is its own call. Excess load is refused, not queued forever: beyond
``max_concurrent_requests`` requests in flight the answer is 503 with ``Retry-After``. Every error is JSON,
``{"error": "..."}``, naming the problem.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from pydantic import BaseModel, Field, ValidationError

from bertclf import __version__
from bertclf.classifier import TextClassifier
from bertclf.config import ServeSettings


class PredictRequest(BaseModel):
    """One text or a list of texts; ``top_k`` keeps the k most probable classes in the answer; ``threshold``
    overrides a multilabel model's decision thresholds for this request."""

    texts: list[str] | None = Field(None, description="Texts to classify (or give `text`).")
    text: str | None = Field(None, description="One text to classify (or give `texts`).")
    top_k: int | None = Field(None, ge=1, description="Return only the k most probable classes per text.")
    threshold: float | None = Field(None, gt=0, lt=1, description="Multilabel: one decision threshold for all labels.")


class ServeError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers


@dataclass
class _Pending:
    token_ids: list
    future: asyncio.Future
    tokens: int


@dataclass
class _Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.requests = Counter("bertclf_requests", "Requests answered, by status code.", ["status"],
                                registry=self.registry)
        self.latency = Histogram("bertclf_request_seconds", "Time to answer a /predict request.",
                                 registry=self.registry,
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
        self.batch_size = Histogram("bertclf_batch_texts", "Texts per model call.", registry=self.registry,
                                    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512))
        self.queue_depth = Gauge("bertclf_queue_texts", "Texts waiting for a model call.", registry=self.registry)
        self.texts = Counter("bertclf_texts", "Texts classified (rate() gives texts/s).", registry=self.registry)
        self.in_flight = Gauge("bertclf_requests_in_flight", "Requests being answered.", registry=self.registry)


class Batcher:
    """Gathers the token ids of concurrent requests into model calls, run one at a time in a worker thread."""

    def __init__(self, classifier: TextClassifier, settings: ServeSettings, metrics: _Metrics):
        self.classifier, self.settings, self.metrics = classifier, settings, metrics
        self.queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bertclf-model")
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        self.executor.shutdown(wait=True)

    async def probabilities(self, token_ids: list) -> np.ndarray:
        """Probabilities of these texts, computed in some model call together with other requests' texts."""
        tokens = sum(sum(map(len, ids)) if ids and isinstance(ids[0], list) else len(ids) for ids in token_ids)
        pending = _Pending(token_ids, asyncio.get_running_loop().create_future(), tokens)
        self.metrics.queue_depth.inc(len(token_ids))
        await self.queue.put(pending)
        return await pending.future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        settings = self.settings
        while True:
            batch = [await self.queue.get()]
            texts, tokens = len(batch[0].token_ids), batch[0].tokens
            deadline = loop.time() + settings.max_wait_ms / 1000
            while texts < settings.max_batch_size and tokens < settings.max_batch_tokens:
                try:
                    following = await asyncio.wait_for(self.queue.get(), timeout=max(0.0, deadline - loop.time()))
                except TimeoutError:
                    break
                batch.append(following)
                texts, tokens = texts + len(following.token_ids), tokens + following.tokens
            self.metrics.queue_depth.dec(texts)
            token_ids = [ids for pending in batch for ids in pending.token_ids]
            try:
                probabilities = await loop.run_in_executor(self.executor, self._predict, token_ids)
            except Exception as error:  # a failed call fails its requests, not the server
                for pending in batch:
                    if not pending.future.done():
                        pending.future.set_exception(error)
                continue
            self.metrics.batch_size.observe(texts)
            self.metrics.texts.inc(texts)
            start = 0
            for pending in batch:
                rows = probabilities[start : start + len(pending.token_ids)]
                start += len(pending.token_ids)
                if not pending.future.done():  # the client may have gone away
                    pending.future.set_result(rows)

    def _predict(self, token_ids: list) -> np.ndarray:
        predictor = self.classifier.predictor()
        predictor.batch_size = min(predictor.batch_size, self.settings.forward_batch_size)
        return predictor.predict_proba(token_ids)


def create_app(classifier: TextClassifier, settings: ServeSettings | None = None) -> FastAPI:
    """The ASGI app serving ``classifier``; the model is warmed up before ``/ready`` says so."""
    settings = settings or ServeSettings()
    metrics = _Metrics()
    state: dict[str, Any] = {"ready": False, "in_flight": 0}

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        batcher = Batcher(classifier, settings, metrics)
        batcher.start()
        state["batcher"] = batcher
        await batcher.probabilities(classifier.encode(["warm up"]))
        state["ready"] = True
        try:
            yield
        finally:
            state["ready"] = False
            await batcher.stop()

    app = FastAPI(title="bertclf", version=__version__, lifespan=lifespan,
                  description="Text classification with a model trained by bertclf.")

    def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status, headers=headers)

    @app.exception_handler(ServeError)
    async def serve_error(_request: Request, problem: ServeError) -> JSONResponse:
        return error(problem.status, problem.message, problem.headers)

    @app.middleware("http")
    async def limits_and_metrics(request: Request, call_next: Any) -> Any:
        predicting = request.url.path == "/predict"
        if not predicting:
            return await call_next(request)
        started = time.perf_counter()
        if state["in_flight"] >= settings.max_concurrent_requests:
            response = error(503, f"too many requests in flight (limit {settings.max_concurrent_requests}); retry",
                             {"Retry-After": "1"})
        elif int(request.headers.get("content-length") or 0) > settings.max_body_bytes:
            response = error(413, f"request body over {settings.max_body_bytes} bytes")
        else:
            state["in_flight"] += 1
            metrics.in_flight.inc()
            try:
                response = await call_next(request)
            finally:
                state["in_flight"] -= 1
                metrics.in_flight.dec()
        metrics.requests.labels(str(response.status_code)).inc()
        metrics.latency.observe(time.perf_counter() - started)
        return response

    body_schema = {"required": True, "content": {"application/json": {"schema": PredictRequest.model_json_schema()}}}

    @app.post("/predict", summary="Classify one text or a list of texts", openapi_extra={"requestBody": body_schema})
    async def predict(request: Request) -> dict[str, Any]:
        payload = await read_payload(request, settings.max_body_bytes)
        texts = check_texts(payload, settings)
        if payload.threshold is not None and classifier.task_ != "multilabel":
            raise ServeError(422, "threshold: applies to multilabel models only")
        if not state["ready"]:
            raise ServeError(503, "the model is still loading; retry", {"Retry-After": "1"})
        probabilities = await state["batcher"].probabilities(classifier.encode(texts))
        return {"predictions": answers(classifier, probabilities, payload)}

    @app.get("/health", summary="The server is alive")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready", summary="The model is loaded and warmed up")
    async def ready() -> Any:
        return {"status": "ready"} if state["ready"] else error(503, "the model is still loading")

    @app.get("/info", summary="The model being served")
    async def info() -> dict[str, Any]:
        config = classifier.config
        return {"task": classifier.task_, "labels": classifier.classes_, "model": config.model,
                "runtime": classifier.runtime_.name, "max_length": classifier.max_length_,
                "long_text": config.long_text, "version": __version__,
                "limits": {name: getattr(settings, name) for name in ("max_batch_size", "max_batch_tokens",
                                                                      "max_wait_ms", "max_concurrent_requests",
                                                                      "max_texts_per_request", "max_text_chars",
                                                                      "max_body_bytes")}}

    @app.get("/metrics", summary="Prometheus metrics")
    async def prometheus() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


async def read_payload(request: Request, max_body_bytes: int) -> PredictRequest:
    """The request's JSON body, read here rather than by FastAPI so that its size is capped however it is sent
    (a chunked upload has no Content-Length) and every problem gets its own status and message."""
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > max_body_bytes:
            raise ServeError(413, f"request body over {max_body_bytes} bytes")
    try:
        data = json.loads(body)
    except ValueError as problem:
        raise ServeError(400, f"malformed JSON: {problem}") from None
    try:
        return PredictRequest.model_validate(data)
    except ValidationError as problem:
        first = problem.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ())) or "body"
        raise ServeError(422, f"{where}: {first.get('msg')}") from None


def check_texts(payload: PredictRequest, settings: ServeSettings) -> list[str]:
    if (payload.texts is None) == (payload.text is None):
        raise ServeError(422, "give either 'texts' (a list of strings) or 'text' (a string)")
    texts = payload.texts if payload.texts is not None else [payload.text]
    if not texts:
        raise ServeError(422, "texts: the list is empty")
    if len(texts) > settings.max_texts_per_request:
        raise ServeError(413, f"texts: {len(texts)} texts, over the limit of {settings.max_texts_per_request} per "
                              "request")
    too_long = next((i for i, text in enumerate(texts) if len(text) > settings.max_text_chars), None)
    if too_long is not None:
        raise ServeError(413, f"texts.{too_long}: {len(texts[too_long])} characters, over the limit of "
                              f"{settings.max_text_chars}")
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
