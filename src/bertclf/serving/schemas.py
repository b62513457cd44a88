"""What ``bertclf serve`` takes and answers: the request and response bodies, and every error with its status.

An error is raised as a :class:`ServeError` of one :class:`ErrorKind`; :data:`ERROR_STATUS` is the one place that
maps a kind to its HTTP status, and :data:`ERROR_RESPONSES` documents each status on the OpenAPI page.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from pydantic import BaseModel, Field

Label = str | int | float  # a class as the training data named it


class PredictRequest(BaseModel):
    """One text or a list of texts; ``top_k`` keeps the k most probable classes in the answer; ``threshold``
    overrides a multilabel model's decision thresholds for this request."""

    texts: list[str] | None = Field(None, description="Texts to classify (or give `text`).")
    text: str | None = Field(None, description="One text to classify (or give `texts`).")
    top_k: int | None = Field(None, ge=1, description="Return only the k most probable classes per text.")
    threshold: float | None = Field(None, gt=0, lt=1, description="Multilabel: one decision threshold for all labels.")


class Prediction(BaseModel):
    """One text's answer: ``label`` (a multilabel model: ``labels``) and the probability of each class kept."""

    label: Label | None = Field(None, description="The predicted class (multiclass and binary models).")
    labels: list[Label] | None = Field(None, description="The predicted classes (multilabel models).")
    probabilities: dict[str, float] = Field(description="Probability per class, most probable first.")


class PredictResponse(BaseModel):
    predictions: list[Prediction] = Field(description="One entry per text, in the order of the request.")


class ErrorResponse(BaseModel):
    error: str = Field(description="What was wrong, naming the field or the limit.")


class ErrorKind(str, Enum):
    MALFORMED = "malformed"
    INVALID = "invalid"
    TOO_LARGE = "too large"
    OVERLOADED = "overloaded"
    NOT_READY = "not ready"
    INTERNAL = "internal"  # the server's fault, not the request's


ERROR_STATUS = {ErrorKind.MALFORMED: 400, ErrorKind.INVALID: 422, ErrorKind.TOO_LARGE: 413,
                ErrorKind.OVERLOADED: 503, ErrorKind.NOT_READY: 503, ErrorKind.INTERNAL: 500}
RETRY_LATER = frozenset({ErrorKind.OVERLOADED, ErrorKind.NOT_READY})  # answered with ``Retry-After: 1``

_DESCRIPTIONS = {400: "Malformed JSON, or a text that is not Unicode (a lone surrogate)",
                 413: "Too many texts, a text too long or a body too large",
                 422: "Wrong types, no texts, or a threshold for a model that is not multilabel",
                 500: "A fault of the server's, which the error names",
                 503: "Too many requests in flight, or the model is still loading: retry after `Retry-After`"}
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": _DESCRIPTIONS[status]}
    for status in sorted(set(ERROR_STATUS.values()))}


class ServeError(Exception):
    """A request the server answers with ``{"error": message}`` and the status of its ``kind``."""

    def __init__(self, kind: ErrorKind, message: str):
        super().__init__(message)
        self.kind, self.message = kind, message

    @property
    def status(self) -> int:
        return ERROR_STATUS[self.kind]

    @property
    def headers(self) -> dict[str, str] | None:
        return {"Retry-After": "1"} if self.kind in RETRY_LATER else None
