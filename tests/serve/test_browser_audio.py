"""The web page with an audio model, in headless Chromium: take a clip, show the answer, the player and segments.

Debian's chromium through playwright (see test_browser.py); the bundled silero_vad on
espeak-ng speech placed in noise, served in-process on 127.0.0.1. A screenshot is
saved to ``test-artifacts/serve-page-audio.png``.
"""

from __future__ import annotations

import importlib.util

import pytest

from tests import audio
from tests.serve.test_browser import ARTIFACTS, page  # noqa: F401  (the browser fixture)

pytestmark = pytest.mark.slow

if importlib.util.find_spec("silero_vad") is None or importlib.util.find_spec("soundfile") is None:
    pytest.skip("the audio model needs silero-vad and soundfile", allow_module_level=True)


@pytest.fixture(scope="module")
def vad_server():
    import twoends
    from tests.serve.helpers import Running
    from twoends.serve import create_app

    with Running(create_app(twoends.load("silero_vad"))) as client:
        yield client


def test_drop_a_clip_and_see_the_answer_the_player_and_the_segments(page, vad_server, tmp_path):  # noqa: F811
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    voice = audio.speech(rate=22050, tmp=tmp_path)
    path = audio.write(tmp_path / "speech.wav", audio.place(voice, audio.noise(8, 22050), 1.5, 22050), 22050)
    expected = vad_server.post_file(
        "/v1/predict?include_logits=true&top_k=10", path.name, path.read_bytes(), content_type="audio/wav"
    ).json()
    assert expected["label"] == "speech" and expected["segments"]

    page.goto(vad_server.url + "/")
    page.wait_for_function("document.getElementById('model-name').textContent === 'silero_vad'")
    assert page.text_content("#input-kind") == "Audio clip"
    assert page.get_attribute("#file", "accept") == "audio/*,video/*"
    page.set_input_files("#file", str(path))
    page.wait_for_selector("#timeline .seg")
    assert page.inner_text("#top-label") == "speech"
    bars = page.eval_on_selector_all("#bars li", "els => els.map(e => e.dataset.label)")
    assert bars == ["speech", "not speech"]
    assert page.is_visible("#player") and page.get_attribute("#player", "src").startswith("blob:")
    segs = page.eval_on_selector_all(
        "#timeline .seg", "els => els.map(e => [e.dataset.label, +e.dataset.start, +e.dataset.end])"
    )
    assert segs == [[s["label"], s["start"], s["end"]] for s in expected["segments"]]
    assert abs(segs[0][1] - 1.5) <= 0.2

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "serve-page-audio.png"), full_page=True)
    assert not errors, errors
