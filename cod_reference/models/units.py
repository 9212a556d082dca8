"""Units of a job spec: sizes (``512Mb``, ``64MiB``), CPU amounts (``500m``) and RFC 2397 data URLs."""
from __future__ import annotations

import base64
import math
import re
import urllib.parse

_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*$")
_SIZE_UNITS = {
    "": 1, "b": 1,
    "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9, "t": 10**12, "tb": 10**12,
    "ki": 2**10, "kib": 2**10, "mi": 2**20, "mib": 2**20, "gi": 2**30, "gib": 2**30, "ti": 2**40, "tib": 2**40,
}


def parse_size(text: str | int | float) -> int:
    """Bytes from ``512Mb`` (10^6), ``64MiB`` (2^20), ``1Gi`` or a plain number."""
    if isinstance(text, bool):
        raise ValueError(f"{text!r} is not a size")
    if isinstance(text, (int, float)):
        if not math.isfinite(text):
            raise ValueError(f"{text!r} is not a size")
        if text < 0:
            raise ValueError(f"{text!r} is negative")
        return int(text)
    match = _SIZE.match(str(text))
    if not match or match.group(2).lower() not in _SIZE_UNITS:
        raise ValueError(f"{text!r} is not a size such as 512Mb or 64MiB")
    size = float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()]
    if not math.isfinite(size):
        raise ValueError(f"{text!r} is too large")
    return int(size)


def parse_cpu(text: str | int | float) -> float:
    """Cores from ``500m``, ``0.5`` or ``2``."""
    if isinstance(text, bool):
        raise ValueError(f"{text!r} is not a CPU amount")
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        raw = str(text).strip()
        try:
            value = float(raw[:-1]) / 1000 if raw.endswith("m") else float(raw)
        except ValueError:
            raise ValueError(f"{text!r} is not a CPU amount such as 500m or 2") from None
    if not math.isfinite(value):  # NaN would compare as fitting everywhere and poison a node's free capacity
        raise ValueError(f"{text!r} is not a CPU amount such as 500m or 2")
    if value < 0:
        raise ValueError(f"{text!r} is negative")
    return value


def decode_data_url(url: str) -> tuple[str, bytes]:
    """``(media type, payload)`` of an RFC 2397 data URL."""
    if not url.startswith("data:") or "," not in url:
        raise ValueError("is not a data URL (data:[<mediatype>][;base64],<data>)")
    head, _, data = url[5:].partition(",")
    parts = head.split(";")
    media = parts[0] or "text/plain"
    if "base64" in parts[1:]:
        try:
            return media, base64.b64decode(data, validate=True)
        except ValueError:
            raise ValueError("has invalid base64 data") from None
    return media, urllib.parse.unquote_to_bytes(data)


def encode_data_url(payload: bytes, media: str = "application/octet-stream") -> str:
    return f"data:{media};base64,{base64.b64encode(payload).decode()}"


#: Media types of inline inputs that are unpacked as (gzip) tarballs.
TARBALL_TYPES = ("application/gzip", "application/x-gzip", "application/x-tar+gzip", "application/x-tar")
