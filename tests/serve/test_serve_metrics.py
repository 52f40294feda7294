"""The hand-written Prometheus text format, read back by the reference parser (prometheus_client)."""

from __future__ import annotations

import math

import pytest

from twoends.serve.metrics import Counter, Gauge, Histogram, Registry, ServerMetrics

parser = pytest.importorskip("prometheus_client.parser")


def _parse(text: str) -> dict:
    return {f.name: f for f in parser.text_string_to_metric_families(text)}


def test_counter_gauge_histogram_round_trip():
    c = Counter("demo_requests_total", "Requests.", ("route", "status"))
    c.inc({"route": "/a", "status": "200"})
    c.inc({"route": "/a", "status": "200"}, 2)
    c.inc({"route": '/we"ird\\path\n', "status": "404"})
    g = Gauge("demo_depth", "Depth.", read=lambda: 7)
    h = Histogram("demo_seconds", "Latency.", (0.1, 1.0), ("route",))
    for v in (0.05, 0.1, 0.5, 3.0):
        h.observe(v, {"route": "/a"})

    families = _parse(Registry([c, g, h]).render())
    counter = families["demo_requests"]  # the parser drops the _total suffix from the family name
    assert counter.type == "counter" and counter.documentation == "Requests."
    values = {(s.labels["route"], s.labels["status"]): s.value for s in counter.samples if s.name.endswith("_total")}
    assert values == {("/a", "200"): 3.0, ('/we"ird\\path\n', "404"): 1.0}  # escaping survives
    assert [s.value for s in families["demo_depth"].samples] == [7.0]
    hist = families["demo_seconds"]
    assert hist.type == "histogram"
    got = {s.name + s.labels.get("le", ""): s.value for s in hist.samples}
    # cumulative buckets: le is "at or under"
    assert got == {
        "demo_seconds_bucket0.1": 2.0,
        "demo_seconds_bucket1.0": 3.0,
        "demo_seconds_bucket+Inf": 4.0,
        "demo_seconds_count": 4.0,
        "demo_seconds_sum": pytest.approx(3.65),
    }


def test_server_metrics_render_and_parse_when_empty_and_used():
    depth = {"n": 0}
    m = ServerMetrics(queue_depth=lambda: depth["n"])
    assert "twoends_queue_depth" in _parse(m.render())
    m.requests.inc({"route": "/v1/predict", "method": "POST", "status": "200"})
    m.latency.observe(0.02, {"route": "/v1/predict"})
    m.batch_size.observe(8)
    m.batch_size.observe(1)
    depth["n"] = 5
    families = _parse(m.render())
    assert families["twoends_queue_depth"].samples[0].value == 5
    buckets = {s.labels["le"]: s.value for s in families["twoends_batch_size"].samples if s.name.endswith("_bucket")}
    assert buckets["1.0"] == 1 and buckets["4.0"] == 1 and buckets["8.0"] == 2 and buckets["+Inf"] == 2
    assert m.batch_size.count() == 2


def test_label_and_value_checks():
    c = Counter("x_total", "X.", ("a",))
    with pytest.raises(ValueError):
        c.inc({"b": "1"})
    with pytest.raises(ValueError):
        c.inc({"a": "1"}, -1)
    h = Histogram("h", "H.", (1.0,))
    h.observe(math.inf)
    assert _parse(Registry([h]).render())["h"].samples[-1].value == 1  # count
