"""Serving an ASGI app (the cod API) with uvicorn on a thread, on a socket bound up front."""
from __future__ import annotations

import socket
import threading
import time
from typing import Any

import uvicorn


def reachable_host(bind_host: str) -> str:
    """The host to put in URLs of a server bound to ``bind_host``: every interface (0.0.0.0) is
    reached on this machine at 127.0.0.1 (and a client's token goes only to the URL it was given)."""
    return "127.0.0.1" if bind_host in ("", "0.0.0.0") else bind_host


class ApiServer:
    """``start()`` binds ``host:port`` (0 = a free port, then in :attr:`port`) and serves ``app``."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 1234) -> None:
        if not 0 <= port <= 65535:
            raise ValueError(f"port {port} is not between 0 and 65535")
        self.app = app
        self.host = host
        self.port = port
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def bind(self) -> None:
        # proto must be IPPROTO_TCP for asyncio to set TCP_NODELAY on accepted connections
        # (with proto 0 every response waits ~40 ms for a delayed ACK)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            raise OSError(f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}") from None
        sock.listen(128)
        self._socket = sock
        self.port = sock.getsockname()[1]

    def start(self, timeout_s: float = 10.0) -> None:
        if self._socket is None:
            self.bind()
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]},
                                        name="cod-api", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the API server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            if self._thread is not None:
                self._thread.join(timeout=10)
            self._server = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None
