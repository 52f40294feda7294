"""``--format html``: one self-contained page for a run, written as the rows arrive.

The page holds everything (styles, thumbnails as data URIs, a small sorting
script): it can be mailed or opened from a USB stick. It streams: the head (the
model and its settings) is written first, then one ``<tr>`` per Prediction,
flushed as it comes, with the thumbnail made from the input file at that moment
and then dropped; the footer (counts) and the script come last. A 20,000-input
run holds one thumbnail at a time, and a report cut short by a crash still opens
(browsers close the open tags) with every row written so far.

Sorting happens in the browser (the rows are already on disk): by input order,
confidence (least certain first, or most), entropy, or name. The choice is kept
in the address (``report.html#sort=confidence-asc``), so a link can open the page
with the least certain first. Error rows count as least certain: they sort first.
Without JavaScript the page shows the rows in input order.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from typing import IO, Any, Mapping

from .display import STYLE, bar, error_text, esc, number, percent, thumb_tag, thumbnail_uri
from .prediction import Prediction

__all__ = ["HtmlReportWriter", "SORTS"]

#: sort key in the page -> what the menu says
SORTS = {
    "input": "input order",
    "confidence-asc": "least certain first (lowest probability)",
    "confidence-desc": "most confident first",
    "entropy-desc": "highest entropy first",
    "entropy-asc": "lowest entropy first",
    "name": "name",
}

PAGE_STYLE = """<style>
body{margin:20px;background:#fff}
.twoends h1{font-size:20px;margin:0 0 4px 0}
.twoends .settings td{padding:1px 8px;border:none;font-size:12px}
.twoends .controls{margin:12px 0}
.twoends #rows td:nth-child(2){max-width:320px;word-break:break-all}
.twoends tr.failed td{background:#fff5f5}
.twoends .bars .bar{width:180px;height:14px;margin:1px 0}
.twoends .bars .bar>em{line-height:14px}
</style>"""

# Sorting in the browser: rows carry their keys as data attributes; errors have p=-1, h=Infinity.
SCRIPT = """<script>
(function () {
  var body = document.getElementById("rows"), menu = document.getElementById("sort");
  var num = function (r, k) { return Number(r.dataset[k]); };
  var keys = {
    "input": function (a, b) { return num(a, "i") - num(b, "i"); },
    "confidence-asc": function (a, b) { return num(a, "p") - num(b, "p"); },
    "confidence-desc": function (a, b) { return num(b, "p") - num(a, "p"); },
    "entropy-desc": function (a, b) { return num(b, "h") - num(a, "h"); },
    "entropy-asc": function (a, b) { return num(a, "h") - num(b, "h"); },
    "name": function (a, b) { return a.dataset.name < b.dataset.name ? -1 : a.dataset.name > b.dataset.name ? 1 : 0; }
  };
  function order(key) {
    var cmp = keys[key], rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) { return cmp(a, b) || num(a, "i") - num(b, "i"); });
    var frag = document.createDocumentFragment();
    rows.forEach(function (r) { frag.appendChild(r); });
    body.appendChild(frag);
    menu.value = key;
    document.body.dataset.sorted = key;
  }
  menu.addEventListener("change", function () {
    order(menu.value);
    history.replaceState(null, "", "#sort=" + menu.value);
  });
  function fromAddress() {
    var asked = /sort=([a-z-]+)/.exec(location.hash);
    order(asked && keys[asked[1]] ? asked[1] : "input");
  }
  window.addEventListener("hashchange", fromAddress);
  document.getElementById("counts").textContent = document.getElementById("summary").textContent;
  fromAddress();
})();
</script>"""


class HtmlReportWriter:
    """Write Predictions as rows of one HTML page; ``settings`` (e.g. ``Settled.describe()``) go in its head."""

    def __init__(
        self,
        stream: IO[str],
        *,
        settings: Mapping[str, Any] | None = None,
        top_k: int = 5,
        thumbnails: bool = True,
        title: str | None = None,
    ):
        self.stream, self.top_k, self.thumbnails = stream, top_k, thumbnails
        self.count = self.failed = 0
        settings = dict(settings or {})
        model = settings.get("model")
        title = title or f"twoends report{f': {model}' if model else ''}"
        self.stream.write(_head(title, settings, top_k))
        self.stream.flush()

    def write(self, pred: Prediction) -> None:
        uri = thumbnail_uri(pred.input) if self.thumbnails else None
        self.stream.write(_row(self.count, pred, uri, self.top_k))
        self.count += 1
        self.failed += not pred.ok
        self.stream.flush()  # the row is on disk before the next one is made

    def close(self) -> None:
        ok = self.count - self.failed
        summary = f"{self.count} inputs: {ok} predicted, {self.failed} failed"
        self.stream.write(
            f'</tbody></table><p id="summary" data-count="{self.count}" data-failed="{self.failed}">'
            f"{esc(summary)}</p></div>{SCRIPT}</body></html>\n"
        )
        self.stream.flush()


def _head(title: str, settings: Mapping[str, Any], top_k: int) -> str:
    from ._version import __version__

    when = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    rows = "".join(f"<tr><td class='muted'>{esc(k)}</td><td>{esc(_setting(v))}</td></tr>" for k, v in settings.items())
    options = "".join(f'<option value="{k}">{esc(v)}</option>' for k, v in SORTS.items())
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">{STYLE}{PAGE_STYLE}</head>'
        f'<body><div class="twoends"><h1>{esc(title)}</h1>'
        f'<p class="muted">written by twoends {esc(__version__)} on {esc(when)}</p>'
        f'<details open><summary>model and settings</summary><table class="settings">{rows}</table></details>'
        f'<div class="controls"><label>sort: <select id="sort">{options}</select></label> '
        f'<span id="counts" class="muted">(the counts are at the end of the page)</span></div>'
        f'<table id="report"><thead><tr><th></th><th>input</th><th>label</th><th>top {top_k}</th>'
        f'<th>entropy</th><th>margin</th></tr></thead><tbody id="rows">\n'
    )


def _setting(value: Any) -> str:
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, default=str)
    return "-" if value is None else str(value)


def _row(i: int, pred: Prediction, uri: str | None, top_k: int) -> str:
    name = pred.input or ""
    if not pred.ok:
        return (
            f'<tr class="failed" data-i="{i}" data-name="{esc(name)}" data-p="-1" data-h="Infinity">'
            f"<td>{thumb_tag(uri, name)}</td><td>{esc(name)}</td>"
            f'<td colspan="4" class="error">{esc(error_text(pred))}</td></tr>\n'
        )
    h = repr(pred.entropy) if pred.entropy is not None and math.isfinite(pred.entropy) else "Infinity"
    bars = "".join(bar(s.probability, f"{s.label} {percent(s.probability)}") for s in pred.top_k[:top_k])
    extra = ""
    if pred.prediction_set is not None:
        extra = f"<div class='muted'>set: {{{esc(', '.join(pred.prediction_set))}}}</div>"
    if pred.ood:
        extra += f"<div class='error'>out of distribution (score {number(pred.ood_score)})</div>"
    return (
        f'<tr data-i="{i}" data-name="{esc(name)}" data-p="{pred.probability!r}" data-h="{h}">'
        f"<td>{thumb_tag(uri, name)}</td><td>{esc(name)}</td>"
        f"<td><b>{esc(pred.label)}</b><div class='muted'>{percent(pred.probability)}</div></td>"
        f"<td class='bars'>{bars}{extra}</td><td>{number(pred.entropy)}</td><td>{percent(pred.margin)}</td></tr>\n"
    )
