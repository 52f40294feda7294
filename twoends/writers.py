"""Output writers: every format writes the one Prediction schema (``Prediction.to_dict``).

* ``jsonl`` - one JSON object per line, flushed per row (streams, resumable);
* ``json``  - one JSON array (written as rows arrive, closed at the end);
* ``csv``   - the same fields, nested ones (top_k, lists, error) as JSON text in their column;
* ``parquet`` - the same fields as typed Arrow columns (top_k a list of structs, error a struct),
  written in row groups (needs pyarrow);
* ``table`` - a rich table for people (not machine-readable);
* ``html``  - one self-contained page for people: thumbnails, bars, sortable (``twoends.html_report``).

Numbers that are not finite are written by the one convention of ``twoends.encoding``.
"""

from __future__ import annotations

import csv
import json
from typing import IO, Any

from .encoding import arrow_schema, to_arrow
from .errors import ConfigError
from .prediction import Prediction

__all__ = ["FORMATS", "CSV_COLUMNS", "make_writer", "format_for_path"]

FORMATS = ("table", "json", "jsonl", "csv", "parquet", "html")
CSV_COLUMNS = [
    "input",
    "label",
    "index",
    "probability",
    "top_k",
    "entropy",
    "margin",
    "activation",
    "temperature",
    "positive_labels",
    "prediction_set",
    "calibration",
    "model",
    "segments",
    "error",
    "ood_score",
    "ood",
    "groups",
    "members",
]


def format_for_path(path: str) -> str | None:
    """The format a file name asks for by its extension, if any."""
    for ext, fmt in (
        (".jsonl", "jsonl"),
        (".ndjson", "jsonl"),
        (".json", "json"),
        (".csv", "csv"),
        (".parquet", "parquet"),
        (".html", "html"),
        (".htm", "html"),
    ):
        if path.lower().endswith(ext):
            return fmt
    return None


def _dumps(row: dict) -> str:
    return json.dumps(row, ensure_ascii=False, allow_nan=False)


class JsonLinesWriter:
    def __init__(self, stream: IO[str], include_vectors: bool = False):
        self.stream, self.include_vectors = stream, include_vectors

    def write(self, pred: Prediction) -> None:
        self.stream.write(_dumps(pred.to_dict(self.include_vectors)) + "\n")
        self.stream.flush()

    def close(self) -> None:
        self.stream.flush()


class JsonArrayWriter:
    def __init__(self, stream: IO[str], include_vectors: bool = False):
        self.stream, self.include_vectors, self.count = stream, include_vectors, 0

    def write(self, pred: Prediction) -> None:
        self.stream.write(("[\n  " if self.count == 0 else ",\n  ") + _dumps(pred.to_dict(self.include_vectors)))
        self.count += 1

    def close(self) -> None:
        self.stream.write("[]\n" if self.count == 0 else "\n]\n")
        self.stream.flush()


class CsvWriter:
    def __init__(self, stream: IO[str], include_vectors: bool = False, header: bool = True):
        cols = CSV_COLUMNS + (["logits", "probabilities"] if include_vectors else [])
        self.include_vectors = include_vectors
        self.writer = csv.DictWriter(stream, fieldnames=cols, extrasaction="raise", lineterminator="\n")
        if header:
            self.writer.writeheader()
        self.stream = stream

    def write(self, pred: Prediction) -> None:
        row = pred.to_dict(self.include_vectors)
        self.writer.writerow({k: _cell(v) for k, v in row.items()})
        self.stream.flush()  # a row is on disk before the next starts: resumable after a kill

    def close(self) -> None:
        self.stream.flush()


def _cell(v: Any) -> Any:
    if isinstance(v, (list, dict)):
        return json.dumps(v, ensure_ascii=False)
    return "" if v is None else v


