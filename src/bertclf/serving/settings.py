"""The limits and batching of ``bertclf serve``, light enough for the command's ``--help`` (no FastAPI here)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from bertclf.errors import BertclfError

MAX_WAIT_MS = 10_000  # a longer wait for batch companions would hold a lone request that long


def _limit(default: int | float, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass
class ServeSettings:
    """Limits and batching of ``bertclf serve``: each field is a ``--flag`` of the command and a keyword of
    ``bertclf.serving.create_app``. The defaults follow Text Embeddings Inference where it has one."""

    max_batch_size: int = _limit(64, "Texts per model call (1: no batching across requests).")
    max_batch_tokens: int = _limit(16384, "Tokens per model call.")
    max_wait_ms: float = _limit(5.0, "How long the first text of a model call waits for others.")
    max_concurrent_requests: int = _limit(512, "Requests in flight; more are refused with 503 and Retry-After.")
    max_texts_per_request: int = _limit(256, "Texts in one request.")
    max_text_chars: int = _limit(100_000, "Characters in one text.")
    max_body_bytes: int = _limit(2_000_000, "Bytes in one request body.")
    # Texts of concurrent requests have unrelated lengths: one pass over all of them would pad every text to the
    # longest, so a call's texts are sorted by length and run a few at a time.
    forward_batch_size: int = _limit(16, "Texts per forward pass within a model call, sorted by length so that "
                                         "texts of different requests are padded little.")

    def __post_init__(self) -> None:
        """Refused when made (at the server's start, before the model loads), not when a request meets them."""
        for spec in fields(self):
            value, name = getattr(self, spec.name), f"{spec.name} (--{spec.name.replace('_', '-')})"
            if isinstance(value, bool):
                raise BertclfError(f"{name} must be a number, got {value}")
            if spec.name == "max_wait_ms":  # NaN fails both comparisons, infinity the second
                if not isinstance(value, (int, float)) or not 0 <= value <= MAX_WAIT_MS:
                    raise BertclfError(f"{name} must be a number of milliseconds from 0 to {MAX_WAIT_MS}, got {value}")
            elif not isinstance(value, int) or value < 1:
                raise BertclfError(f"{name} must be a whole number of at least 1, got {value}")
