"""Helpers for the server tests: start and stop a real ``twoends serve``, and a tiny HTTP client.

Every request has a timeout and every server is stopped by whoever started it,
so no test can hang or leave a process behind.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 180  # importing torch and loading the model on a busy 2-core machine
REQUEST_TIMEOUT_S = 60

#: what the session server is started with (the tests check these limits)
SERVER_ARGS = [
    "--max-batch-size",
    "8",
    "--max-delay-ms",
    "20",
    "--max-body-mb",
    "8",
    "--max-pixels",
    "1000000",
    "--timeout-s",
    "60",
    "--no-access-log",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Response:
    def __init__(self, status: int, headers: dict, body: bytes):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"Response({self.status}, {self.body[:300]!r})"


class Client:
    """Plain http.client against one host:port; a new connection per request."""

    def __init__(self, port: int, host: str = "127.0.0.1"):
        self.host, self.port = host, port
        self.url = f"http://{host}:{port}"

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict | None = None,
        timeout: float = REQUEST_TIMEOUT_S,
    ) -> Response:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            chunked = body is not None and not isinstance(body, (bytes, bytearray))
            conn.request(method, path, body=body, headers=headers or {}, encode_chunked=chunked)
            r = conn.getresponse()
            return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
        finally:
            conn.close()

    def get(self, path: str, **kw) -> Response:
        return self.request("GET", path, **kw)

    def post_json(self, path: str, obj, **kw) -> Response:
        return self.request("POST", path, json.dumps(obj).encode(), {"Content-Type": "application/json"}, **kw)

    def post_file(
        self, path: str, filename: str, data: bytes, field: str = "file", content_type: str = "image/jpeg"
    ) -> Response:
        body, ctype = multipart(field, filename, data, content_type)
        return self.request("POST", path, body, {"Content-Type": ctype})


def multipart(field: str, filename: str, data: bytes, content_type: str = "image/jpeg") -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def start_server(args: list[str], port: int, log_path: Path) -> subprocess.Popen:
    log = open(log_path, "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "twoends", "serve", "--host", "127.0.0.1", "--port", str(port), *args],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    client = Client(port)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"twoends serve exited with {proc.returncode}:\n{log_path.read_text(errors='replace')}")
        try:
            if client.get("/v2/health/ready", timeout=2).status == 200:
                return proc
        except OSError:
            pass
        time.sleep(0.25)
    stop_server(proc)
    raise RuntimeError(
        f"twoends serve was not ready within {READY_TIMEOUT_S} s:\n{log_path.read_text(errors='replace')}"
    )


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)  # uvicorn's graceful shutdown
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


def raw(port: int, parts, half_close: bool = False, timeout: float = 30) -> bytes:
    """Send raw bytes (stopping quietly if the server hangs up); return the reply's head and body so far.

    For requests the server answers before reading them whole (a body over the
    limit), where http.client would fail on a broken pipe before reading the answer.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            for part in parts:
                s.sendall(part)
            if half_close:
                s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        data = b""
        try:
            while True:
                head, sep, body = data.partition(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":", 1)[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    None,
                )
                if sep and length is not None and len(body) >= length:
                    break
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except OSError:
            pass
        return data


def raw_json(reply: bytes) -> tuple[int, dict]:
    """(status, JSON body) of a raw reply."""
    head, _, body = reply.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)


class Running:
    """An ASGI app under uvicorn in a thread of this process, on 127.0.0.1 (a free port)."""

    def __init__(self, app):
        self.port = free_port()
        import uvicorn

        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Client:
        self.thread.start()
        deadline = time.monotonic() + READY_TIMEOUT_S  # the app's start-up runs a warm-up batch
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "the in-process server did not start"
            time.sleep(0.02)
        return Client(self.port)

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(20)
