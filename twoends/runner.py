"""The streaming runner: inputs in, Predictions out, in order, with bounded memory.

Decoding and preprocessing run in a pool of threads (Pillow releases the GIL
while it decodes and resizes, and the model's forward pass releases it too).
Two schedules, chosen by where the model runs:

* ``overlap`` (the model is on an accelerator): the pool prepares the next
  inputs while the caller's thread runs the model on this batch; at most
  ``window`` inputs are in flight.
* ``phased`` (the model is on the CPU): the pool prepares one batch with every
  worker, then the model runs it with every core, then the next batch. The
  forward pass's OpenMP threads and the decoding threads would otherwise fight
  for the same cores, and a forward thread that is descheduled holds up all the
  others at the next barrier; taking turns keeps both at full speed
  (bench/RESULTS.md has the measurements).

Either way memory is bounded whatever the number of inputs, and results come
out in input order.
"""

from __future__ import annotations

import functools
import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Iterable, Iterator, Sequence

__all__ = ["Prepared", "default_workers", "prepare_stream", "batches", "prepared_batches"]


class Prepared:
    """One input after preprocessing: its id and either a model input or the error it raised."""

    __slots__ = ("id", "value", "error")

    def __init__(self, id: str, value: Any = None, error: BaseException | None = None):
        self.id, self.value, self.error = id, value, error


def default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def _safe(prepare: Callable[[Any], Any], item: Any) -> Prepared:
    try:
        return Prepared(item.id, prepare(item))
    except Exception as exc:  # one bad input becomes one error row; the run goes on
        return Prepared(item.id, error=exc)


def prepare_stream(
    items: Iterable[Any], prepare: Callable[[Any], Any], *, workers: int, window: int
) -> Iterator[Prepared]:
    """``prepare(item)`` for every item, ``workers`` at a time, yielded in input order."""
    if workers <= 1:
        for item in items:
            yield _safe(prepare, item)
        return
    pending: deque[Future] = deque()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="twoends-prep") as pool:
        for item in items:
            pending.append(pool.submit(_safe, prepare, item))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def batches(stream: Iterable[Any], size: int) -> Iterator[Sequence[Any]]:
    """Group a stream into lists of ``size`` (the last one may be shorter)."""
    batch: list[Prepared] = []
    for p in stream:
        batch.append(p)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def prepared_batches(
    items: Iterable[Any], prepare: Callable[[Any], Any], *, workers: int, size: int, overlap: bool
) -> Iterator[list[Prepared]]:
    """Batches of ``size`` prepared inputs, in input order, on the schedule the module docstring describes."""
    if overlap or workers <= 1:
        yield from batches(prepare_stream(items, prepare, workers=workers, window=2 * size + workers), size)
        return
    safe = functools.partial(_safe, prepare)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="twoends-prep") as pool:
        for chunk in batches(items, size):
            # the generator is suspended while the caller runs the model: nothing decodes then
            yield list(pool.map(safe, chunk))
