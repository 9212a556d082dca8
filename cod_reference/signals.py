"""Waiting for the operator's stop: Ctrl-C (SIGINT) or SIGTERM."""
from __future__ import annotations

import signal
import threading


def wait_for_stop() -> None:
    """Block until SIGINT or SIGTERM arrives; the handlers in place before are put back."""
    stopping = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stopping.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stopping.wait(0.5):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
