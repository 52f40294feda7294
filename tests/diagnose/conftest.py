"""Real pipelines for the doctor: EfficientNet-Lite0 on real photos, and a small trained multi-label model."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")
pytest.importorskip("efficientnet_lite_pytorch", reason="pip install --no-deps efficientnet-lite-pytorch")
pytest.importorskip("skimage")

from tests.photos import PHOTO_NAMES, load_photo


@pytest.fixture(scope="session")
def photos() -> dict[str, Image.Image]:
    return {n: load_photo(n) for n in PHOTO_NAMES}


@pytest.fixture(scope="session")
def photo_files(photos, tmp_path_factory):
    root = tmp_path_factory.mktemp("doctor_photos")
    paths = []
    for name, im in photos.items():
        path = root / f"{name}.jpg"
        im.save(path, quality=92)
        paths.append(path)
    return paths


@pytest.fixture(scope="session")
def lite0():
    import twoends

    return twoends.load("efficientnet_lite0", device="cpu")


@pytest.fixture(scope="session")
def batch(lite0, photos) -> np.ndarray:
    """The correct Lite0 batch: the model's own spec applied to every photo."""
    return np.stack([lite0.plan(im) for im in photos.values()])


@pytest.fixture(scope="session")
def logits(lite0, batch) -> np.ndarray:
    with torch.no_grad():
        return lite0.backend.module(torch.from_numpy(batch)).double().numpy()


# ------------------------------------------------------------- a small multi-label model

COLOURS = ((220, 30, 30), (30, 200, 40), (30, 60, 220))  # red, green, blue squares
ML_LABELS = ["red square", "green square", "blue square"]


def squares(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images 32x32 on a grey-noise background with 0-3 coloured squares; multi-hot targets."""
    rng = np.random.default_rng(seed)
    images = rng.integers(90, 160, size=(n, 32, 32, 3)).astype(np.uint8)
    targets = (rng.random((n, 3)) < 0.45).astype(np.float32)
    for i in range(n):
        for c in np.flatnonzero(targets[i]):
            y, x = rng.integers(0, 22, size=2)
            images[i, y : y + 10, x : x + 10] = COLOURS[c]
    return images, targets


def normalise(images: np.ndarray) -> np.ndarray:
    """The multi-label model's spec: (p / 255 - 0.5) / 0.5, NCHW."""
    return ((images.astype(np.float32) / 255 - 0.5) / 0.5).transpose(0, 3, 1, 2).copy()


@pytest.fixture(scope="session")
def multilabel():
    """(module in eval mode, spec): a conv + batch-norm + dropout net trained with BCE to find the squares."""
    from twoends import ImageSpec

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1),
        torch.nn.BatchNorm2d(8),
        torch.nn.ReLU(),
        torch.nn.AdaptiveMaxPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Dropout(0.3),
        torch.nn.Linear(8, 3),
    )
    images, targets = squares(512, seed=1)
    x, y = torch.from_numpy(normalise(images)), torch.from_numpy(targets)
    opt = torch.optim.Adam(net.parameters(), lr=0.02)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny ops: one thread is ~10x faster than fighting over busy cores
    try:
        for _ in range(100):
            idx = torch.randint(0, len(x), (64,))
            loss = torch.nn.functional.binary_cross_entropy_with_logits(net(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    net.eval()
    spec = ImageSpec(input_size=(32, 32), resize_mode="exact", crop="none", mean=(0.5,) * 3, std=(0.5,) * 3)
    return net, spec


@pytest.fixture(scope="session")
def ml_batch():
    """make(n, seed) -> (normalised NCHW tensor, multi-hot targets) for the multi-label model."""

    def make(n: int, seed: int):
        images, targets = squares(n, seed)
        return torch.from_numpy(normalise(images)), targets

    return make
