"""Resumable output: which inputs a previous (possibly killed) run already wrote.

A run killed at any point - even by ``kill -9`` in the middle of a write - leaves
a JSON-lines or CSV file whose complete lines are complete rows; at most the
last line is torn. ``completed_inputs`` cuts a torn tail off the file (it has no
newline yet, because every row is written as one line ending in "\\n" and
flushed) and returns the inputs of the complete rows, so appending the rest
gives every input exactly once. Error rows count as done: an input that failed
is reported once, not retried forever.
"""

from __future__ import annotations

import csv
import io
import json
import os

from .errors import ConfigError

__all__ = ["RESUMABLE", "completed_inputs"]

RESUMABLE = ("jsonl", "csv")


def completed_inputs(path: str, fmt: str) -> set[str]:
    """The ``input`` of every complete row in ``path`` (after trimming a torn last line)."""
    if fmt not in RESUMABLE:
        raise ConfigError(f"--resume works with {' and '.join(RESUMABLE)} output (append-only), got {fmt!r}: use -o out.jsonl")
    if not os.path.exists(path):
        return set()
    _trim_torn_tail(path)
    with open(path, encoding="utf-8", newline="") as f:
        if fmt == "jsonl":
            return {json.loads(line)["input"] for line in f if line.strip()}
        return {row["input"] for row in csv.DictReader(f)}


def _trim_torn_tail(path: str) -> None:
    with open(path, "rb+") as f:
        f.seek(0, io.SEEK_END)
        size = f.tell()
        if size == 0:
            return
        # walk back to the last newline; everything after it is a row cut off mid-write
        pos, chunk = size, 1 << 16
        while pos > 0:
            start = max(0, pos - chunk)
            f.seek(start)
            block = f.read(pos - start)
            nl = block.rfind(b"\n")
            if nl != -1:
                end = start + nl + 1
                if end != size:
                    f.truncate(end)
                return
            pos = start
        f.truncate(0)  # not one complete line: nothing was written
