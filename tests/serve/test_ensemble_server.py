"""`twoends serve --model A+B --groups FILE --calibration FILE`: members, groups and "none of the above" over HTTP
and on the web page (headless Chromium)."""

from __future__ import annotations

import io
import json
import os
from importlib import resources

import jsonschema
import numpy as np
import pytest
from PIL import Image

from tests.serve.helpers import Client, free_port, start_server, stop_server

pytestmark = pytest.mark.slow

MODEL = "efficientnet_lite0+efficientnet_lite1"
SCHEMA = json.loads((resources.files("twoends") / "data" / "prediction.schema.json").read_text())
THRESHOLD = -8.5  # between the cat photo's energy (about -9.6) and noise's (about -8.0); checked below


@pytest.fixture(scope="module")
def ens_server(tmp_path_factory):
    pytest.importorskip("fastapi")
    from twoends.calibrate.calibration import Calibration
    from twoends.calibrate.ood import OODThreshold
    from twoends.models import imagenet_labels

    root = tmp_path_factory.mktemp("ens-serve")
    (root / "groups.json").write_text(json.dumps({"cat": [281, 282, 283, 284, 285], "dog": ["beagle", "basset"]}))
    Calibration(
        labels=tuple(imagenet_labels()), model=MODEL, temperature=1.0, ood=OODThreshold("energy", 0.95, THRESHOLD, 100)
    ).save(root / "ens.json")
    port = free_port()
    proc = start_server(
        [
            "--model",
            MODEL,
            "--groups",
            str(root / "groups.json"),
            "--calibration",
            str(root / "ens.json"),
            "--max-batch-size",
            "4",
            "--no-access-log",
        ],
        port,
        root / "server.log",
    )
    client = Client(port)
    client.proc = proc
    yield client
    stop_server(proc)


def _noise() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def test_rows_carry_members_groups_and_the_ood_verdict(ens_server, sample_photos):
    path = sample_photos["chelsea"]
    cat = ens_server.post_file("/v1/predict?include_logits=true", path.name, path.read_bytes()).json()
    noise = ens_server.post_file("/v1/predict", "noise.png", _noise(), content_type="image/png").json()
    for row in (cat, noise):
        jsonschema.validate(row, SCHEMA)
        assert row["model"] == MODEL and [m["model"] for m in row["members"]] == MODEL.split("+")
        assert row["ood_score"] == pytest.approx(np.mean([m["ood_score"] for m in row["members"]]), rel=1e-6)
    assert cat["ood_score"] < THRESHOLD < noise["ood_score"]  # the premise of the threshold chosen above
    assert cat["ood"] is False and noise["ood"] is True
    groups = {g["label"]: g["probability"] for g in cat["groups"]}
    probs = np.exp(np.asarray(cat["logits"], dtype=float))  # an ensemble's logits are log p
    assert groups["cat"] == pytest.approx(probs[281:286].sum() / probs.sum(), rel=1e-6) and groups["cat"] > 0.5
    hot = ens_server.post_file("/v1/predict?temperature=2", path.name, path.read_bytes()).json()
    assert hot["temperature"] == 2 and hot["members"] == cat["members"] and hot["ood_score"] == cat["ood_score"]
    info = ens_server.get("/v1/model").json()
    assert info["ensemble"]["combine"] == "probabilities" and info["groups"]["groups"]["cat"] == [
        281,
        282,
        283,
        284,
        285,
    ]
    meta = ens_server.get(f"/v2/models/{MODEL}").json()
    assert [i["name"] for i in meta["inputs"]] == ["image"]  # no single tensor fits both members


def test_the_page_shows_group_bars_and_none_of_the_above(ens_server, sample_photos, tmp_path):
    from tests.serve.test_browser import CHROMIUM

    if not os.path.exists(CHROMIUM):
        pytest.skip(f"Debian's chromium is not installed at {CHROMIUM}")
    sync_api = pytest.importorskip("playwright.sync_api")
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    noise = tmp_path / "noise.png"
    noise.write_bytes(_noise())
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.set_default_timeout(60_000)
            errors = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"http://127.0.0.1:{ens_server.port}/")
            page.wait_for_function(f"document.getElementById('model-name').textContent === '{MODEL}'")
            page.set_input_files("#file", str(sample_photos["chelsea"]))
            page.wait_for_selector("#group-bars li")
            bars = page.eval_on_selector_all(
                "#group-bars li", "els => els.map(e => [e.dataset.label, +e.dataset.probability])"
            )
            expected = ens_server.post_file("/v1/predict", "chelsea.jpg", sample_photos["chelsea"].read_bytes()).json()
            assert [b[0] for b in bars] == [g["label"] for g in expected["groups"]] == ["cat", "dog"]
            np.testing.assert_allclose([b[1] for b in bars], [g["probability"] for g in expected["groups"]], rtol=1e-6)
            assert page.inner_text("#top-label") == expected["label"]
            page.set_input_files("#file", str(noise))
            page.wait_for_function("document.getElementById('top-label').dataset.ood === 'true'")
            assert page.inner_text("#top-label") == "none of the above"
            assert "closest:" in page.inner_text("#ood-note")
            assert not errors, errors
        finally:
            browser.close()
