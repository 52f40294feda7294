"""Resumable output: which inputs a previous (possibly killed) run already wrote.

A run killed at any point - even by ``kill -9`` in the middle of a write - leaves
a JSON-lines or CSV file whose complete records are complete rows; at most the
last record is torn. ``completed_inputs`` finds the end of the last complete
record, checks that everything before it is twoends output in the expected
format, then cuts the torn tail off the file and returns the inputs of the
complete rows, so appending the rest gives every input exactly once. Error rows
count as done: an input that failed is reported once, not retried forever.

A record ends at a newline - in CSV only at a newline outside quotes, because a
file name may hold a newline and the CSV writer quotes it: a row cut just after
such a newline is torn, not complete.

Inputs are compared by ``input_key``: the same file spelled ``dir/a.jpg``,
``./dir/a.jpg`` or ``/abs/dir/a.jpg`` is one input.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import sys
from typing import Iterator, Sequence

from .errors import ConfigError

__all__ = ["RESUMABLE", "completed_inputs", "input_key"]

RESUMABLE = ("jsonl", "csv")
_CHUNK = 1 << 16
_QUOTE_OR_NEWLINE = re.compile(rb'["\n]')


def input_key(input_id: str) -> str:
    """The key an input is compared by: a path made absolute and normal (links are not
    resolved: two links to one file are two inputs); ``<bytes #3>``-style ids as they are."""
    if input_id.startswith("<") and input_id.endswith(">"):
        return input_id
    return os.path.normcase(os.path.abspath(input_id))


def completed_inputs(path: str, fmt: str, columns: Sequence[str] | None = None) -> set[str]:
    """The ``input`` of every complete row in ``path`` (after trimming a torn last record).

    ``columns``: for CSV, the header the appending writer will use; a file written with
    other columns (e.g. without ``--include-vectors``) is refused rather than mixed.
    Anything that is not twoends output in ``fmt`` is a ConfigError naming the line.
    """
    if fmt not in RESUMABLE:
        raise ConfigError(
            f"--resume works with {' and '.join(RESUMABLE)} output (append-only), got {fmt!r}: use -o out.jsonl"
        )
    if not os.path.exists(path):
        return set()
    if not os.path.isfile(path):
        raise ConfigError(f"--resume: {path} is not a regular file; expected the output file of an earlier run")
    try:
        end = _last_record_end(path, quoted=fmt == "csv")
        with open(path, "rb") as f:
            text = io.TextIOWrapper(_Limited(f, end), encoding="utf-8", newline="")
            done = _jsonl_inputs(path, text) if fmt == "jsonl" else _csv_inputs(path, text, columns)
    except UnicodeDecodeError as e:
        raise ConfigError(
            f"--resume: {path} is not UTF-8 text ({e.reason} at byte {e.start}); it is not the "
            f"{fmt} output of twoends: pass another -o file"
        ) from None
    except OSError as e:
        raise ConfigError(f"--resume: cannot read {path} ({e.strerror or e})") from None
    if end != os.path.getsize(path):
        _check_tail(path, fmt, end)
        with open(path, "rb+") as f:
            f.truncate(end)  # only once the file is known to be ours
    return done


def _jsonl_inputs(path: str, lines: Iterator[str]) -> set[str]:
    done = set()
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            row = None
        if not isinstance(row, dict) or not isinstance(row.get("input"), str):
            raise ConfigError(
                f"--resume: line {n} of {path} is not a twoends JSON-lines row ({_clip(line)}); expected one "
                "JSON object with an 'input' per line. Pass another -o file, or remove the line"
            )
        done.add(row["input"])
    return done


def _csv_inputs(path: str, text: io.TextIOBase, columns: Sequence[str] | None) -> set[str]:
    from .writers import CSV_COLUMNS

    _raise_csv_field_limit()
    reader = csv.reader(text)
    header = next(reader, None)
    if header is None:
        return set()
    ours = (list(CSV_COLUMNS), list(CSV_COLUMNS) + ["logits", "probabilities"])
    if header not in ours:
        raise ConfigError(
            f"--resume: {path} does not start with the twoends CSV header (got {_clip(','.join(header))}); "
            "it is not the csv output of twoends: pass another -o file"
        )
    if columns is not None and header != list(columns):
        had = "with" if len(header) > len(CSV_COLUMNS) else "without"
        raise ConfigError(
            f"--resume: {path} was written {had} --include-vectors, and this run would append rows with other "
            f"columns; run with the same options (or another -o file)"
        )
    done = set()
    for row in reader:
        if row and len(row) != len(header):
            raise ConfigError(
                f"--resume: record {reader.line_num} of {path} has {len(row)} fields, expected {len(header)}; "
                "the file is not (only) twoends output: pass another -o file, or remove the record"
            )
        if row:
            done.add(row[0])
    return done


def _check_tail(path: str, fmt: str, end: int) -> None:
    """A torn tail is the start of one of our rows; anything else is not cut off the user's file."""
    from .writers import CSV_COLUMNS

    with open(path, "rb") as f:
        f.seek(end)
        tail = f.read(_CHUNK)
    if fmt == "jsonl":
        ours = tail.lstrip().startswith(b"{")
    else:  # a row of ours, or (nothing complete yet) the start of our header
        header = ",".join(CSV_COLUMNS).encode()
        ours = end > 0 or header.startswith(tail[: len(header)]) or tail.startswith(header)
    if not ours:
        raise ConfigError(
            f"--resume: {path} ends with {_clip(tail.decode('utf-8', 'replace'))}, which is not the start of a "
            f"twoends {fmt} row; it is not the output of an earlier run: pass another -o file"
        )


def _last_record_end(path: str, *, quoted: bool) -> int:
    """Byte offset just after the last newline that ends a record (outside quotes for CSV)."""
    end, pos, in_quotes = 0, 0, False
    with open(path, "rb") as f:
        while block := f.read(_CHUNK):
            if not quoted:
                nl = block.rfind(b"\n")
                if nl != -1:
                    end = pos + nl + 1
            else:
                for m in _QUOTE_OR_NEWLINE.finditer(block):
                    if m.group() == b'"':  # a doubled quote toggles twice, as it should
                        in_quotes = not in_quotes
                    elif not in_quotes:
                        end = pos + m.start() + 1
            pos += len(block)
    return end


class _Limited(io.RawIOBase):
    """The first ``limit`` bytes of a binary file: the complete records, not the torn tail."""

    def __init__(self, f, limit: int):
        self.f, self.left = f, limit

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        n = min(len(b), self.left)
        data = self.f.read(n)
        b[: len(data)] = data
        self.left -= len(data)
        return len(data)


def _raise_csv_field_limit() -> None:
    # a row written with --include-vectors holds thousands of numbers in one field,
    # over the csv module's default limit of 131,072 characters
    if csv.field_size_limit() < 1 << 30:
        csv.field_size_limit(min(sys.maxsize, 1 << 30))


def _clip(text: str, n: int = 60) -> str:
    text = text.strip()
    return repr(text if len(text) <= n else text[:n] + "...")
