"""The serving core, without HTTP: prepare off the event loop, batch, run, re-head.

* Decoding and preprocessing run in a thread pool (``clf.prepare``), never on
  the event loop.
* The model runs in the batcher's one worker thread (``clf.predict_batch``).
* Per-request temperature and top-k never touch the shared ``clf.head``: a copy
  with those settings is run on the logits the Prediction carries (``rehead``).
* What an input is comes from the model's input plan (``clf.plan``: its ``kind``,
  ``items``, ``decode``); nothing here asks whether it is an image or a text.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Sequence

from ..classifier import Classifier
from ..errors import ConfigError, ModelError
from ..prediction import Prediction
from ..preprocess import Item
from ..runner import Prepared
from .batcher import DynamicBatcher
from .errors import AnswerTimeout, HTTPError, ServerStopping
from .metrics import ServerMetrics

__all__ = ["ServeConfig", "Service", "rehead"]

log = logging.getLogger("twoends.serve")


@dataclass(frozen=True)
class ServeConfig:
    """The server's limits. ``max_batch_size=1`` turns batching off.

    ``max_inputs`` bounds the inputs of one request and ``max_json_elements``
    the numbers of one JSON body: both are checked from the request's header
    (shape, comma count) before anything is decoded or parsed.
    ``header_timeout_s`` drops a connection whose request head has not arrived
    in time, ``keep_alive_s`` an idle one.
    """

    max_batch_size: int = 8
    max_delay_ms: float = 5.0
    max_body_mb: float = 20.0
    timeout_s: float = 30.0
    max_queue: int = 256
    warmup: bool = True
    max_inputs: int = 64
    max_json_elements: int = 250_000  # one 224x224 FP32 image in JSON (150,528); more: send binary
    header_timeout_s: float = 10.0
    keep_alive_s: float = 5.0

    def __post_init__(self) -> None:
        for name in ("max_delay_ms", "max_body_mb", "timeout_s", "header_timeout_s", "keep_alive_s"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value >= 0:
                raise ConfigError(f"{name} must be a number >= 0, got {value!r}")
        if not self.timeout_s > 0 or not self.max_body_mb > 0 or not self.header_timeout_s > 0:
            raise ConfigError(
                f"timeout_s, max_body_mb and header_timeout_s must be > 0, got {self.timeout_s!r}, "
                f"{self.max_body_mb!r} and {self.header_timeout_s!r}"
            )
        for name in ("max_inputs", "max_json_elements"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a whole number >= 1, got {value!r}")

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * 1024 * 1024)


class Service:
    """A Classifier behind a dynamic batcher, with metrics. Start it inside the event loop."""

    def __init__(self, clf: Classifier, config: ServeConfig | None = None):
        if not isinstance(clf, Classifier):
            raise ConfigError(
                f"serve needs a twoends Classifier (twoends.load / twoends.wrap), got {type(clf).__name__}"
            )
        self.clf = clf
        self.config = config or ServeConfig()
        self.metrics = ServerMetrics(queue_depth=lambda: self.batcher.depth)
        self.batcher = DynamicBatcher(
            self._run_batch,
            max_batch_size=self.config.max_batch_size,
            max_delay_s=self.config.max_delay_ms / 1000.0,
            max_queue=self.config.max_queue,
            on_batch=self._on_batch,
        )
        self.ready = False
        self._prep: ThreadPoolExecutor | None = None

    # --- what kind of model ---------------------------------------------------------

    @property
    def kind(self) -> str:
        """What a raw input is for this model: "image", "text", ... (the input plan's kind)."""
        return self.clf.plan.kind

    @property
    def name(self) -> str:
        return self.clf.name

    @property
    def max_inputs(self) -> int:
        """Inputs one request may hold: more could never fit the queue at once."""
        return min(self.config.max_inputs, self.config.max_queue)

    # --- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        self._prep = ThreadPoolExecutor(max_workers=self.clf.workers, thread_name_prefix="twoends-decode")
        await self.batcher.start()
        if self.config.warmup and self.clf.plan.warmup_input() is not None:
            await self._warmup()
        self.ready = True
        log.info(
            "twoends: %s ready (max batch %d, max delay %g ms)",
            self.name,
            self.config.max_batch_size,
            self.config.max_delay_ms,
        )

    async def stop(self) -> None:
        self.ready = False
        await self.batcher.stop()
        if self._prep is not None:
            self._prep.shutdown(wait=False, cancel_futures=True)
            self._prep = None

    async def _warmup(self) -> None:
        """One full batch and one single input, so the first requests do not pay for setup."""
        zeros = self.clf.plan.warmup_input()
        for size in sorted({self.config.max_batch_size, 1}, reverse=True):
            preds = await asyncio.gather(*(self.batcher.submit(Prepared(f"<warmup {i}>", zeros)) for i in range(size)))
            bad = next((p for p in preds if not p.ok), None)
            if bad is not None:
                raise ModelError(f"the model failed its warm-up run: {bad.error['type']}: {bad.error['message']}")

    # --- the work ------------------------------------------------------------------

    def _run_batch(self, prepared: list[Prepared]) -> list[Prediction]:
        return self.clf.predict_batch(prepared)  # runs in the model thread

    def _on_batch(self, size: int, seconds: float) -> None:
        self.metrics.batch_size.observe(size)
        self.metrics.batch_seconds.observe(seconds)

    async def prepare(self, items: Sequence[Item]) -> list[Prepared]:
        """Decode and preprocess in the thread pool; errors stay in each ``Prepared``."""
        loop = asyncio.get_running_loop()
        return list(await asyncio.gather(*(loop.run_in_executor(self._prep, self.clf.prepare, it) for it in items)))

    async def offload(self, fn: Any, *args: Any) -> Any:
        """Run ``fn(*args)`` in the decode pool: parsing and converting request bodies stay off the event loop."""
        if self._prep is None:
            raise ServerStopping("the server is not running (starting or stopping); retry shortly")
        return await asyncio.get_running_loop().run_in_executor(self._prep, fn, *args)

    async def infer(self, prepared: Sequence[Prepared]) -> list[Prediction]:
        """Predictions for prepared inputs, through the batcher (each input may share a batch)."""
        futures = []
        try:
            for p in prepared:
                futures.append(self.batcher.submit(p))
            preds = list(await asyncio.gather(*futures))
        except BaseException:
            for f in futures:
                f.cancel()  # dropped from the queue if its batch has not started
            raise
        for p in preds:
            self.metrics.inputs.inc({"outcome": "ok" if p.ok else "error"})
        return preds

    async def within_timeout(self, coro: Any) -> Any:
        """Run a request's work under the server's time limit (504 past it)."""
        try:
            return await asyncio.wait_for(coro, self.config.timeout_s)
        except asyncio.TimeoutError:
            raise AnswerTimeout(
                f"no answer within {self.config.timeout_s:g} s ({self.batcher.depth} inputs are waiting); "
                "the server is overloaded or the model is slow: retry later, or start it with a larger --timeout-s"
            ) from None

    async def reading(self, coro: Any) -> Any:
        """Read a request body under the time limit (408 past it: a stalled or very slow client)."""
        try:
            return await asyncio.wait_for(coro, self.config.timeout_s)
        except asyncio.TimeoutError:
            raise HTTPError(
                f"the request body did not arrive within {self.config.timeout_s:g} s; "
                "send the whole body (check Content-Length), or start the server with a larger --timeout-s",
                status=408,
                kind="BodyTimeout",
            ) from None

    def rehead(
        self, preds: Sequence[Prediction], *, temperature: float | None = None, top_k: int | None = None
    ) -> list[Prediction]:
        return rehead(self.clf, preds, temperature=temperature, top_k=top_k)


def rehead(
    clf: Classifier, preds: Sequence[Prediction], *, temperature: float | None = None, top_k: int | None = None
) -> list[Prediction]:
    """The same predictions at another temperature or top-k, from their logits.

    A copy of the classifier's head with those settings (``Head.replace``) is run
    on the stored logits (``Head.rerun``), so concurrent requests never see each
    other's settings and the shared head is never changed.
    """
    base = clf.head
    changes = {
        k: v for k, v in (("temperature", temperature), ("top_k", top_k)) if v is not None and v != getattr(base, k)
    }
    if not changes:
        return list(preds)
    return base.replace(**changes).rerun(preds, num_outputs=clf.backend.info.num_outputs)
