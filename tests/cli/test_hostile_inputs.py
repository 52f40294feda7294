"""`twoends predict` on a folder an attacker (or a messy disk) would hand it.

Real files: symlink loops (files and folders), a broken link, a FIFO named like an image,
20000x1 and 1x20000 PNG slivers (a few hundred bytes that would resize to gigabytes),
a name with a newline and quotes, unreadable files and folders. Every entry gives exactly
one row (a prediction or an error row); nothing hangs (a subprocess timeout is the hang
guard, not a timing claim); peak memory stays under PEAK_MB, measured in the child by
getrusage. Then every spelling of the folder resumes to nothing new, a CSV cut inside a
quoted name resumes to one row per entry, and wrong resume/output files are exit 2
before any model loads.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.photos import load_photo

ROOT = Path(__file__).resolve().parents[2]
# the run measures ~750 MB (torch + the model); a resized sliver alone would be ~5 GB
PEAK_MB = 1500
WEIRD = 'we"ird\nname, here.jpg'

# runs the CLI in this process and reports its own peak memory, whatever the exit status. VmHWM is
# the peak of this process's own address space; getrusage's ru_maxrss is not: Linux carries the
# parent's peak across fork/exec into the child's, so inside a long pytest session it reported the
# session's 1.7-3.2 GB, not the CLI's ~0.75 GB
RUNNER = """
import json, sys
from twoends.cli import main
try:
    main(sys.argv[2:], prog_name="twoends")
finally:
    with open("/proc/self/status") as status:
        hwm = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    with open(sys.argv[1], "w") as f:
        json.dump({"peak_mb": hwm / 1024}, f)
