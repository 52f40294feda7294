"""Hostile requests against a ``twoends serve`` on loopback, each bounded and timed (for tests and bench/attacks.py).

Every socket has a timeout and every loop a fixed count, so an attack ends by
itself whatever the server does.
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

MODEL = "efficientnet_lite0"
INFER = f"/v2/models/{MODEL}/infer"
HEADER_TIMEOUT_S = 2.0
#: what the attacked server is started with: 20 MB bodies pass the body limit and meet the other limits
SERVER_ARGS = [
    "--max-body-mb",
    "24",
    "--max-pixels",
    "1000000",
    "--timeout-s",
    "30",
    "--max-inputs",
    "64",
    "--header-timeout-s",
    str(HEADER_TIMEOUT_S),
    "--no-access-log",
]
GIF = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x00\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"


@dataclass
class Result:
    what: str
    status: int
    kind: str
    error: str
    seconds: float


def request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict | None = None,
    what: str = "",
    timeout: float = 60,
) -> Result:
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
    finally:
        conn.close()
    seconds = time.perf_counter() - started
    kind = error = ""
    if r.getheader("content-type", "").startswith("application/json") and r.status >= 400:
        parsed = json.loads(data)
        if isinstance(parsed["error"], dict):  # /v1
            kind, error = parsed["error"]["type"], parsed["error"]["message"]
        else:
            kind, error = parsed["type"], parsed["error"]
    elif r.status >= 400:
        kind, error = "not JSON", data[:200].decode(errors="replace")
    return Result(what, r.status, kind, error, seconds)


def rss_mb(pid: int, field_name: str = "VmRSS") -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field_name} for process {pid}")


class Target:
    """The attacked server: its port, its process (for RSS) and a real photo to check it still answers."""

    def __init__(self, port: int, pid: int, photo: bytes):
        self.port, self.pid, self.photo = port, pid, photo
        self.baseline_rss_mb = 0.0
        self.health: HealthWatch | None = None

    def warm_up(self) -> None:
        for _ in range(3):
            assert self.predicts_a_cat()
        self.baseline_rss_mb = rss_mb(self.pid)

    def peak_rss_mb(self) -> float:
        return rss_mb(self.pid, "VmHWM")

    def predicts_a_cat(self) -> bool:
        """The photo (chelsea) is answered with one of ImageNet's cat classes, 281-285."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request("POST", "/v1/predict", body=self.photo, headers={"Content-Type": "image/jpeg"})
            return 281 <= json.loads(conn.getresponse().read())["index"] <= 285
        finally:
            conn.close()


class HealthWatch:
    """Polls /v2/health/live every ``every_s`` on a fresh connection; keeps each answer's latency."""

    def __init__(self, port: int, every_s: float = 0.05):
        self.port, self.every_s = port, every_s
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "HealthWatch":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                r = request(self.port, "GET", "/v2/health/live", timeout=5)
                self.latencies.append(r.seconds)
                if r.status != 200:
                    self.failures.append(f"status {r.status}")
            except OSError as exc:
                self.failures.append(repr(exc))
            self._stop.wait(self.every_s)

    def worst(self) -> float:
        return max(self.latencies, default=0.0)


# --- the attacks ------------------------------------------------------------------------------


def gif_batch_json(port: int, copies: int) -> Result:
    """One JSON request holding ``copies`` copies of a 43-byte GIF as a BYTES batch (about 0.5 MB)."""
    b64 = base64.b64encode(GIF).decode()
    body = json.dumps({"inputs": [{"name": "image", "shape": [copies], "datatype": "BYTES", "data": [b64] * copies}]})
    return request(port, "POST", INFER, body.encode(), {"Content-Type": "application/json"}, f"{copies} GIFs, JSON")


def gif_batch_binary(port: int, copies: int) -> Result:
    """The same batch as binary tensor data (4-byte length + bytes per element)."""
    blob = (len(GIF).to_bytes(4, "little") + GIF) * copies
    head = json.dumps(
        {
            "inputs": [
                {"name": "image", "shape": [copies], "datatype": "BYTES", "parameters": {"binary_data_size": len(blob)}}
            ]
        }
    ).encode()
    return request(
        port, "POST", INFER, head + blob, {"Inference-Header-Content-Length": str(len(head))}, f"{copies} GIFs, binary"
    )


def _big_body(kind: int) -> bytes:
    """About 20 MB of JSON tensor: 10M one-digit zeros; 190k 100-digit decimals, under the element limit (so
    parsed: slow numbers to read) and not the 150528 the shape needs; or 4900 4001-digit integers (quadratic
    to read as integers)."""
    n, number = [(10_000_000, b"0"), (190_000, b"0." + b"1234567890" * 10), (4900, b"1" + b"0" * 4000)][kind]
    head = b'{"inputs": [{"name": "input", "shape": [1, 3, 224, 224], "datatype": "FP32", "data": ['
    return head + b",".join([number] * n) + b"]}]}"


