"""Schemathesis against the running server's own OpenAPI document: its default checks find nothing.

A bounded run (fixed seed, a few hundred cases, the model name fixed) of
``schemathesis run`` with every default check: no 5xx, every status and body
as documented, schema-violating requests refused, schema-valid ones accepted.

Two statuses are added, each for a stated reason, to what two checks expect:

* schema-valid requests to /v1/predict and .../infer may get a 400: whether a
  string is the bytes of a decodable image, or a tensor's data holds
  prod(shape) numbers, is beyond JSON Schema (the documented body is as tight
  as JSON Schema allows: names, datatypes, shapes, limits and parameter ranges);
* a request over a documented size limit (more inputs than ``maxItems``) is
  refused with 413, the status for "too large", which Schemathesis does not list.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
SEED = 20240508

CONFIG = f"""
seed = {SEED}
workers = 1

[parameters]
name = "efficientnet_lite0"

[generation]
max-examples = 12

[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]

[[operations]]
include-path-regex = "(^/v1/predict$|/infer$)"

[operations.checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", "429"]
"""


def test_schemathesis_default_checks_pass(server, tmp_path):
    pytest.importorskip("schemathesis")
    exe = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("the schemathesis command is not installed beside this Python")
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    run = subprocess.run(
        [
            exe,
            "--config-file",
            str(config),
            "run",
            f"{server.url}/openapi.json",
            "--max-failures",
            "20",
            "--request-timeout",
            "60",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
    )
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-8000:]
    counts = re.search(r"(\d+) generated", out)
    assert counts is not None, out[-2000:]
    assert 200 <= int(counts.group(1)) <= 3000, out[-2000:]  # bounded, and more than a token run
    assert "Failures:" not in out and "Errors:" not in out, out[-4000:]
