"""The dynamic batcher on its own: gathering, limits, failures, cancellation, shutdown.

The batch function is a plain Python function (the batcher knows nothing of
models); events, not sleeps, decide when a batch may finish, so the tests do
not depend on the machine's speed.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

pytest.importorskip("starlette")

from twoends.errors import ConfigError, ModelError  # noqa: E402
from twoends.serve.batcher import DynamicBatcher  # noqa: E402
from twoends.serve.errors import Overloaded, ServerStopping  # noqa: E402


class Recorder:
    """A batch function that records its batches and can be held until released."""

    def __init__(self, hold: bool = False):
        self.batches: list[list] = []
        self.release = threading.Event()
        self.started = threading.Event()
        if not hold:
            self.release.set()

    def __call__(self, items):
        self.batches.append(list(items))
        self.started.set()
        assert self.release.wait(10), "the test never released the batch"
        return [f"result of {x}" for x in items]


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


async def _started(batcher):
    await batcher.start()
    return batcher


def test_concurrent_inputs_share_a_batch_and_each_gets_its_own_result():
    rec = Recorder()

    async def main():
        b = await _started(DynamicBatcher(rec, max_batch_size=8, max_delay_s=5.0))
        futures = [b.submit(i) for i in range(8)]  # all queued before the collector looks
        results = await asyncio.gather(*futures)
        await b.stop()
        return results

    assert run(main()) == [f"result of {i}" for i in range(8)]
    assert rec.batches == [list(range(8))]  # one forward pass, a full batch: no waiting for the delay


def test_batches_never_exceed_max_batch_size():
    rec = Recorder()

    async def main():
        b = await _started(DynamicBatcher(rec, max_batch_size=3, max_delay_s=0.0))
        results = await asyncio.gather(*(b.submit(i) for i in range(10)))
        await b.stop()
        return results

    assert run(main()) == [f"result of {i}" for i in range(10)]
    assert [len(x) for x in rec.batches] == [3, 3, 3, 1]
    assert [x for batch in rec.batches for x in batch] == list(range(10))  # in arrival order


def test_batch_size_one_turns_batching_off():
    rec = Recorder()

    async def main():
        b = await _started(DynamicBatcher(rec, max_batch_size=1, max_delay_s=1.0))
        await asyncio.gather(*(b.submit(i) for i in range(5)))
        await b.stop()

    run(main())
    assert rec.batches == [[0], [1], [2], [3], [4]]


def test_inputs_that_arrive_while_the_model_is_busy_form_the_next_batch():
    rec = Recorder(hold=True)

    async def main():
        b = await _started(DynamicBatcher(rec, max_batch_size=8, max_delay_s=0.0))
        first = b.submit("a")
        await asyncio.get_running_loop().run_in_executor(None, rec.started.wait, 10)  # batch ["a"] is running
        rest = [b.submit(x) for x in "bcde"]
        assert b.depth == 4
        rec.release.set()
        out = await asyncio.gather(first, *rest)
        await b.stop()
        return out

    assert run(main()) == [f"result of {x}" for x in "abcde"]
    assert rec.batches == [["a"], ["b", "c", "d", "e"]]


def test_a_lone_input_waits_for_company_at_most_the_delay():
    rec = Recorder()

    async def main():
        b = await _started(DynamicBatcher(rec, max_batch_size=8, max_delay_s=0.05))
        one = await b.submit("alone")
        late = b.submit("x"), b.submit("y")  # these two arrive together and leave together
        two = await asyncio.gather(*late)
        await b.stop()
        return one, two

    assert run(main()) == ("result of alone", ["result of x", "result of y"])
    assert rec.batches == [["alone"], ["x", "y"]]


def test_a_failing_batch_fails_its_callers_only():
    calls = []

    def flaky(items):
        calls.append(list(items))
        if "bad" in items:
            raise RuntimeError("the model fell over")
        return [x.upper() for x in items]

    async def main():
        b = await _started(DynamicBatcher(flaky, max_batch_size=2, max_delay_s=0.0))
        failed = await asyncio.gather(b.submit("bad"), b.submit("same batch"), return_exceptions=True)
        ok = await b.submit("next")
        await b.stop()
        return failed, ok

    failed, ok = run(main())
    assert all(isinstance(e, RuntimeError) and "fell over" in str(e) for e in failed)
    assert ok == "NEXT"


def test_a_wrong_number_of_results_is_an_error_not_a_mixup():
    async def main():
        b = await _started(DynamicBatcher(lambda items: items[:1], max_batch_size=2, max_delay_s=0.0))
        out = await asyncio.gather(b.submit(1), b.submit(2), return_exceptions=True)
        await b.stop()
        return out

    out = run(main())
    assert all(isinstance(e, ModelError) and "2 inputs" in str(e) for e in out)


def test_cancelled_inputs_are_not_run():
    rec = Recorder(hold=True)

    async def main():
        b = await _started(DynamicBatcher(rec, max_batch_size=8, max_delay_s=0.0))
        first = b.submit("running")
        await asyncio.get_running_loop().run_in_executor(None, rec.started.wait, 10)
        gone, kept = b.submit("timed out"), b.submit("kept")
        gone.cancel()  # what a request timeout does
        rec.release.set()
        out = await asyncio.gather(first, kept)
        await b.stop()
        return out

    assert run(main()) == ["result of running", "result of kept"]
    assert rec.batches == [["running"], ["kept"]]


def test_a_full_queue_refuses_at_once():
    rec = Recorder(hold=True)

    async def main():
        b = await _started(DynamicBatcher(rec, max_batch_size=1, max_delay_s=0.0, max_queue=2))
        running = b.submit(0)
        await asyncio.get_running_loop().run_in_executor(None, rec.started.wait, 10)
        waiting = [b.submit(1), b.submit(2)]
        with pytest.raises(Overloaded) as info:
            b.submit(3)
        rec.release.set()
        out = await asyncio.gather(running, *waiting)
        await b.stop()
        return out, info.value

    out, error = run(main())
    assert out == ["result of 0", "result of 1", "result of 2"]
    assert error.status_code == 503 and "limit is 2" in str(error) and error.headers["Retry-After"] == "1"


def test_stop_fails_waiting_inputs_and_refuses_new_ones():
    rec = Recorder(hold=True)

    async def main():
        b = await _started(DynamicBatcher(rec, max_batch_size=1, max_delay_s=0.0))
        running = b.submit("running")
        await asyncio.get_running_loop().run_in_executor(None, rec.started.wait, 10)
        waiting = b.submit("waiting")
        stopping = asyncio.create_task(b.stop())
        await asyncio.sleep(0)
        rec.release.set()  # the running batch finishes; stop waits for it
        await stopping
        with pytest.raises(ServerStopping):
            b.submit("late")
        return await asyncio.gather(running, waiting, return_exceptions=True)

    running, waiting = run(main())
    assert isinstance(waiting, ServerStopping) and waiting.status_code == 503


@pytest.mark.parametrize(
    "kwargs", [{"max_batch_size": 0}, {"max_batch_size": 2.5}, {"max_delay_s": -1}, {"max_queue": 0}]
)
def test_bad_settings(kwargs):
    with pytest.raises(ConfigError):
        DynamicBatcher(lambda x: x, **kwargs)
