"""Small real receivers for adapter tests, all on 127.0.0.1: an HTTP capture
server (Zipkin, the Datadog Logs API), a UDP listener (DogStatsD), and
Datadog's ``ddapm-test-agent`` run from its own venv (``make ddagent``)."""
from __future__ import annotations

import gzip
import json
import os
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
import zlib
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DDAGENT_BIN = ROOT / ".venv-ddagent" / "bin" / "ddapm-test-agent"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_body(handler: BaseHTTPRequestHandler) -> bytes:
    """The request body, decompressed as its Content-Encoding says (gzip, deflate)."""
    body = handler.rfile.read(int(handler.headers.get("Content-Length", "0")))
    encoding = handler.headers.get("Content-Encoding", "")
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    return body


def serve_http(port: int, handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    """An HTTP server on 127.0.0.1:``port`` (0: a free one) serving on a daemon thread."""
    ThreadingHTTPServer.allow_reuse_address = True
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def stop_http(server: ThreadingHTTPServer | None) -> None:
    if server is not None:
        server.shutdown()
        server.server_close()


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class HttpCapture:
    """Accepts any POST/PUT, keeps it, answers 202 (or 503 while refusing)."""

    def __init__(self, status: int = 202) -> None:
        self.requests: list[Request] = []
        self.status = status
        self.port = 0
        self._refuse = 0
        self._cond = threading.Condition()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def refuse(self, n: int) -> None:
        with self._cond:
            self._refuse = n

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        capture = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                body = read_body(self)
                with capture._cond:
                    if capture._refuse:
                        capture._refuse -= 1
                        status = 503
                    else:
                        status = capture.status
                        capture.requests.append(Request(self.command, self.path,
                                                        {k.lower(): v for k, v in self.headers.items()}, body))
                        capture._cond.notify_all()
                payload = b"{}"
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_POST = do_PUT = _handle

        return Handler

    def wait(self, count: int, timeout: float = 10.0) -> list[Request]:
        with self._cond:
            self._cond.wait_for(lambda: len(self.requests) >= count, timeout)
            return list(self.requests)

    def start(self) -> HttpCapture:
        self._server = serve_http(self.port, self._handler())
        self.port = self._server.server_address[1]
        return self

    def stop(self) -> None:
        stop_http(self._server)
        self._server = None

    def __enter__(self) -> HttpCapture:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class UdpListener:
    """Collects datagrams (DogStatsD lines) sent to 127.0.0.1:<port>."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.datagrams: list[str] = []
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"udp://127.0.0.1:{self.port}"

    def _run(self) -> None:
        while not self._stop:
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            self.datagrams.append(data.decode())

    def lines(self, count: int, timeout: float = 5.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = [line for d in self.datagrams for line in d.split("\n") if line]
            if len(lines) >= count:
                return lines
            time.sleep(0.02)
        return [line for d in self.datagrams for line in d.split("\n") if line]

    def close(self) -> None:
        self._stop = True
        self._thread.join(1)
        self.sock.close()


class DdTestAgent:
    """``ddapm-test-agent`` on free ports; read back with :meth:`traces`."""

    CHECKS = "trace_count_header,meta_tracer_version_header,trace_content_length"

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self._log: Any = None

    @staticmethod
    def available() -> bool:
        return DDAGENT_BIN.exists()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> DdTestAgent:
        args = [str(DDAGENT_BIN), "--host", "127.0.0.1", "--port", str(self.port),
                "--otlp-http-port", str(free_port()), "--otlp-grpc-port", str(free_port()),
                "--log-level", "WARNING"]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DD_", "OTEL_"))}
        env["ENABLED_CHECKS"] = self.CHECKS    # (its --enabled-checks flag does not parse lists)
        # its log goes to a file: a pipe nobody reads would stall the agent once full
        self._log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=self._log, env=env)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._log.seek(0)
                said = self._log.read().decode(errors="replace")[-2000:]
                self.stop()
                raise RuntimeError(f"ddapm-test-agent exited: {said}")
            try:
                self.get("/info")
                return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("ddapm-test-agent did not start within 30s")

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=5) as resp:
            body = resp.read()
        try:
            return json.loads(body)
        except ValueError:
            return body.decode()

    def clear(self) -> None:
        self.get("/test/session/clear")
        self.get("/test/trace_check/clear")

    def traces(self, count: int = 1, timeout: float = 10.0) -> list[list[dict]]:
        deadline = time.monotonic() + timeout
        while True:
            traces = self.get("/test/traces")
            if len(traces) >= count or time.monotonic() > deadline:
                return traces
            time.sleep(0.05)

    def check_failures(self) -> Any:
        try:
            return self.get("/test/trace_check/failures")
        except urllib.error.HTTPError as exc:   # the agent answers 400 with the failures
            return exc.read().decode()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None
