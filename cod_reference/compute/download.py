"""Fetching ``urlDownload`` inputs without letting a job reach into the node's own network.

A job names the URL, so the URL is the attacker's: by default only ``http``/``https`` to
public addresses is fetched. The host name is resolved here and the connection goes to
an address that was checked (a name that resolves to loopback, or re-resolves
differently a moment later, gets nowhere); every redirect is checked the same way.
Loopback, link-local, private, multicast, unspecified and reserved addresses are
refused unless the node's operator allows the host name or a network containing the
address (``--allow-url-host``).

A download is part of its execution: it ends at the execution's deadline or when the
execution is cancelled (a watcher shuts the socket down, so a server that sends a byte
every few seconds cannot hold it), and at the operator's size and time limits.
"""
from __future__ import annotations

import errno
import http.client
import ipaddress
import os
import posixpath
import select
import socket
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from ..errors import CodError
from ..executor.fs import open_nofollow
from .paths import plain_name

__all__ = ["Cancelled", "Deadline", "DownloadError", "UrlGuard", "download"]

MAX_REDIRECTS = 5
IDLE_TIMEOUT_S = 30.0       # a connection silent this long is given up (a retry may follow)
_CONNECT_POLL_S = 0.05
_CHUNK = 1 << 16
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class DownloadError(CodError):
    """The download failed or was refused; the message says why (and names the URL).
    ``final``: trying again cannot help (a refused address, an HTTP 4xx, too large)."""

    def __init__(self, message: str, final: bool = False) -> None:
        super().__init__(message)
        self.final = final


class DownloadTimeout(DownloadError):
    """The execution's deadline or the node's download time limit passed."""

    def __init__(self, message: str) -> None:
        super().__init__(message, final=True)


class Cancelled(CodError):
    """The execution was cancelled while its inputs were being prepared."""


@dataclass
class Deadline:
    """When an execution must end (monotonic seconds; None: never) and its cancel event."""

    at: float | None
    cancel: threading.Event

    def remaining(self) -> float | None:
        return None if self.at is None else self.at - time.monotonic()


class UrlGuard:
    """Which hosts a ``urlDownload`` may reach (the operator's allowances on top of "public only")."""

    def __init__(self, allow: list[str]) -> None:
        self.hosts: set[str] = set()
        self.networks: list[_Network] = []
        for entry in allow:
            try:
                self.networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                self.hosts.add(entry.lower().rstrip("."))

    def addresses(self, url: str) -> tuple[urllib.parse.SplitResult, list[str]]:
        """The parts of ``url`` and the addresses it may be fetched from; raises DownloadError."""
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise DownloadError(f"{url}: only http and https URLs are fetched, not {parts.scheme or 'none'!r}",
                                final=True)
        host = (parts.hostname or "").rstrip(".")
        if not host:
            raise DownloadError(f"{url}: the URL has no host")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, ValueError) as exc:
            raise DownloadError(f"{url}: cannot resolve {host}: {getattr(exc, 'strerror', None) or exc}") from None
        found = list(dict.fromkeys(str(info[4][0]) for info in infos))
        if host.lower() in self.hosts:
            return parts, found
        allowed = [a for a in found if self._address_allowed(ipaddress.ip_address(a))]
        if not allowed:
            raise DownloadError(f"{url}: {host} resolves to {', '.join(found)}, which this node does not fetch from "
                                "(loopback, link-local, private, multicast and reserved addresses are refused "
                                "unless the operator allows them with --allow-url-host)", final=True)
        return parts, allowed

    def _address_allowed(self, address: _Address) -> bool:
        if any(address in net for net in self.networks):
            return True
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return address.is_global and not address.is_multicast


def download(url: str, dest_dir: Path, guard: UrlGuard, deadline: Deadline, *, max_bytes: int,
             time_limit_s: float) -> Path:
    """Fetch ``url`` into ``dest_dir`` (as the URL's file name); raises DownloadError,
    DownloadTimeout (deadline or time limit) or Cancelled."""
    limit_at = time.monotonic() + time_limit_s
    if deadline.at is not None and deadline.at <= limit_at:
        end, why = Deadline(deadline.at, deadline.cancel), "the execution's timeout"
    else:
        end, why = Deadline(limit_at, deadline.cancel), f"the node's download time limit of {time_limit_s:g}s"
    name = posixpath.basename(urllib.parse.urlsplit(url).path)
    if plain_name(name):
        name = "download"
    path = dest_dir / name
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        location = _fetch(current, path, guard, end, max_bytes, why)
        if location is None:
            return path
        current = urllib.parse.urljoin(current, location)
    raise DownloadError(f"{url}: more than {MAX_REDIRECTS} redirects", final=True)


