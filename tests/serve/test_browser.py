"""The web page in headless Chromium: upload a photo, see the top label; the temperature slider's numbers.

Uses Debian's chromium (``/usr/bin/chromium``; ``scripts/setup.sh test``
installs it with apt-get where it can) through the ``playwright`` package,
which is never allowed to download a browser. A screenshot is saved to
``test-artifacts/serve-page.png``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
from scipy.special import softmax

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"
MODEL = "efficientnet_lite0"


@pytest.fixture(scope="module")
def page():
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):  # CI installs it: missing is a failure
            pytest.fail(
                f"CI=true and Debian's chromium is not installed at {CHROMIUM}: scripts/setup.sh test installs it"
            )
        pytest.skip(
            f"Debian's chromium is not installed at {CHROMIUM}: `apt-get install chromium` "
            "(scripts/setup.sh test does it where apt-get is available)"
        )
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 820})
            page.set_default_timeout(60_000)
            yield page
        finally:
            browser.close()


def test_upload_a_photo_and_see_the_top_label(page, server, sample_photos):
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    path = sample_photos["chelsea"]
    expected = server.post_file("/v1/predict?include_logits=true&top_k=10", path.name, path.read_bytes()).json()

    page.goto(server.url + "/")
    page.wait_for_function(f"document.getElementById('model-name').textContent === '{MODEL}'")
    page.set_input_files("#file", str(path))
    page.wait_for_selector("#bars li")
    assert page.inner_text("#top-label") == expected["label"]
    assert 281 <= expected["index"] <= 285  # a cat class (tabby, tiger cat, Persian, Siamese, Egyptian cat)
    bars = page.eval_on_selector_all("#bars li", "els => els.map(e => [e.dataset.label, +e.dataset.probability])")
    assert [b[0] for b in bars] == [c["label"] for c in expected["top_k"][:5]]
    np.testing.assert_allclose([b[1] for b in bars], [c["probability"] for c in expected["top_k"][:5]], rtol=1e-5)
    assert "No conformal calibration" in page.inner_text("#prediction-set")

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "serve-page.png"), full_page=True)
    assert (ARTIFACTS / "serve-page.png").stat().st_size > 10_000
    assert not errors, errors


def test_the_temperature_slider_recomputes_from_the_logits(page, server, sample_photos):
    """The page's softmax and entropy at T, against SciPy on the logits the server returned."""
    path = sample_photos["coffee"]
    expected = server.post_file("/v1/predict?include_logits=true&top_k=10", path.name, path.read_bytes()).json()
    logits = np.array(expected["logits"], dtype=np.float64)

    page.goto(server.url + "/")
    page.set_input_files("#file", str(path))
    page.wait_for_selector("#bars li")
    for target in (2.5, 0.4):
        page.eval_on_selector(
            "#temperature",
            f"""el => {{
            el.value = String(Math.log10({target})); el.dispatchEvent(new Event('input'));
        }}""",
        )
        t = float(page.get_attribute("#t-value", "data-t"))
        assert t == pytest.approx(target, rel=5e-3)  # the slider snaps to its step
        reference = softmax(logits / t)
        top = int(np.argmax(reference))
        assert page.inner_text("#top-label") == expected["label"]  # the ranking does not move with T
        assert float(page.get_attribute("#top-prob", "data-probability")) == pytest.approx(reference[top], rel=1e-9)
        entropy = -(reference * np.log(reference)).sum()
        assert float(page.get_attribute("#entropy", "data-entropy")) == pytest.approx(entropy, rel=1e-9)
        shown = page.eval_on_selector_all("#bars li", "els => els.map(e => +e.dataset.probability)")
        np.testing.assert_allclose(shown, np.sort(reference)[::-1][: len(shown)], rtol=1e-9)
    assert not math.isclose(float(page.get_attribute("#top-prob", "data-probability")), expected["probability"])


def test_a_broken_file_shows_the_servers_error(page, server, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG")
    page.goto(server.url + "/")
    page.set_input_files("#file", str(broken))
    page.wait_for_selector("#error", state="visible")
    text = page.inner_text("#error")
    assert "DecodeError" in text and "cannot decode" in text