class ParquetWriter:
    """Typed columns, the same field names; rows go to disk one row group at a time (bounded memory)."""

    def __init__(self, path: str, include_vectors: bool = False, row_group: int = 4096):
        from .extras import require

        pa = require("pyarrow", "Parquet output", alternative="or write .jsonl / .csv")
        pq = require("pyarrow.parquet", "Parquet output", alternative="or write .jsonl / .csv")
        self.pa, self.include_vectors, self.row_group = pa, include_vectors, row_group
        self.schema = arrow_schema(include_vectors)
        self.writer = pq.ParquetWriter(path, self.schema)
        self.rows: list[dict] = []

    def write(self, pred: Prediction) -> None:
        self.rows.append(to_arrow(pred, self.include_vectors))
        if len(self.rows) >= self.row_group:
            self._flush()

    def _flush(self) -> None:
        if self.rows:
            self.writer.write_table(self.pa.Table.from_pylist(self.rows, schema=self.schema))
            self.rows = []

    def close(self) -> None:
        self._flush()
        self.writer.close()


class TableWriter:
    """Rows gathered, then printed as one rich table (for people, on a terminal)."""

    def __init__(self, console, top_k: int = 3):
        self.console, self.top_k = console, top_k
        self.rows: list[Prediction] = []

    def write(self, pred: Prediction) -> None:
        self.rows.append(pred)

    def close(self) -> None:
        from rich.table import Table

        table = Table(show_lines=False, header_style="bold")
        table.add_column("input", overflow="fold")
        table.add_column("label")
        table.add_column("probability", justify="right")
        if self.top_k > 1:
            table.add_column(f"next {self.top_k - 1}", overflow="fold")
        grouped = any(p.groups for p in self.rows)
        if grouped:
            table.add_column("groups", overflow="fold")
        timed = any(p.segments for p in self.rows)
        if timed:
            table.add_column("segments (s)", overflow="fold")
        from rich.markup import escape

        for p in self.rows:
            if p.error is not None:  # escaped: a message's own brackets are text, not rich markup
                cells = [
                    p.input or "",
                    f"[red]{escape(p.error['type'])}[/red]",
                    "",
                    f"[red]{escape(p.error['message'])}[/red]",
                ]
            elif p.ood:  # over the fitted threshold: the top class is shown only as the closest one
                rest = ", ".join(f"{s.label} {s.probability:.1%}" for s in p.top_k[: self.top_k])
                cells = [p.input or "", "[yellow]none of the above[/yellow]", "", f"[dim]closest: {rest}[/dim]"]
            else:
                rest = ", ".join(f"{s.label} {s.probability:.1%}" for s in p.top_k[1 : self.top_k])
                cells = [p.input or "", f"[bold]{p.label}[/bold]", f"{p.probability:.1%}", rest]
            cells = cells[: 3 + (self.top_k > 1)]
            if grouped:
                cells.append(", ".join(f"{g.label} {g.probability:.1%}" for g in p.groups or ()))
            if timed:
                cells.append(", ".join(f"{s.label} {s.start:.2f}-{s.end:.2f}" for s in p.segments or ()))
            table.add_row(*cells)
        self.console.print(table)
        if grouped and any(p.activation == "sigmoid" and p.groups for p in self.rows):
            from .head.groups import SIGMOID_RULE

            self.console.print(f"[dim]groups: {SIGMOID_RULE}[/dim]")
        if any(p.ood for p in self.rows):
            self.console.print(
                "[dim]none of the above: the out-of-distribution score is over the threshold "
                "fitted by `twoends calibrate --ood`[/dim]"
            )


def make_writer(
    fmt: str,
    stream: IO[str],
    *,
    console=None,
    top_k: int = 3,
    include_vectors: bool = False,
    header: bool = True,
    settings=None,
):
    """A writer for ``fmt``; ``header=False`` when appending to a CSV that has one; ``settings``: the model's, for html.

    Parquet is binary and written by path: use ``ParquetWriter(path)``.
    """
    if fmt == "jsonl":
        return JsonLinesWriter(stream, include_vectors)
    if fmt == "json":
        return JsonArrayWriter(stream, include_vectors)
    if fmt == "csv":
        return CsvWriter(stream, include_vectors, header)
    if fmt == "html":
        from .html_report import HtmlReportWriter

        return HtmlReportWriter(stream, settings=settings, top_k=top_k)
    if fmt == "table":
        from rich.console import Console

        return TableWriter(console or Console(file=stream), top_k)
    raise ConfigError(f"unknown format {fmt!r}: expected one of {FORMATS}")
