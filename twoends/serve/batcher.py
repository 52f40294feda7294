"""Dynamic batching: concurrent requests share one forward pass.

Requests put their input in a queue and wait on a future. One collector task
takes the oldest input, then gathers more until the batch holds
``max_batch_size`` inputs or ``max_delay_s`` has passed since the oldest one
arrived (as Triton's ``max_queue_delay``: an input that already waited while
the model was busy does not wait again). The batch runs in one model thread,
off the event loop, and each future gets its own result.

While a batch runs, new inputs pile up in the queue, so under load batches
fill up by themselves and the delay costs nothing; when idle, a lone request
waits at most ``max_delay_s``.

The queue is a deque plus an event rather than ``asyncio.Queue``: a
``wait_for(queue.get(), t)`` that times out as an item arrives can lose that
item on some Python versions; here waiting never takes anything out.
"""

from __future__ import annotations

import asyncio
import collections
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Sequence

from ..errors import ConfigError, ModelError
from .errors import Overloaded, ServerStopping

__all__ = ["DynamicBatcher"]


class _Entry:
    __slots__ = ("item", "future", "arrived")

    def __init__(self, item: Any, future: asyncio.Future, arrived: float):
        self.item, self.future, self.arrived = item, future, arrived


class DynamicBatcher:
    """Gather inputs from concurrent callers into batches for ``run(list) -> list``.

    ``run`` gets a list of inputs and returns one result per input, in order;
    it runs in a single worker thread (one batch at a time). If it raises,
    every caller of that batch gets the exception. ``max_queue`` bounds the
    inputs waiting: past it, ``submit`` raises ``Overloaded`` at once rather
    than letting latency grow without bound.
    ``on_batch(size, seconds)`` is called after each batch (for metrics).
    """

    def __init__(
        self,
        run: Callable[[list], Sequence],
        *,
        max_batch_size: int = 8,
        max_delay_s: float = 0.005,
        max_queue: int = 256,
        on_batch: Callable[[int, float], None] | None = None,
    ):
        if isinstance(max_batch_size, bool) or not isinstance(max_batch_size, int) or max_batch_size < 1:
            raise ConfigError(f"max_batch_size must be a whole number >= 1, got {max_batch_size!r}")
        if not max_delay_s >= 0:
            raise ConfigError(f"max_delay_s must be >= 0 seconds, got {max_delay_s!r}")
        if isinstance(max_queue, bool) or not isinstance(max_queue, int) or max_queue < 1:
            raise ConfigError(f"max_queue must be a whole number >= 1, got {max_queue!r}")
        self.run = run
        self.max_batch_size = max_batch_size
        self.max_delay_s = float(max_delay_s)
        self.max_queue = max_queue
        self.on_batch = on_batch
        self._pending: collections.deque[_Entry] = collections.deque()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._closing = False

    # --- lifecycle ----------------------------------------------------------------

    async def start(self) -> None:
        if self._task is not None:
            return
        self._wake = asyncio.Event()
        self._closing = False
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="twoends-model")
        self._task = asyncio.get_running_loop().create_task(self._collect(), name="twoends-batcher")

    async def stop(self) -> None:
        """Stop: the running batch finishes and is answered; inputs still waiting get ``ServerStopping``."""
        task, self._task = self._task, None  # from here on, submit refuses
        if task is not None:
            self._closing = True
            self._wake.set()
            await task
        while self._pending:
            entry = self._pending.popleft()
            if not entry.future.done():
                entry.future.set_exception(ServerStopping("the server is shutting down; retry on another replica"))
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def depth(self) -> int:
        """Inputs waiting for a batch (not counting the batch that is running)."""
        return len(self._pending)

    # --- callers ------------------------------------------------------------------

    def submit(self, item: Any) -> asyncio.Future:
        """Queue one input; the returned future resolves to its result.

        Cancelling the future (e.g. a request timeout) drops the input if its
        batch has not started.
        """
        if not self.running:
            raise ServerStopping("the model worker is not running (the server is starting or stopping)")
        if len(self._pending) >= self.max_queue:
            raise Overloaded(
                f"{len(self._pending)} inputs are already waiting (the limit is {self.max_queue}); "
                "retry shortly, or run more replicas"
            )
        future = asyncio.get_running_loop().create_future()
        self._pending.append(_Entry(item, future, time.monotonic()))
        self._wake.set()
        return future

    # --- the collector ------------------------------------------------------------

    async def _collect(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._closing:
            batch = await self._gather()
            if not batch:
                continue
            started = time.perf_counter()
            try:
                results = await loop.run_in_executor(self._executor, self.run, [e.item for e in batch])
                if len(results) != len(batch):
                    raise ModelError(f"the batch function returned {len(results)} results for {len(batch)} inputs")
            except Exception as exc:  # every caller of this batch learns why; the server goes on
                for e in batch:
                    if not e.future.done():
                        e.future.set_exception(exc)
            else:
                for e, result in zip(batch, results):
                    if not e.future.done():  # its caller may have timed out meanwhile
                        e.future.set_result(result)
            if self.on_batch is not None:
                self.on_batch(len(batch), time.perf_counter() - started)

    async def _gather(self) -> list[_Entry]:
        """The next batch: the oldest live input and those after it, up to the size or the delay."""
        batch: list[_Entry] = []
        while not batch:
            while not self._pending:
                if self._closing:
                    return []
                self._wake.clear()
                await self._wake.wait()
            self._take(batch)
        deadline = batch[0].arrived + self.max_delay_s
        while len(batch) < self.max_batch_size and not self._closing:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), remaining)
            except asyncio.TimeoutError:
                pass
            self._take(batch)
        return batch

    def _take(self, batch: list[_Entry]) -> None:
        while self._pending and len(batch) < self.max_batch_size:
            entry = self._pending.popleft()
            if not entry.future.done():  # skip inputs whose caller gave up
                batch.append(entry)
