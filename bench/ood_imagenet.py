"""Out-of-distribution figures for the bundled ImageNet model: real photos vs textures, documents and noise.

    python bench/ood_imagenet.py [--model efficientnet_lite0]

In-distribution: real photos of ImageNet-like subjects (scikit-image's chelsea, coffee,
astronaut, rocket, motorcycle, camera, clock, and matplotlib's grace_hopper), each as
itself and as four corner crops (40 images). Out-of-distribution: textures (brick, grass,
gravel, with four crops each), documents (page, text), microscopy and space (cells,
retina, immunohistochemistry, Hubble deep field, moon), coins, synthetic images
(checkerboard, blobs, colour wheel, a logo), and noise (uniform, Gaussian,
salt-and-pepper): 42 images. Everything ships with scikit-image and matplotlib. Prints AUROC and FPR at 95% TPR for each
score, and the fraction of each side over a threshold fitted at 95% TPR on the photos
themselves (optimistic: fitted and measured on the same images, as a figure of the
separation, not a calibrated threshold - fit one on your own data with `twoends calibrate --ood`).
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

IN = ("chelsea", "coffee", "astronaut", "rocket", "stereo_motorcycle", "camera", "clock", "grace_hopper")
TEXTURES = ("brick", "grass", "gravel")
OTHER = (
    "page",
    "text",
    "cell",
    "retina",
    "immunohistochemistry",
    "hubble_deep_field",
    "moon",
    "coins",
    "checkerboard",
    "binary_blobs",
    "colorwheel",
    "logo",
)


def _skimage(name: str) -> Image.Image:
    from skimage import data

    img = getattr(data, name)()
    if isinstance(img, tuple):  # stereo_motorcycle: (left, right, disparity)
        img = img[0]
    if img.dtype != np.uint8:
        img = img.astype(np.float64)
        img = (255 * (img - img.min()) / max(np.ptp(img), 1e-12)).astype(np.uint8)
    return Image.fromarray(img).convert("RGB")


def _views(img: Image.Image) -> list[Image.Image]:
    w, h = img.size
    s = int(min(w, h) * 0.7)
    corners = [(0, 0), (w - s, 0), (0, h - s), (w - s, h - s)]
    return [img] + [img.crop((x, y, x + s, y + s)) for x, y in corners]


def images() -> tuple[list, list, list]:
    from photos import load_photo

    inside = [v for n in IN for v in _views(load_photo(n) if n == "grace_hopper" else _skimage(n))]
    rng = np.random.default_rng(0)
    textures = [v for n in TEXTURES for v in _views(_skimage(n))]
    other = [_skimage(n) for n in OTHER]
    noise = [Image.fromarray(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)) for _ in range(6)]
    noise += [Image.fromarray(np.clip(rng.normal(128, 40, (300, 400, 3)), 0, 255).astype(np.uint8)) for _ in range(6)]
    noise += [Image.fromarray((rng.random((300, 400, 3)) < 0.5).astype(np.uint8) * 255) for _ in range(3)]
    return inside, textures + other, noise


def main() -> None:
    import twoends
    from twoends.calibrate.ood import auroc, fit_ood_threshold, fpr_at_tpr

    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="efficientnet_lite0")
    model = ap.parse_args().model
    inside, other, noise = images()
    print(
        f"model {model}; {len(inside)} photos (in), {len(other)} textures/documents/microscopy and {len(noise)} "
        "noise images (out)"
    )
    print("| score | AUROC (all out) | FPR at 95% TPR | AUROC textures etc. | AUROC noise | out flagged at 95% TPR |")
    print("|---|---|---|---|---|---|")
    for method in ("energy", "max_logit", "max_probability"):
        clf = twoends.load(model, ood_method=method)
        s_in, s_other, s_noise = ([p.ood_score for p in clf.predict(imgs)] for imgs in (inside, other, noise))
        s_out = s_other + s_noise
        t = fit_ood_threshold(s_in, 0.95)
        print(
            f"| {method} | {auroc(s_in, s_out):.3f} | {fpr_at_tpr(s_in, s_out):.3f} | {auroc(s_in, s_other):.3f} | "
            f"{auroc(s_in, s_noise):.3f} | {np.mean(np.asarray(s_out) > t):.1%} |"
        )


if __name__ == "__main__":
    main()