"""


def cli(*args, cwd, tmp_path):
    report = tmp_path / f"peak{len(list(tmp_path.glob('peak*')))}.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run(
        [sys.executable, "-c", RUNNER, str(report), *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )  # a hang guard: a FIFO read would block forever
    r.peak_mb = json.loads(report.read_text())["peak_mb"] if report.exists() else None
    return r


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    base = tmp_path_factory.mktemp("hostile")
    d = base / "photos"
    d.mkdir()
    load_photo("chelsea").save(d / "good1.jpg", quality=90)
    load_photo("coffee").save(d / "good2.png")
    load_photo("chelsea").resize((64, 48)).save(d / WEIRD, format="JPEG")
    os.symlink("loop_b.jpg", d / "loop_a.jpg")
    os.symlink("loop_a.jpg", d / "loop_b.jpg")
    os.symlink("nowhere.jpg", d / "dangling.jpg")
    (d / "sub").mkdir()
    os.symlink("..", d / "sub" / "up")  # a folder loop: followed once
    os.mkfifo(d / "fifo.jpg")
    Image.new("RGB", (20000, 1)).save(d / "sliver_wide.png")
    Image.new("RGB", (1, 20000)).save(d / "sliver_tall.png")
    ok = {"good1.jpg", "good2.png", WEIRD}
    bad = {"loop_a.jpg", "loop_b.jpg", "dangling.jpg", "fifo.jpg", "sliver_wide.png", "sliver_tall.png"}
    return base, d, ok, bad


def _rows_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_every_entry_is_one_row_nothing_hangs_and_memory_is_bounded(hostile, tmp_path):
    base, d, ok, bad = hostile
    out = tmp_path / "out.jsonl"
    r = cli("predict", "photos", "-o", out, "--batch-size", "4", cwd=base, tmp_path=tmp_path)
    assert r.returncode == 1, r.stderr[-3000:]  # some inputs failed, the run finished
    rows = _rows_jsonl(out)
    names = [os.path.basename(row["input"]) for row in rows]
    assert sorted(names) == sorted(ok | bad) and len(names) == len(set(names))  # one row per entry
    by_name = {os.path.basename(row["input"]): row for row in rows}
    assert all(by_name[n]["error"] is None for n in ok)
    assert all(by_name[n]["error"]["type"] in ("DecodeError", "ImageTooLargeError") for n in bad)
    assert "FIFO" in by_name["fifo.jpg"]["error"]["message"]
    assert "symbolic links" in by_name["loop_a.jpg"]["error"]["message"]
    for sliver in ("sliver_wide.png", "sliver_tall.png"):
        assert by_name[sliver]["error"]["type"] == "ImageTooLargeError", by_name[sliver]["error"]
    assert r.peak_mb is not None and r.peak_mb < PEAK_MB, r.peak_mb
    # a FIFO named on the command line is one error row too
    r = cli("predict", d / "fifo.jpg", "--format", "jsonl", cwd=base, tmp_path=tmp_path)
    assert r.returncode == 1 and "FIFO" in json.loads(r.stdout)["error"]["message"]


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_every_spelling_of_the_folder_resumes_to_nothing_new(hostile, tmp_path, fmt):
    base, d, ok, bad = hostile
    out = tmp_path / f"out.{fmt}"
    assert cli("predict", "photos", "-o", out, cwd=base, tmp_path=tmp_path).returncode == 1
    before = out.read_bytes()
    for spelling in ("./photos", str(d), "photos/", "photos//", "../" + base.name + "/photos", str(d) + "/./"):
        r = cli("predict", spelling, "-o", out, "--resume", cwd=base, tmp_path=tmp_path)
        assert r.returncode == 0 and "0 inputs" in r.stderr, (spelling, r.stderr[-2000:])
        assert out.read_bytes() == before, spelling


def test_a_csv_cut_inside_a_quoted_name_resumes_to_one_row_per_entry(hostile, tmp_path):
    base, d, ok, bad = hostile
    out = tmp_path / "out.csv"
    assert cli("predict", "photos", "-o", out, "--batch-size", "2", cwd=base, tmp_path=tmp_path).returncode == 1
    data = out.read_bytes()
    cut = data.index(b'we""ird\n') + len(b'we""ird\n')  # inside the quoted name, just after its newline
    out.write_bytes(data[:cut])
    r = cli("predict", "photos", "-o", out, "--resume", cwd=base, tmp_path=tmp_path)
    assert r.returncode == 0 and "1 to go" in r.stderr, r.stderr[-2000:]  # only the torn row again
    rows = list(csv.DictReader(io.StringIO(out.read_text(), newline="")))
    names = [os.path.basename(row["input"]) for row in rows]
    assert sorted(names) == sorted(ok | bad) and len(names) == len(set(names))


def test_wrong_resume_files_and_outputs_are_exit_2_before_the_model_loads(hostile, tmp_path):
    base, d, ok, bad = hostile
    garbage = tmp_path / "garbage.jsonl"
    garbage.write_text('{"input": "photos/good1.jpg"}\nnot json at all\n')
    other = tmp_path / "other.csv"
    other.write_text('{"input": "photos/good1.jpg"}\n')  # JSON lines written to a .csv
    no_dir = tmp_path / "missing" / "out.jsonl"
    cases = [
        (["-o", garbage, "--resume"], "line 2"),
        (["-o", other, "--resume"], "not the csv output"),
        (["-o", no_dir], "does not exist"),
        (["-o", tmp_path], "is a directory"),  # click says it
        (["-o", tmp_path / "out.json", "--resume"], "--resume works with"),
    ]
    for extra, words in cases:
        # an unknown model: were it looked up first, that would be the error
        r = cli("predict", "photos", "-m", "no_such_model", *extra, cwd=base, tmp_path=tmp_path)
        assert r.returncode == 2 and words in r.stderr, (extra, r.stderr[-1500:])
        assert "Traceback" not in r.stderr and "unknown model" not in r.stderr
    assert garbage.read_text() == '{"input": "photos/good1.jpg"}\nnot json at all\n'  # never trimmed


@pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0,
    reason="root reads files whatever their permissions (chmod 000 stops other users only)",
)
def test_unreadable_files_and_folders_are_error_rows(tmp_path):
    d = tmp_path / "photos"
    (d / "locked").mkdir(parents=True)
    load_photo("chelsea").save(d / "good.jpg")
    load_photo("chelsea").save(d / "locked" / "inside.jpg")
    load_photo("chelsea").save(d / "secret.jpg")
    os.chmod(d / "secret.jpg", 0)
    os.chmod(d / "locked", 0)
    try:
        r = cli("predict", "photos", "--format", "jsonl", cwd=tmp_path, tmp_path=tmp_path)
    finally:
        os.chmod(d / "locked", 0o755)
        os.chmod(d / "secret.jpg", 0o644)
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert r.returncode == 1 and len(rows) == 3
    errors = {os.path.basename(row["input"]): row["error"] for row in rows if row["error"]}
    assert set(errors) == {"locked", "secret.jpg"} and all("ermission" in e["message"] for e in errors.values())