def big_bodies(port: int, clients: int, rounds: int) -> list[Result]:
    bodies = [_big_body(kind) for kind in range(3)]
    jobs = [(bodies[(c + r) % 3], f"20 MB tensor, client {c} round {r}") for c in range(clients) for r in range(rounds)]
    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(lambda job: request(port, "POST", INFER, job[0], {}, job[1], timeout=120), jobs))


@dataclass
class SlowHeaders:
    connections: int
    dropped: int = 0
    longest_s: float = 0.0
    kept: list = field(default_factory=list)


def slow_headers(port: int, connections: int, header_timeout_s: float) -> SlowHeaders:
    """Connections that send half a request head and then a byte a second; each must be dropped by the server."""
    outcome = SlowHeaders(connections)
    socks = []
    for i in range(connections):
        s = socket.create_connection(("127.0.0.1", port), timeout=1)
        s.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n" if i % 2 else b"")  # half a head, or nothing
        socks.append((s, time.monotonic()))
    deadline = time.monotonic() + header_timeout_s + 5
    open_ = list(socks)
    while open_ and time.monotonic() < deadline:
        still = []
        for s, opened in open_:
            try:
                s.sendall(b"X")  # one more byte of a header that never ends
                s.settimeout(0.05)
                closed = s.recv(1024) == b""
            except socket.timeout:
                closed = False
            except OSError:
                closed = True
            if closed:
                outcome.dropped += 1
                outcome.longest_s = max(outcome.longest_s, time.monotonic() - opened)
                s.close()
            else:
                still.append((s, opened))
        open_ = still
        time.sleep(0.5)
    outcome.kept = [time.monotonic() - opened for _, opened in open_]
    for s, _ in open_:
        s.close()
    return outcome


def sliver_png(size: tuple[int, int]) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", size, 128).save(buf, "PNG", optimize=True)
    return buf.getvalue()


def sliver(port: int, size: tuple[int, int]) -> Result:
    """A one-pixel-thin PNG: wide ones to /v1/predict, tall ones to the protocol's infer (both entry points)."""
    png = sliver_png(size)
    what = f"{size[0]}x{size[1]} PNG ({len(png)} B)"
    if size[0] >= size[1]:
        return request(port, "POST", "/v1/predict", png, {"Content-Type": "image/png"}, what + ", /v1", timeout=120)
    body = json.dumps(
        {"inputs": [{"name": "image", "shape": [1], "datatype": "BYTES", "data": [base64.b64encode(png).decode()]}]}
    ).encode()
    return request(port, "POST", INFER, body, {}, what + ", /v2", timeout=120)


@dataclass
class Shutdown:
    statuses: set = field(default_factory=set)
    plain_text: list = field(default_factory=list)
    held_answer: tuple = ()
    exit_code: int | None = None
    exit_s: float = 0.0
    answered: int = 0


def shutdown_under_load(port: int, proc, photo: bytes, clients: int = 8) -> Shutdown:
    """SIGINT while clients send photos and one request is stuck mid-body; every answer must be JSON or 200."""
    outcome = Shutdown()
    stop = threading.Event()
    lock = threading.Lock()

    def client() -> None:
        while not stop.is_set():
            try:
                r = request(port, "POST", "/v1/predict", photo, {"Content-Type": "image/jpeg"}, timeout=30)
            except OSError:
                return  # the server stopped listening: this client is done
            with lock:
                outcome.answered += 1
                outcome.statuses.add(r.status)
                if r.kind == "not JSON":
                    outcome.plain_text.append((r.status, r.error))

    held = socket.create_connection(("127.0.0.1", port), timeout=30)
    held.sendall(f'POST {INFER} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{{"inputs"'.encode())
    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    time.sleep(2.0)
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    try:
        reply = b""
        while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
            chunk = held.recv(65536)
            if not chunk:
                break
            reply += chunk
        head, _, body = reply.partition(b"\r\n\r\n")
        parsed = json.loads(body) if body else {}
        outcome.held_answer = (int(head.split(b" ")[1]), parsed.get("type")) if head else ()
    except (OSError, ValueError) as exc:
        outcome.held_answer = ("no answer", repr(exc))
    finally:
        held.close()
    try:
        outcome.exit_code = proc.wait(timeout=30)
    except Exception:  # noqa: BLE001 - reported as no exit; stop_server kills it
        outcome.exit_code = None
    outcome.exit_s = time.monotonic() - started
    stop.set()
    for t in threads:
        t.join(35)
    return outcome