def _fetch(url: str, path: Path, guard: UrlGuard, end: Deadline, max_bytes: int, why: str) -> str | None:
    """One request: writes the body to ``path`` and returns None, or returns a redirect's Location;
    ``why`` names what ``end`` is, for the timeout's message."""
    parts, addresses = guard.addresses(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    sock = _connect(url, addresses, port, end, why)
    with _Watch(sock, end, why) as watch:
        try:
            if parts.scheme == "https":
                sock = ssl.create_default_context().wrap_socket(sock, server_hostname=parts.hostname)
                watch.sock = sock
            conn = http.client.HTTPConnection(parts.hostname or "", port)
            conn.sock = sock  # already connected to the checked address
            target = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
            conn.request("GET", target, headers={"User-Agent": "cod-reference-node", "Accept-Encoding": "identity"})
            response = conn.getresponse()
            if 300 <= response.status < 400 and response.getheader("Location"):
                return str(response.getheader("Location"))
            if response.status != 200:
                raise DownloadError(f"{url}: HTTP {response.status} {response.reason}", final=response.status < 500)
            size = 0
            with open(open_nofollow(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), "wb") as fh:
                while chunk := response.read1(_CHUNK):
                    size += len(chunk)
                    if size > max_bytes:
                        raise DownloadError(f"{url}: larger than the node's limit of {max_bytes >> 20} MiB", final=True)
                    fh.write(chunk)
            if response.length:  # the server closed early
                raise DownloadError(f"{url}: the connection closed {response.length} bytes before the end")
        except DownloadError:
            watch.raise_if_fired(url)  # a socket shut down by the watcher reads as a short body
            raise
        except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
            watch.raise_if_fired(url)
            raise DownloadError(f"{url}: {getattr(exc, 'strerror', None) or exc or type(exc).__name__}") from None
        finally:
            sock.close()
        watch.raise_if_fired(url)
    return None


def _connect(url: str, addresses: list[str], port: int, end: Deadline, why: str) -> socket.socket:
    """A socket connected to one of ``addresses``; a connection that hangs is waited for in
    short steps, so that cancellation and the deadline end it too."""
    last = "timed out"
    for address in addresses:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            err = sock.connect_ex((address, port))
            give_up = time.monotonic() + IDLE_TIMEOUT_S
            while err in (errno.EINPROGRESS, errno.EALREADY, errno.EWOULDBLOCK):
                if end.cancel.is_set():
                    raise Cancelled()
                remaining = end.remaining()
                if remaining is not None and remaining <= 0:
                    raise DownloadTimeout(f"{url}: the download was stopped by {why}")
                if time.monotonic() > give_up:
                    err = errno.ETIMEDOUT
                    break
                if select.select([], [sock], [], _CONNECT_POLL_S)[1]:
                    err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err == 0:
                sock.setblocking(True)
                sock.settimeout(IDLE_TIMEOUT_S)
                return sock
            last = os.strerror(err)
        except BaseException:
            sock.close()
            raise
        sock.close()
    raise DownloadError(f"{url}: cannot connect: {last}")


class _Watch:
    """Shuts a socket down when the execution is cancelled or its deadline passes, so that
    a read blocked on a slow server returns at once."""

    POLL_S = 0.05

    def __init__(self, sock: socket.socket, end: Deadline, why: str) -> None:
        self.sock = sock
        self.end = end
        self.why = why
        self.fired: str | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cod-download-watch", daemon=True)

    def __enter__(self) -> _Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._done.wait(self.POLL_S):
            remaining = self.end.remaining()
            if self.end.cancel.is_set():
                self.fired = "cancelled"
            elif remaining is not None and remaining <= 0:
                self.fired = "timeout"
            else:
                continue
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return

    def raise_if_fired(self, url: str) -> None:
        if self.fired == "cancelled":
            raise Cancelled()
        if self.fired == "timeout":
            raise DownloadTimeout(f"{url}: the download was stopped by {self.why}")
