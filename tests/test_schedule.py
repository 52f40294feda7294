"""The runner's two schedules: on the CPU decoding and the model take turns; on an accelerator they overlap."""

import dataclasses
import threading
import time

import numpy as np
import pytest

import twoends
from twoends.backends.base import Backend, ModelInfo
from twoends.preprocess import ImagePlan
from twoends.runner import prepared_batches


class _Watching(Backend):
    """A model that records, during each forward pass, how many inputs were being prepared."""

    def __init__(self, device: str):
        self.device = device
        self.info = ModelInfo(name="watching", labels=("a", "b"), num_outputs=2, activation="softmax")
        self.busy = 0  # inputs being prepared right now
        self.lock = threading.Lock()
        self.seen_during_forward: list[int] = []

    def forward(self, batch):
        for _ in range(5):  # look a few times while "computing"
            with self.lock:
                self.seen_during_forward.append(self.busy)
            time.sleep(0.004)
        return np.stack([batch.mean(axis=(1, 2, 3)), -batch.mean(axis=(1, 2, 3))], axis=1)


def _classifier(device: str):
    backend = _Watching(device)
    spec = twoends.ImageSpec(input_size=(8, 8), resize_mode="exact", crop="none")
    clf = twoends.Classifier(backend, spec=spec, batch_size=4, workers=2)

    class WatchedPlan(ImagePlan):
        def prepare(self, item):
            with backend.lock:
                backend.busy += 1
            try:
                time.sleep(0.004)  # decoding takes a while
                return super().prepare(item)
            finally:
                with backend.lock:
                    backend.busy -= 1

    # the plan is the one step that prepares inputs: watch it
    clf.settled = dataclasses.replace(clf.settled, plan=WatchedPlan(spec))
    return clf, backend


def _images(n):
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (12, 12, 3), dtype=np.uint8) for _ in range(n)]


def test_on_the_cpu_nothing_decodes_while_the_model_runs():
    clf, backend = _classifier("cpu")
    images = _images(18)
    preds = list(clf.predict_iter(images))
    assert len(preds) == 18 and all(p.ok for p in preds)
    assert backend.seen_during_forward and max(backend.seen_during_forward) == 0


def test_on_an_accelerator_decoding_overlaps_the_model():
    clf, backend = _classifier("cuda:0")  # a pretend accelerator: only the schedule differs
    preds = list(clf.predict_iter(_images(18)))
    assert len(preds) == 18 and all(p.ok for p in preds)
    assert max(backend.seen_during_forward) > 0  # the next inputs were being prepared meanwhile


@pytest.mark.parametrize("overlap", [False, True])
@pytest.mark.parametrize("n, size, workers", [(0, 4, 2), (1, 4, 2), (7, 3, 2), (12, 4, 3), (5, 8, 1)])
def test_both_schedules_keep_order_and_give_every_input_once(overlap, n, size, workers):
    class Item:
        def __init__(self, i):
            self.id = str(i)

    def prepare(item):
        if int(item.id) % 5 == 3:
            raise ValueError(f"bad {item.id}")
        return int(item.id) * 10

    groups = list(prepared_batches((Item(i) for i in range(n)), prepare, workers=workers, size=size, overlap=overlap))
    flat = [p for g in groups for p in g]
    assert [p.id for p in flat] == [str(i) for i in range(n)]
    assert all(len(g) == size for g in groups[:-1]) and all(0 < len(g) <= size for g in groups)
    for p in flat:
        if int(p.id) % 5 == 3:
            assert p.value is None and isinstance(p.error, ValueError)
        else:
            assert p.value == int(p.id) * 10 and p.error is None
