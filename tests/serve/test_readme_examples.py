"""The client examples in README's serve section run as written against a real server, and print what they say.

Each ``<!-- example: NAME -->`` block is run in its own process (Triton's and
KServe's client libraries cannot share one) with only the address and the
photo replaced: ``localhost:8000`` / ``localhost:8001`` by the session
server's HTTP / gRPC ports and ``cat.jpg`` by a real photo of a cat (chelsea,
written by tests/photos.py). Every ``print(...)  # text`` line must print that text.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.photos import write_photos

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"<!-- example: ([\w-]+) -->\n```python\n(.*?)```", re.S)


def _examples() -> dict[str, str]:
    return dict(BLOCK.findall((ROOT / "README.md").read_text(encoding="utf-8")))


def test_the_readme_has_both_examples():
    assert set(_examples()) == {"triton-http", "kserve-grpc"}


@pytest.mark.parametrize("name", ["triton-http", "kserve-grpc"])
def test_readme_example_runs_as_written(name, server, tmp_path):
    pytest.importorskip("tritonclient.http" if name.startswith("triton") else "grpc")
    code = _examples()[name]
    cat = write_photos(tmp_path / "photos")["chelsea"]
    runnable = (
        code.replace("localhost:8000", f"127.0.0.1:{server.port}")
        .replace("localhost:8001", f"127.0.0.1:{server.grpc_port}")
        .replace('"cat.jpg"', repr(str(cat)))
    )
    run = subprocess.run([sys.executable, "-c", runnable], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    if name.startswith("kserve") and "No module named 'kserve'" in run.stderr:
        pytest.skip("kserve is not installed")
    assert run.returncode == 0, run.stderr[-3000:]
    said = [
        line.split("#", 1)[1].strip() for line in code.splitlines() if line.strip().startswith("print(") and "#" in line
    ]
    printed = [line.strip() for line in run.stdout.splitlines() if line.strip()]
    assert printed == said, f"README says {said}, the example printed {printed}"
