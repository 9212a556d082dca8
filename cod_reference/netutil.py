"""Small socket helpers for the processes of a network: free ports and waiting for a listener."""
from __future__ import annotations

import socket
import time
from collections.abc import Callable


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the caller binds it soon after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host if host not in ("", "0.0.0.0") else "127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(host: str, port: int, timeout_s: float, alive: Callable[[], bool] = lambda: True) -> bool:
    """Whether ``host:port`` accepts connections within ``timeout_s`` (stops early once ``alive()`` is False)."""
    target = "127.0.0.1" if host in ("", "0.0.0.0") else host
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not alive():
            return False
        try:
            with socket.create_connection((target, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.02)
    return False
