"""``twoends predict --format html``: the page's rows against the Python API, its streaming, its memory.

The browser test (tests/test_html_report_browser.py) opens a 1,000-photo report in Chromium.
"""

from __future__ import annotations

import base64
import html
import io
import re
import tracemalloc

import pytest
from click.testing import CliRunner
from PIL import Image

pytest.importorskip("torch")
pytest.importorskip("efficientnet_lite_pytorch", reason="pip install --no-deps efficientnet-lite-pytorch")
pytest.importorskip("skimage")

from tests.photos import write_photos

ROW = re.compile(
    r'<tr (?:class="failed" )?data-i="(\d+)" data-name="([^"]*)" data-p="([^"]+)" data-h="([^"]+)">(.*?)</tr>'
)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    paths = write_photos(folder)
    (folder / "truncated.jpg").write_bytes(paths["coffee"].read_bytes()[:300])
    return folder


@pytest.fixture(scope="module")
def clf():
    import twoends

    return twoends.load("efficientnet_lite0", device="cpu", top_k=5)


def run_cli(*args):
    from twoends.cli import main

    return CliRunner().invoke(main, [str(a) for a in args])


def test_the_page_has_one_row_per_input_with_the_apis_numbers(photos, clf, tmp_path):
    out = tmp_path / "report.html"
    r = run_cli("predict", photos, "-o", out, "--top-k", "5")
    assert r.exit_code == 1, r.output  # one input failed: the exit status says so, the page has its row
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    rows = ROW.findall(page)
    api = {p.input: p for p in clf.predict(photos)}
    assert [name for _, name, *_ in rows] == list(api)  # input order, every input once
    for n, (i, name, p, h, cells) in enumerate(rows):
        assert int(i) == n  # the row's input position, which the page sorts back to
        pred = api[html.unescape(name)]
        if not pred.ok:
            assert p == "-1" and h == "Infinity" and 'class="error"' in cells
            assert html.escape(pred.error["message"]) in cells and "<img" not in cells
            continue
        assert float(p) == pytest.approx(pred.probability, rel=1e-6)
        assert float(h) == pytest.approx(pred.entropy, rel=1e-6)
        for s in pred.top_k:  # five bars, each with its label and percentage
            assert f"{html.escape(s.label)} {s.probability:.1%}" in cells
        uri = re.search(r'src="data:image/jpeg;base64,([^"]+)"', cells).group(1)
        with Image.open(io.BytesIO(base64.b64decode(uri))) as thumb:
            assert max(thumb.size) == 96
    assert 'id="summary" data-count="6" data-failed="1"' in page
    # the model and its settings, as settled
    for text in ("efficientnet_lite0", "spec_source", "bicubic", "temperature"):
        assert text in page
    assert "<script>" in page and 'id="sort"' in page


def test_rows_reach_the_file_as_they_come(photos, clf, tmp_path):
    from twoends.html_report import HtmlReportWriter

    path = tmp_path / "partial.html"
    with open(path, "w", encoding="utf-8") as f:
        writer = HtmlReportWriter(f, settings=clf.settled.describe())
        assert "model and settings" in path.read_text()  # the head is on disk before any row
        for n, pred in enumerate(clf.predict_iter(photos), start=1):
            writer.write(pred)
            assert len(ROW.findall(path.read_text())) == n  # each row is on disk before the next is made
        assert "</html>" not in path.read_text()
        writer.close()
    assert path.read_text().rstrip().endswith("</html>")


def test_writing_holds_one_thumbnail_at_a_time(photos, clf, tmp_path):
    """Python memory while writing stays flat from 100 to 1,000 rows (every row a real thumbnail)."""
    from twoends.html_report import HtmlReportWriter

    preds = [p for p in clf.predict(photos) if p.ok]

    def peak(n):
        with open(tmp_path / f"r{n}.html", "w", encoding="utf-8") as f:
            tracemalloc.start()
            writer = HtmlReportWriter(f, settings=clf.settled.describe())
            for i in range(n):
                writer.write(preds[i % len(preds)])
            writer.close()
            _, top = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        assert len(ROW.findall((tmp_path / f"r{n}.html").read_text())) == n
        return top

    small, big = peak(100), peak(1000)
    assert big < 2 * 1024 * 1024, f"peak {big / 1e6:.1f} MB for 1,000 rows"
    assert big < small * 1.5 + 256 * 1024, (small, big)


def test_html_is_chosen_by_the_extension_and_refuses_resume(photos, tmp_path):
    from twoends.writers import format_for_path

    assert format_for_path("run/REPORT.HTML") == format_for_path("a.htm") == "html"
    r = run_cli("predict", photos / "coffee.jpg", "-o", tmp_path / "r.html", "--resume")
    assert r.exit_code == 2 and "--resume works with" in r.output
