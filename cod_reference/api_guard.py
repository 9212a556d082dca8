"""What stands between the network and an HTTP client, before any route runs.

- :class:`BodyLimit`: a request body over the limit is a 413 — at once from its
  ``Content-Length``, else as soon as the streamed bytes pass it;
- :class:`HostCheck`: on a loopback-only API, a ``Host`` header naming anything but a
  loopback host is a 421 (a web page that rebinds its DNS name to 127.0.0.1 cannot
  talk to the API through the user's browser);
- :class:`BearerAuth`: with a token configured, every ``/api/`` route but liveness needs
  ``Authorization: Bearer <token>`` (401 otherwise); the web UI's page loads without it
  and asks for the token;
- :class:`SubmitRateLimit`: job submissions from one client address past its token bucket
  (a burst, then a sustained rate) are a 429 with ``Retry-After``.

Plain ASGI middlewares answering with the API's error shape
``{"Status", "Code", "Message"}``.
"""
from __future__ import annotations

import hmac
import ipaddress
import json
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")
PROTECTED_PREFIX = "/api/"  # the data; the web UI's static page and the OpenAPI schema hold none
OPEN_PATHS = ("/api/v1/agent/alive",)  # liveness needs no token (load balancers and health checks)


async def send_error(send: Send, status: int, code: str, message: str,
                     headers: tuple[tuple[bytes, bytes], ...] = ()) -> None:
    body = json.dumps({"Status": status, "Code": code, "Message": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": body})


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address, without port) can only mean this machine."""
    host = host.strip("[]").lower().rstrip(".")
    if host in LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, auth_token: str, insecure: bool) -> None:
    """Refuse to serve the API beyond loopback without a token, unless the operator insists."""
    if not is_loopback(host) and not auth_token and not insecure:
        raise ValueError(f"the API would listen on {host or 'every interface'}, where anyone who reaches it could "
                         "run jobs: give it a token (--auth-token or COD_AUTH_TOKEN) or pass --insecure")


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            return bytes(value)
    return None


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _refuse(self, send: Send) -> None:
        await send_error(send, 413, "RequestTooLarge",
                         f"the request body is larger than {self.max_bytes} bytes ({self.max_bytes / 2**20:g} MiB)")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = _header(scope, b"content-length")
        if length is not None and (not length.strip().isdigit() or int(length) > self.max_bytes):
            await self._refuse(send)
            return
        received = 0
        over = False

        async def counted() -> Message:
            nonlocal received, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    over = True
                    return {"type": "http.disconnect"}  # the route stops reading here
            return message

        answered = False

        async def guarded(message: Message) -> None:
            nonlocal answered
            if not over:
                await send(message)
            elif not answered and message["type"] == "http.response.start":
                answered = True  # the route's answer to a body it could not read becomes the 413
                await self._refuse(send)

        await self.app(scope, counted, guarded)


class HostCheck:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raw = (_header(scope, b"host") or b"").decode("latin-1")
            host = raw.rsplit(":", 1)[0] if not raw.endswith("]") else raw
            if not is_loopback(host):
                await send_error(send, 421, "MisdirectedRequest",
                                 f"this API listens on loopback only and does not answer for host {raw[:80]!r}")
                return
        await self.app(scope, receive, send)


class BearerAuth:
    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path") or ""
        if scope["type"] == "http" and path.startswith(PROTECTED_PREFIX) and path not in OPEN_PATHS:
            given = _header(scope, b"authorization") or b""
            if not hmac.compare_digest(given, self.expected):
                what = "a wrong token" if given else "no token"
                await send_error(send, 401, "Unauthorized",
                                 f"this API needs 'Authorization: Bearer <token>' and got {what} "
                                 "(set COD_AUTH_TOKEN for the cod CLI)",
                                 ((b"www-authenticate", b'Bearer realm="cod"'),))
                return
        await self.app(scope, receive, send)


def client_key(host: str | None) -> str:
    """Whose bucket a request from ``host`` draws on: the IPv4 address, or the /64 of an IPv6 one
    (one machine commonly holds a whole /64, so an address each would be a bucket each)."""
    if not host:
        return "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host[:64]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class SubmitRateLimit:
    """A token bucket per client address (the ASGI scope's client host) on job submissions:
    ``PUT``/``POST`` of one of ``paths``. A bucket holds at most ``burst`` tokens and gains
    ``rate`` a second; a submission takes one, and finding none is a 429 whose ``Retry-After``
    says in how many whole seconds the next token is there (at least 1). Other requests pass.

    At most ``max_clients`` buckets are kept: a bucket left alone long enough to fill up is
    the same as none and is dropped, and past the cap the one used least recently goes
    (a client coming back then starts from a full bucket). It runs on the event loop: no lock."""

    METHODS = ("PUT", "POST")

    def __init__(self, app: ASGIApp, rate: float, burst: int, paths: Collection[str], max_clients: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst < 1 or max_clients < 1:
            raise ValueError("a submission rate limit needs a rate above 0, a burst and a client cap of at least 1")
        self.app = app
        self.rate = float(rate)
        self.burst = float(burst)
        self.paths = frozenset(p.rstrip("/") for p in paths)
        self.max_clients = max_clients
        self.clock = clock
        self._fill_s = self.burst / self.rate  # an empty bucket is full again after this long
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, when), oldest first

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str) -> float:
        """Take a token from ``key``'s bucket: 0 when there was one, else the seconds until there is."""
        now = self.clock()
        buckets = self._buckets
        while buckets:  # ordered by last use: the front ones left alone long enough are full, i.e. as good as none
            oldest = next(iter(buckets.values()))
            if now - oldest[1] < self._fill_s:
                break
            buckets.popitem(last=False)
        held = buckets.pop(key, None)
        tokens = self.burst if held is None else min(self.burst, held[0] + (now - held[1]) * self.rate)
        wait = 0.0
        if tokens >= 1:
            tokens -= 1
        else:
            wait = (1 - tokens) / self.rate
        while len(buckets) >= self.max_clients:
            buckets.popitem(last=False)
        buckets[key] = (tokens, now)
        return wait

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] == "http" and scope.get("method") in self.METHODS
                and (scope.get("path") or "").rstrip("/") in self.paths):
            client = scope.get("client")
            host = client[0] if client else None
            wait = self.take(client_key(host))
            if wait:
                after = max(1, math.ceil(wait))
                await send_error(send, 429, "TooManyRequests",
                                 f"too many job submissions from {host or 'this client'}: at most "
                                 f"{self.burst:g} at once, then {self.rate:g} a second; retry after {after} s",
                                 ((b"retry-after", str(after).encode()),))
                return
        await self.app(scope, receive, send)
