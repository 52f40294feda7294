"""HTML for notebooks: a Prediction, a list of them, an evaluation and a doctor report.

Jupyter, JupyterLab, Colab and VS Code call ``_repr_html_`` on the last value of a
cell; the classes keep only that thin hook and this module writes the HTML. Plain
HTML and one scoped ``<style>``: no JavaScript, so it renders in every front end and
in a notebook saved with its outputs.

The thumbnail. A Prediction carries only its input's id, never the pixels (a
million-row run must not hold a million images). So the picture is read again when
it is shown: when ``input`` is the path of an existing image file, that file is
decoded with the package's own limit-checked decoder (pixel limit checked from the
header before decoding; JPEGs decoded at a reduced scale) and shrunk to
``THUMB_SIZE`` pixels, embedded as a ``data:image/jpeg;base64`` URI. Inputs given in
memory (a PIL image, an array) have ids like ``<PIL.Image #0>``: pass the picture
yourself with ``prediction_html(pred, image=im)``. Nothing is cached, nothing is kept.
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
from typing import Any, Callable, Iterable, Mapping, Sequence

from PIL import Image

__all__ = [
    "THUMB_SIZE",
    "thumbnail_uri",
    "prediction_html",
    "predictions_html",
    "evaluation_html",
    "findings_html",
]

THUMB_SIZE = 96  # pixels, longest side: big enough to recognise the photo, ~3 KB as JPEG
THUMB_MAX_PIXELS = 50_000_000  # a picture only for looking at: refuse bigger ones without decoding them
TABLE_ROWS = 200  # a notebook cell shows this many rows of a long list, then says how many more

STYLE = """<style>
.twoends{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;font-size:13px;color:#1f2328;line-height:1.35}
.twoends table{border-collapse:collapse}
.twoends td,.twoends th{padding:3px 8px;text-align:left;vertical-align:top;border-bottom:1px solid #e5e7eb}
.twoends th{font-weight:600;background:#f6f8fa}
.twoends .card{display:flex;gap:14px;align-items:flex-start}
.twoends .thumb{max-width:96px;max-height:96px;border-radius:4px;border:1px solid #d0d7de}
.twoends .label{font-size:16px;font-weight:600}
.twoends .muted{color:#656d76}
.twoends .bar{position:relative;width:220px;height:16px;background:#eef1f4;border-radius:3px;overflow:hidden}
.twoends .bar>span{position:absolute;left:0;top:0;bottom:0;background:#9cc0ea}
.twoends .bar>em{position:absolute;left:6px;top:0;font-style:normal;font-size:11px;line-height:16px;color:#111}
.twoends .error{color:#b42318;font-weight:600}
.twoends .sev-error{color:#fff;background:#b42318}
.twoends .sev-warning{color:#111;background:#f5c542}
.twoends .sev-info{color:#fff;background:#57606a}
.twoends .badge{display:inline-block;padding:0 6px;border-radius:3px;font-size:11px;font-weight:600}
.twoends dl{margin:4px 0 10px 0}.twoends dt{font-weight:600;float:left;width:3.2em}.twoends dd{margin:0 0 2px 3.6em}
</style>"""


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def percent(p: float | None) -> str:
    if p is None or not math.isfinite(p):
        return "-"
    return f"{p:.1%}"


def number(x: float | None, digits: int = 3) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def thumbnail_uri(source: Any, size: int = THUMB_SIZE) -> str | None:
    """A small JPEG of ``source`` (an image path, PIL image or uint8 array) as a data URI; None if it is not one.

    Never raises: a missing, unreadable, oversized or non-image source simply has no thumbnail.
    """
    from .errors import TwoEndsError
    from .preprocess.image import decode_image

    if source is None:
        return None
    if isinstance(source, (str, os.PathLike)) and not os.path.isfile(source):
        return None  # an id such as "<PIL.Image #0>" or a URL: nothing to read
    try:
        im = decode_image(source, max_pixels=THUMB_MAX_PIXELS, draft_size=size)
    except TwoEndsError:
        return None
    im.thumbnail((size, size), Image.Resampling.BILINEAR)  # 96 pixels: bilinear looks the same, 3x faster
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def thumb_tag(uri: str | None, alt: str = "") -> str:
    return f'<img class="thumb" src="{uri}" alt="{esc(alt)}">' if uri else ""


def bar(p: float | None, text: str = "") -> str:
    """A horizontal bar at ``p`` (0..1) with ``text`` written on it."""
    width = 0.0 if p is None or not math.isfinite(p) else max(0.0, min(1.0, p)) * 100
    return f'<div class="bar"><span style="width:{width:.1f}%"></span><em>{esc(text)}</em></div>'


def error_text(pred: Any) -> str:
    err = pred.error or {}
    return f"{err.get('type', 'Error')}: {err.get('message', '')}"


def _details(pred: Any) -> list[tuple[str, str]]:
    """The numbers under the bars: (name, value already escaped)."""
    rows = [("entropy", f"{number(pred.entropy)} nats"), ("margin", percent(pred.margin))]
    if pred.prediction_set is not None:
        shown = ", ".join(esc(s) for s in pred.prediction_set) or "(empty)"
        rows.append(("prediction set", f"{{{shown}}} <span class='muted'>({len(pred.prediction_set)} classes)</span>"))
    if pred.positive_labels is not None:
        rows.append(("over threshold", esc(", ".join(pred.positive_labels)) or "(none)"))
    if pred.ood is not None:
        flag = "<span class='error'>yes: none of the above</span>" if pred.ood else "no"
        rows.append(("out of distribution", f"{flag} <span class='muted'>(score {number(pred.ood_score)})</span>"))
    if pred.groups:
        rows.append(("groups", ", ".join(f"{esc(g.label)} {percent(g.probability)}" for g in pred.groups[:5])))
    if pred.members:
        said = [
            f"{esc(m.model)}: {esc(m.top_k[0].label)} {percent(m.top_k[0].probability)}"
            if m.top_k
            else f"{esc(m.model)}: -"
            for m in pred.members
        ]
        rows.append(("members", "; ".join(said)))
    head = f"{esc(pred.activation)}, temperature {pred.temperature:g}"
    if pred.calibration:
        head += f", calibration {esc(pred.calibration)}"
    rows.append(("head", head))
    if pred.model:
        rows.append(("model", esc(pred.model)))
    return rows


def prediction_html(pred: Any, *, image: Any = None, top: int = 5) -> str:
    """One Prediction as a card: thumbnail, label, top-k bars, entropy, margin, set; an error in red."""
    uri = thumbnail_uri(image if image is not None else pred.input)
    title = f'<div class="muted">{esc(pred.input)}</div>'
    if not pred.ok:
        body = f'{title}<div class="error">{esc(error_text(pred))}</div>'
    else:
        bars = "".join(
            f"<tr><td>{esc(s.label)}</td><td>{bar(s.probability, percent(s.probability))}</td></tr>"
            for s in pred.top_k[:top]
        )
        details = "".join(f"<tr><td class='muted'>{name}</td><td>{value}</td></tr>" for name, value in _details(pred))
        body = (
            f'{title}<div class="label">{esc(pred.label)} <span class="muted">{percent(pred.probability)}</span></div>'
            f"<table>{bars}</table><table>{details}</table>"
        )
    return (
        f'{STYLE}<div class="twoends"><div class="card">{thumb_tag(uri, pred.input or "")}<div>{body}</div></div></div>'
    )


def prediction_row(pred: Any, uri: str | None, *, top: int = 3) -> str:
    """The cells of one table row (no <tr>): thumbnail, input, label, probability bar, runners-up, entropy, margin."""
    cells = [thumb_tag(uri, pred.input or ""), esc(pred.input)]
    if not pred.ok:
        return "".join(f"<td>{c}</td>" for c in cells) + f'<td colspan="5" class="error">{esc(error_text(pred))}</td>'
    rest = ", ".join(f"{esc(s.label)} {percent(s.probability)}" for s in pred.top_k[1:top])
    if pred.prediction_set is not None:
        rest += f"<div class='muted'>set: {{{esc(', '.join(pred.prediction_set))}}}</div>"
    cells += [
        f"<b>{esc(pred.label)}</b>",
        bar(pred.probability, percent(pred.probability)),
        rest,
        number(pred.entropy),
        percent(pred.margin),
    ]
    return "".join(f"<td>{c}</td>" for c in cells)


ROW_HEADER = "<th></th><th>input</th><th>label</th><th>probability</th><th>next</th><th>entropy</th><th>margin</th>"


def predictions_html(preds: Sequence[Any], *, thumbnails: bool = True, limit: int = TABLE_ROWS) -> str:
    """A list of Predictions as a table, one row each (the first ``limit`` rows, then a count of the rest)."""
    shown = list(preds[:limit])
    failed = sum(not p.ok for p in preds)
    rows = "".join(f"<tr>{prediction_row(p, thumbnail_uri(p.input) if thumbnails else None)}</tr>" for p in shown)
    more = f"<p class='muted'>... and {len(preds) - len(shown)} more rows</p>" if len(preds) > len(shown) else ""
    summary = f"{len(preds)} predictions" + (f", <span class='error'>{failed} failed</span>" if failed else "")
    return (
        f'{STYLE}<div class="twoends"><p>{summary}</p><table><thead><tr>{ROW_HEADER}</tr></thead>'
        f"<tbody>{rows}</tbody></table>{more}</div>"
    )


def short_list_repr(name: str, preds: Sequence[Any], show: int = 3) -> str:
    """``Name(N predictions: first, second, ... )``: a repr that stays one short line for any length."""
    parts = [p.label if p.ok else f"error {p.error.get('type')}" for p in list(preds[:show])]
    tail = ", ..." if len(preds) > show else ""
    failed = sum(not p.ok for p in preds)
    return (
        f"{name}({len(preds)} predictions{f', {failed} failed' if failed else ''}: {', '.join(map(str, parts))}{tail})"
    )


_METRICS: list[tuple[str, str, Callable[[Any], str]]] = [  # (key in Evaluation.to_dict(), shown name, format)
    ("accuracy", "top-1 accuracy", percent),
    ("top5", "top-5 accuracy", percent),
    ("nll", "NLL (nats)", number),
    ("brier", "Brier score", number),
    ("ece", "ECE (equal-width bins)", percent),
    ("ece_mass", "ECE (equal-mass bins)", percent),
    ("mce", "MCE", percent),
    ("temperature", "temperature", lambda t: f"{t:g}"),
]


def evaluation_html(metrics: Mapping[str, Any], diagram_png: bytes | None = None) -> str:
    """An evaluation: the metrics (``Evaluation.to_dict()``), the reliability diagram inline, the failed inputs."""
    rows = "".join(
        f"<tr><td>{name}</td><td>{fmt(metrics[key])}</td></tr>"
        for key, name, fmt in _METRICS
        if metrics.get(key) is not None
    )
    counts = f"{metrics['n_evaluated']} of {metrics['n_inputs']} inputs evaluated, {metrics['n_classes']} classes"
    if metrics.get("calibration"):
        counts += f", calibration {esc(metrics['calibration'])}"
    failed = metrics.get("failed") or []
    fails = ""
    if failed:
        items = "".join(f"<li>{esc(f['input'])}: {esc(f['error'])}</li>" for f in failed[:20])
        fails = f"<p class='error'>{len(failed)} inputs failed</p><ul>{items}</ul>"
    img = ""
    if diagram_png:
        uri = "data:image/png;base64," + base64.b64encode(diagram_png).decode("ascii")
        img = f'<img src="{uri}" alt="reliability diagram" style="max-width:480px">'
    return f'{STYLE}<div class="twoends"><p>{counts}</p><div class="card"><table>{rows}</table>{img}</div>{fails}</div>'


def findings_html(findings: Iterable[Any], *, ran: Sequence[str] = (), skipped: Mapping[str, str] | None = None) -> str:
    """A doctor report: each finding with its severity, and what was seen, why it matters and the fix."""
    findings = list(findings)
    counts = {s: sum(f.severity == s for f in findings) for s in ("error", "warning", "info")}
    head = ", ".join(f"{n} {s}{'s' * (n != 1)}" for s, n in counts.items())
    verdict = (
        "<span class='error'>the outputs are wrong: fix the errors first</span>" if counts["error"] else "no errors"
    )
    items = "".join(
        f"<div><span class='badge sev-{esc(f.severity)}'>{esc(f.severity)}</span> <b>{esc(f.check)}</b>: "
        f"{esc(f.title)}<dl><dt>seen</dt><dd>{esc(f.seen)}</dd><dt>why</dt><dd>{esc(f.why)}</dd>"
        f"<dt>fix</dt><dd>{esc(f.fix)}</dd></dl></div>"
        for f in findings
    )
    skipped = dict(skipped or {})
    extra = ""
    if ran or skipped:
        lines = "".join(f"<li>{esc(name)}: {esc(why)}</li>" for name, why in skipped.items())
        extra = (
            f"<details><summary class='muted'>{len(ran)} checks ran, {len(skipped)} skipped</summary>"
            f"<p class='muted'>ran: {esc(', '.join(ran))}</p><ul>{lines}</ul></details>"
        )
    return f'{STYLE}<div class="twoends"><p><b>{head}</b> - {verdict}</p>{items}{extra}</div>'
