"""Micro-batching: the texts of concurrent requests share model calls, and each request gets exactly its own rows.

One worker thread does all of the model's work, off the event loop: it tokenizes each request's texts as they
arrive, then runs each model call. A call is flushed at ``max_batch_size`` texts or ``max_batch_tokens`` tokens,
or ``max_wait_ms`` after its first request arrived; a request whose client went away while it waited is left out.
"""

from __future__ import annotations

import asyncio
import contextlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from bertclf.batching import EncodedTexts
from bertclf.classifier import TextClassifier
from bertclf.serving.monitoring import ServerMetrics
from bertclf.serving.settings import ServeSettings


@dataclass
class _Pending:
    token_ids: list
    future: asyncio.Future
    tokens: int  # every window of a chunked text counted


class Batcher:
    """Gathers the texts of concurrent requests into model calls, run one at a time in a worker thread."""

    def __init__(self, classifier: TextClassifier, settings: ServeSettings, metrics: ServerMetrics):
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

    async def probabilities(self, texts: list[str]) -> np.ndarray:
        """Probabilities of these texts, computed in some model call together with other requests' texts."""
        loop = asyncio.get_running_loop()
        token_ids = await loop.run_in_executor(self.executor, self.classifier.encode, texts)
        pending = _Pending(token_ids, loop.create_future(), sum(EncodedTexts(token_ids).lengths))
        self.metrics.queue_depth.inc(len(token_ids))
        await self.queue.put(pending)
        return await pending.future

    async def warm_up(self) -> None:
        """One model call on a short text of its own, before the server says it is ready: it pays the first call's
        one-time costs, and waits for no companions (no ``max_wait_ms``: no other request can come yet)."""
        loop = asyncio.get_running_loop()
        token_ids = await loop.run_in_executor(self.executor, self.classifier.encode, ["warm up"])
        pending = _Pending(token_ids, loop.create_future(), sum(EncodedTexts(token_ids).lengths))
        await self._answer([pending])
        await pending.future

    async def _run(self) -> None:
        while True:
            batch = await self._gather()
            self.metrics.queue_depth.dec(sum(len(pending.token_ids) for pending in batch))
            waiting = [pending for pending in batch if not pending.future.cancelled()]  # clients may have gone
            if waiting:
                await self._answer(waiting)

    async def _gather(self) -> list[_Pending]:
        """The requests of the next model call: the first to arrive and those that follow it within
        ``max_wait_ms``, up to ``max_batch_size`` texts or ``max_batch_tokens`` tokens."""
        loop = asyncio.get_running_loop()
        settings = self.settings
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
        return batch

    async def _answer(self, batch: list[_Pending]) -> None:
        """One model call for the texts of ``batch``; each request gets its own rows (or the call's error)."""
        token_ids = [ids for pending in batch for ids in pending.token_ids]
        try:
            probabilities = await asyncio.get_running_loop().run_in_executor(self.executor, self._predict, token_ids)
        except Exception as error:  # a failed call fails its requests, not the server
            for pending in batch:
                if not pending.future.done():
                    pending.future.set_exception(error)
            return
        self.metrics.batch_size.observe(len(token_ids))
        self.metrics.texts.inc(len(token_ids))
        start = 0
        for pending in batch:
            rows = probabilities[start : start + len(pending.token_ids)]
            start += len(pending.token_ids)
            if not pending.future.done():  # the client may have gone away during the call
                pending.future.set_result(rows)

    def _predict(self, token_ids: list) -> np.ndarray:
        predictor = self.classifier.predictor()
        predictor.batch_size = min(predictor.batch_size, self.settings.forward_batch_size)
        return predictor.predict_proba(token_ids)
