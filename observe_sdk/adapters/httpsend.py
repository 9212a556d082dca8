"""One HTTP request for an adapter, with the failure classified for the base class's retries.

A refused connection raises :class:`~.base.BackendRefused` (given up at shutdown);
other connection errors, timeouts, 408, 429 and 5xx raise
:class:`~.base.TransientExportError` (retried with backoff); other 4xx raise
:class:`ExportError` (given up at once: sending the same payload again cannot
help).  ``http://``, ``https://`` and ``unix:///path/to.sock`` URLs work.
"""
from __future__ import annotations

import http.client
import math
import socket
import urllib.parse

from ..errors import BackendRefused, TransientExportError
from ..errors import ExportError as ExportError


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


def check_url(url: str, what: str, *, unix: bool = True) -> urllib.parse.SplitResult:
    """Parse ``url`` or raise a ValueError naming ``what`` it was for (``unix``: allow unix:///path)."""
    parts = urllib.parse.urlsplit(url)
    schemes = ("http", "https", "unix") if unix else ("http", "https")
    try:
        _ = parts.port    # a port that is not a number in 0-65535 raises here, not at the first send
    except ValueError:
        ok = False
    else:
        ok = parts.scheme in schemes and (parts.scheme == "unix" or bool(parts.hostname))
    if not ok:
        raise ValueError(f"{what} {url!r}: expected http://host[:port][/path]"
                         + (", https://... or unix:///path" if unix else " or https://..."))
    return parts


def check_timeout(seconds: float, what: str) -> float:
    """``seconds`` if it is a positive finite number, else a ValueError naming ``what``."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 < seconds < math.inf:
        raise ValueError(f"{what} must be a positive number of seconds, not {seconds!r}")
    return float(seconds)


def refuses_connections(address: str, timeout: float = 1.0) -> bool:
    """True when nothing listens at ``address`` (``http://host:port/...`` or ``host:port``):
    the connection is refused outright. Any other outcome, a timeout included, is False."""
    parts = urllib.parse.urlsplit(address if "//" in address else f"//{address}")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return False
    if not parts.hostname:
        return False
    try:
        socket.create_connection((parts.hostname, port), timeout=timeout).close()
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    return False


def send(url: str, body: bytes, headers: dict[str, str], *, timeout: float, method: str = "POST",
         path: str | None = None, what: str = "backend") -> bytes:
    """Send ``body`` to ``url`` (``path`` replaces the URL's path; needed for unix sockets).

    Returns the response body when the status is 2xx.
    """
    parts = check_url(url, what)
    if parts.scheme == "unix":
        conn: http.client.HTTPConnection = _UnixHTTPConnection(parts.path, timeout)
        target = path or "/"
    else:
        cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = cls(parts.hostname or "", parts.port, timeout=timeout)
        target = path if path is not None else (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        conn.request(method, target, body=body, headers=headers)
        resp = conn.getresponse()
        text = resp.read()
    except ConnectionRefusedError as exc:
        raise BackendRefused(f"{what} at {url}: connection refused (is it running?)") from exc
    except (OSError, http.client.HTTPException) as exc:
        raise TransientExportError(f"{what} at {url}: {exc}") from exc
    finally:
        conn.close()
    if resp.status in (408, 429) or resp.status >= 500:
        raise TransientExportError(f"{what} at {url}: HTTP {resp.status}")
    if resp.status >= 400:
        said = " ".join(text[:300].decode("utf-8", "replace").split())    # one line, whatever came back
        raise ExportError(f"{what} at {url} refused the payload: HTTP {resp.status} {said}".rstrip())
    return text
