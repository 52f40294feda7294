"""Small hostile requests against a real ``twoends serve``: each refused quickly, nothing takes the server down.

Loopback only, bounded (every client stops by itself; every socket has a
timeout), with ``/v2/health/live`` polled all along: it must answer within
1 s throughout, the server's peak RSS may grow by at most ``RSS_BOUND_MB``
over its warmed-up size, and it must be alive at the end. The shutdown
attack runs against a server of its own. ``bench/attacks.py`` runs the same
attacks and prints the figures for bench/RESULTS.md.
"""

from __future__ import annotations

import pytest

from tests.serve import attacks
from tests.serve.helpers import free_port, start_server, stop_server

pytestmark = pytest.mark.slow
RSS_BOUND_MB = 400  # peak RSS over the warmed-up size (measured 71-179 MB): 4 clients x 20 MB bodies and their parses


@pytest.fixture(scope="module")
def target(tmp_path_factory, sample_photos):
    port = free_port()
    log = tmp_path_factory.mktemp("attack-log") / "server.log"
    proc = start_server(attacks.SERVER_ARGS, port, log)
    target = attacks.Target(port, proc.pid, sample_photos["chelsea"].read_bytes())
    target.warm_up()
    with attacks.HealthWatch(port) as health:
        target.health = health
        yield target
    assert proc.poll() is None, f"the server died:\n{log.read_text(errors='replace')[-3000:]}"
    stop_server(proc)


def _slow_health(target) -> None:
    worst = target.health.worst()
    assert target.health.failures == [], target.health.failures[:5]
    assert worst < 1.0, f"/v2/health/live took {worst:.2f} s"


def test_bytes_batch_amplification_is_refused_from_the_shape(target):
    for result in (attacks.gif_batch_json(target.port, 8000), attacks.gif_batch_binary(target.port, 8000)):
        assert result.status == 413 and "limit per request is 64" in result.error, result
        assert result.seconds < 1.0, result
    _slow_health(target)


def test_20mb_tensor_bodies_from_several_clients(target):
    results = attacks.big_bodies(target.port, clients=4, rounds=2)
    for result in results:
        # 10M elements: refused by their comma count, unparsed; long numbers: parsed off the loop, wrong count
        assert (result.status, result.kind) in {(413, "PayloadTooLarge"), (400, "BadRequest")}, result
        assert result.seconds < 20, result
    assert {r.status for r in results} == {400, 413}
    _slow_health(target)


def test_slow_and_half_open_headers_are_dropped(target):
    outcome = attacks.slow_headers(target.port, connections=40, header_timeout_s=attacks.HEADER_TIMEOUT_S)
    assert outcome.dropped == outcome.connections, outcome  # every one closed by the server
    assert outcome.longest_s < attacks.HEADER_TIMEOUT_S + 3, outcome
    _slow_health(target)


# A ~100-byte PNG one pixel thin: its shorter-side resize would make 256 x 5.1M pixels; the library's
# input end refuses it from the resize geometry (twoends.ImageTooLargeError), the server says 413.
@pytest.mark.parametrize("size", [(20000, 1), (1, 20000)])
def test_aspect_ratio_slivers_are_413(target, size):
    result = attacks.sliver(target.port, size)
    assert result.status == 413 and result.kind in ("ImageTooLargeError", "PayloadTooLarge"), result
    assert "resiz" in result.error and result.seconds < 2, result
    _slow_health(target)


def test_rss_stays_bounded_and_the_server_answers(target):
    grown = target.peak_rss_mb() - target.baseline_rss_mb
    assert grown < RSS_BOUND_MB, f"peak RSS grew {grown:.0f} MB (bound {RSS_BOUND_MB} MB)"
    assert target.predicts_a_cat()
    _slow_health(target)


def test_shutdown_under_load_answers_json(tmp_path, sample_photos):
    port = free_port()
    proc = start_server(attacks.SERVER_ARGS, port, tmp_path / "server.log")
    try:
        outcome = attacks.shutdown_under_load(port, proc, sample_photos["coffee"].read_bytes())
    finally:
        stop_server(proc)
    assert outcome.plain_text == [], outcome.plain_text[:3]  # never a plain-text 500
    assert outcome.answered > 0 and outcome.statuses <= {200, 503}, outcome  # answered, or told to retry
    assert outcome.held_answer == (503, "Unavailable"), outcome  # cut past the grace period: the JSON error
    assert outcome.exit_code == 0 and outcome.exit_s < 15, outcome
