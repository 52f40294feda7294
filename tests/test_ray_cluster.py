"""Scale-out that survives a lost node: a real multi-node Ray cluster on this machine.

``ray.cluster_utils.Cluster`` starts a head (no CPUs: it runs the driver and holds the
input blocks) and two worker nodes, each its own raylet with 1 CPU. ``twoends predict
--engine ray --ray-address`` joins it in a subprocess on a 2,000-input job (real JPEGs and
a few corrupt files). Once rows stream back, one worker node is removed: its raylet and
its actor die, with blocks in flight. The job must finish on the remaining node with
every input exactly once, in input order, and an error row for each bad file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.photos import load_photo

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")
pytest.importorskip("torch")
from ray.cluster_utils import Cluster  # noqa: E402

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
N = 2000
BAD = {7, 500, 1001, 1999}  # corrupt files, spread over the job


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("cluster_inputs")
    small = []
    for name in ("chelsea", "coffee", "astronaut", "rocket"):
        path = root / f"_{name}.bin"
        load_photo(name).resize((96, 72)).save(path, format="JPEG", quality=85)
        small.append(path.read_bytes())
    folder = root / "photos"
    folder.mkdir()
    for i in range(N):
        data = b"\xff\xd8\xff\xe0 not a whole JPEG" if i in BAD else small[i % len(small)]
        (folder / f"img{i:05d}.jpg").write_bytes(data)
    return folder


@pytest.fixture(scope="module")
def cluster():
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    workers = [c.add_node(num_cpus=1) for _ in range(2)]
    c.wait_for_nodes()
    yield c, workers
    c.shutdown()


def _rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]


def test_a_worker_node_lost_mid_job_costs_no_input_and_no_order(cluster, folder, tmp_path):
    c, workers = cluster
    out = tmp_path / "out.jsonl"
    cmd = [
        sys.executable,
        "-m",
        "twoends",
        "predict",
        "--engine",
        "ray",
        "--ray-address",
        c.address,
        str(folder),
        "-o",
        str(out),
        "--batch-size",
        "8",
        "--top-k",
        "3",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 400  # a hang guard for the wait, not a timing claim
        while len(_rows(out)) < 200 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        written_before = len(_rows(out))
        assert proc.poll() is None, f"the job ended before the node could be removed: {proc.stderr.read()[-3000:]}"
        assert 200 <= written_before < N, written_before
        c.remove_node(workers[0])  # kills that raylet, its worker processes and the objects it held
        _, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    rows = _rows(out)
    assert proc.returncode == 1, err[-3000:]  # some inputs failed (the corrupt ones), the job finished
    assert f"{N} inputs: {N - len(BAD)} predicted, {len(BAD)} failed" in err
    want = [str(folder / f"img{i:05d}.jpg") for i in range(N)]
    assert [r["input"] for r in rows] == want  # every input exactly once, in input order
    failed = {i for i, r in enumerate(rows) if r["error"] is not None}
    assert failed == BAD and all(rows[i]["error"]["type"] == "DecodeError" for i in BAD)
    assert all(281 <= rows[i]["index"] <= 285 for i in range(0, N, 4) if i not in BAD)  # chelsea: a cat class
