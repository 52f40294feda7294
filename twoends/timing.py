"""PhaseTimes: where a run's time goes - decode, preprocess, forward, postprocess - measured in the run itself.

``twoends bench`` passes one to ``Classifier.predict_iter`` so that it times the
real runner (its threads, its schedule, per-batch processors, text tokenizing)
instead of a hand-made copy of the pipeline. Times are summed over threads.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager, nullcontext
from typing import Any, ContextManager, Iterator

__all__ = ["PHASES", "PhaseTimes", "timed"]

PHASES = ("decode", "preprocess", "forward", "postprocess")


class PhaseTimes:
    """Seconds per phase (thread-safe); ``inputs`` counts the inputs that went through."""

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(PHASES, 0.0)
        self._lock = threading.Lock()

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - start
            with self._lock:
                self.seconds[name] += elapsed


def timed(timings: Any, name: str) -> ContextManager[None]:
    """``timings.phase(name)``, or nothing when no one is timing (the usual case)."""
    return nullcontext() if timings is None else timings.phase(name)
