"""The HTML report of a 1,000-photo run in headless Chromium: rows, thumbnails, and sorting.

Debian's chromium (``/usr/bin/chromium``) through playwright, never a downloaded
browser, as for the server's page. The photos are 1,000 crops of the bundled real
photos; the report is written by ``twoends predict DIR -o report.html``. A screenshot
goes to ``test-artifacts/html-report.png``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image, ImageOps

pytestmark = pytest.mark.slow
pytest.importorskip("torch")
pytest.importorskip("efficientnet_lite_pytorch", reason="pip install --no-deps efficientnet-lite-pytorch")
pytest.importorskip("skimage")

from tests.photos import load_photos

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"
N = 1000


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """A 1,000-photo run (random crops and flips of the real photos, 192x144) written as HTML, plus two bad files."""
    folder = tmp_path_factory.mktemp("thousand")
    rng = np.random.default_rng(0)
    sources = list(load_photos().values())
    for i in range(N - 2):
        im = sources[i % len(sources)]
        w, h = im.size
        s = rng.uniform(0.5, 1.0)
        cw, ch = int(w * s), int(h * s)
        x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        out = im.crop((x, y, x + cw, y + ch)).resize((192, 144), Image.BICUBIC)
        (ImageOps.mirror(out) if rng.random() < 0.5 else out).save(folder / f"photo_{i:04d}.jpg", quality=85)
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "notes.png").write_bytes(b"not an image at all")
    from twoends.cli import main

    out = tmp_path_factory.mktemp("out") / "report.html"
    r = CliRunner().invoke(main, ["predict", str(folder), "-o", str(out), "--batch-size", "16"])
    assert r.exit_code == 1 and f"{N} inputs: {N - 2} predicted, 2 failed" in r.output, r.output
    return out


@pytest.fixture(scope="module")
def page():
    if not os.path.exists(CHROMIUM):
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
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.set_default_timeout(60_000)
            yield page
        finally:
            browser.close()


ROWS = """() => Array.from(document.querySelectorAll('#rows tr')).map(r => ({
    i: +r.dataset.i, name: r.dataset.name, p: +r.dataset.p, h: +r.dataset.h, failed: r.classList.contains('failed'),
    shown: r.cells[2].innerText}))"""


def sort_by(page, key):
    page.select_option("#sort", key)
    page.wait_for_function(f"document.body.dataset.sorted === '{key}'")
    return page.evaluate(ROWS)


def test_the_report_opens_with_every_row_and_its_thumbnails(page, report):
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(report.as_uri())
    page.wait_for_function("document.body.dataset.sorted === 'input'")
    rows = page.evaluate(ROWS)
    assert len(rows) == N and [r["i"] for r in rows] == list(range(N))
    assert sum(r["failed"] for r in rows) == 2
    assert page.inner_text("#summary") == page.inner_text("#counts") == f"{N} inputs: {N - 2} predicted, 2 failed"
    # thumbnails decoded by the browser: every photo row shows a 96-pixel picture
    sizes = page.eval_on_selector_all("#rows img.thumb", "els => els.map(e => [e.complete, e.naturalWidth])")
    assert len(sizes) == N - 2 and all(done and w == 96 for done, w in sizes)
    # the top-1 text agrees with the row's probability
    ok = [r for r in rows if not r["failed"]]
    assert all(f"{100 * r['p']:.1f}%" in r["shown"] for r in ok[:50])
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "html-report.png"))
    assert (ARTIFACTS / "html-report.png").stat().st_size > 20_000
    assert not errors, errors


def test_sorting_by_confidence_entropy_and_name(page, report):
    page.goto(report.as_uri())
    page.wait_for_function("document.body.dataset.sorted === 'input'")
    rows = sort_by(page, "confidence-asc")
    assert [r["failed"] for r in rows[:2]] == [True, True]  # errors are the least certain of all
    p = [r["p"] for r in rows[2:]]
    assert p == sorted(p) and p[0] < p[-1]
    assert page.evaluate("location.hash") == "#sort=confidence-asc"
    page.screenshot(path=str(ARTIFACTS / "html-report-least-certain.png"))

    p = [r["p"] for r in sort_by(page, "confidence-desc") if not r["failed"]]
    assert p == sorted(p, reverse=True)
    rows = sort_by(page, "entropy-desc")
    h = [r["h"] for r in rows if not r["failed"]]
    assert h == sorted(h, reverse=True) and all(r["failed"] for r in rows[:2])
    names = [r["name"] for r in sort_by(page, "name")]
    assert names == sorted(names)
    assert [r["i"] for r in sort_by(page, "input")] == list(range(N))


def test_a_link_opens_the_page_least_certain_first(page, report):
    page.goto(report.as_uri() + "#sort=confidence-asc")
    page.wait_for_function("document.body.dataset.sorted === 'confidence-asc'")
    p = [r["p"] for r in page.evaluate(ROWS)]
    assert p == sorted(p) and page.eval_on_selector("#sort", "e => e.value") == "confidence-asc"
