"""Prometheus metrics in the text exposition format (version 0.0.4), written by hand.

Three kinds are enough for a server: counters, gauges and histograms. They are
updated from the event loop and from the model thread, so every update takes
one lock; rendering takes it too and sees a consistent snapshot.
"""

from __future__ import annotations

import math
import threading
from typing import Callable, Iterable, Sequence

from ..errors import ConfigError

__all__ = ["CONTENT_TYPE", "Counter", "Gauge", "Histogram", "Registry", "ServerMetrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


def _escape(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _number(x: float) -> str:
    x = float(x)
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    if math.isnan(x):
        return "NaN"
    return str(int(x)) if x.is_integer() and abs(x) < 1e15 else repr(x)


class _Metric:
    kind = "untyped"

    def __init__(self, name: str, help: str, labels: Sequence[str] = ()):
        self.name, self.help, self.label_names = name, help, tuple(labels)
        self._lock = threading.Lock()

    def _key(self, labels: dict[str, str] | None) -> tuple[str, ...]:
        labels = labels or {}
        if set(labels) != set(self.label_names):
            raise ConfigError(f"{self.name} takes labels {self.label_names}, got {sorted(labels)}")
        return tuple(str(labels[n]) for n in self.label_names)

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]


class Counter(_Metric):
    """A value that only goes up (requests served). Its name ends in ``_total``."""

    kind = "counter"

    def __init__(self, name: str, help: str, labels: Sequence[str] = ()):
        super().__init__(name, help, labels)
        self._values: dict[tuple[str, ...], float] = {}

    def inc(self, labels: dict[str, str] | None = None, amount: float = 1.0) -> None:
        if amount < 0:
            raise ConfigError(f"a counter only goes up: {self.name} got an increment of {amount}")
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, labels: dict[str, str] | None = None) -> float:
        with self._lock:
            return self._values.get(self._key(labels), 0.0)

    def render(self) -> list[str]:
        with self._lock:
            items = sorted(self._values.items())
        return self.header() + [f"{self.name}{_labels(self.label_names, k)} {_number(v)}" for k, v in items]


class Gauge(_Metric):
    """A value that goes up and down; or, with ``read``, a value read when rendered (queue depth)."""

    kind = "gauge"

    def __init__(self, name: str, help: str, read: Callable[[], float] | None = None):
        super().__init__(name, help)
        self._value, self._read = 0.0, read

    def set(self, value: float) -> None:
        with self._lock:
            self._value = float(value)

    def value(self) -> float:
        return float(self._read()) if self._read is not None else self._value

    def render(self) -> list[str]:
        return self.header() + [f"{self.name} {_number(self.value())}"]


class Histogram(_Metric):
    """Counts of observations at or under each bucket's upper bound (cumulative), their sum and count."""

    kind = "histogram"

    def __init__(self, name: str, help: str, buckets: Iterable[float], labels: Sequence[str] = ()):
        super().__init__(name, help, labels)
        self.buckets = tuple(sorted(float(b) for b in buckets)) + (math.inf,)
        self._series: dict[tuple[str, ...], list] = {}  # key -> [counts per bucket, sum]

    def observe(self, value: float, labels: dict[str, str] | None = None) -> None:
        key = self._key(labels)
        with self._lock:
            counts, _ = series = self._series.setdefault(key, [[0] * len(self.buckets), 0.0])
            for i, upper in enumerate(self.buckets):
                if value <= upper:
                    counts[i] += 1  # the one bucket it falls in; rendering accumulates
                    break
            series[1] += value

    def count(self, labels: dict[str, str] | None = None) -> int:
        with self._lock:
            series = self._series.get(self._key(labels))
            return sum(series[0]) if series else 0

    def render(self) -> list[str]:
        with self._lock:
            items = sorted((k, (list(c), s)) for k, (c, s) in self._series.items())
        lines = self.header()
        for key, (counts, total) in items:
            running = 0
            for upper, n in zip(self.buckets, counts):
                running += n
                le = 'le="' + ("+Inf" if math.isinf(upper) else repr(upper)) + '"'  # canonical: 1.0, not 1
                lines.append(f"{self.name}_bucket{_labels(self.label_names, key, le)} {running}")
            lines.append(f"{self.name}_sum{_labels(self.label_names, key)} {_number(total)}")
            lines.append(f"{self.name}_count{_labels(self.label_names, key)} {running}")
        return lines


class Registry:
    def __init__(self, metrics: Iterable[_Metric] = ()):
        self.metrics = list(metrics)

    def render(self) -> str:
        return "\n".join(line for m in self.metrics for line in m.render()) + "\n"


class ServerMetrics(Registry):
    """The server's metrics. ``queue_depth`` reads the batcher's queue when scraped."""

    def __init__(self, queue_depth: Callable[[], float] = lambda: 0):
        self.requests = Counter(
            "twoends_requests_total",
            "HTTP requests answered, by route, method and status code.",
            ("route", "method", "status"),
        )
        self.latency = Histogram(
            "twoends_request_duration_seconds",
            "Time from request to response, by route.",
            LATENCY_BUCKETS,
            ("route",),
        )
        self.batch_size = Histogram("twoends_batch_size", "Inputs per model forward pass.", BATCH_BUCKETS)
        self.batch_seconds = Histogram(
            "twoends_batch_duration_seconds", "Time of one model forward pass and head, per batch.", LATENCY_BUCKETS
        )
        self.queue_depth = Gauge("twoends_queue_depth", "Inputs waiting for a batch.", read=queue_depth)
        self.inputs = Counter(
            "twoends_inputs_total", "Inputs run through the model, by outcome (ok or error).", ("outcome",)
        )
        super().__init__(
            [self.requests, self.latency, self.batch_size, self.batch_seconds, self.queue_depth, self.inputs]
        )
