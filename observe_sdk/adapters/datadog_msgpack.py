"""Datadog span maps packed as msgpack in one pass, without a dict per span.

A span map (see :mod:`.datadog`) is twelve keys; for a span that only says
which function ran, all but its ids and times are the same for every call of
that function.  Those parts are packed once per function (and service) and a
span is then a join of byte strings.  Spans that say more (tags, errors, logs,
allocations, a trace's roots) are built as maps and packed by msgpack's
``Packer``; both decode to the same maps.
"""
from __future__ import annotations

import struct
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import msgpack

from ..trace import Span
from .common import identity_attributes

SPAN_TYPE = "wasm"
_U64 = (1 << 64) - 1
_pack: Callable[[Any], bytes] = msgpack.Packer(use_bin_type=True).pack


def _key(name: str) -> bytes:
    return _pack(name)


_K_PARENT = _key("parent_id") + b"\xcf"        # 0xcf: uint 64, always 8 bytes: ids and times fill a fixed slot
_K_DURATION = _key("duration") + b"\xcf"


def split_attributes(attrs: Mapping[str, Any], meta: dict[str, str], metrics: dict[str, float]) -> None:
    """Attributes into Datadog's ``meta`` (strings) and ``metrics`` (numbers)."""
    for key, value in attrs.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            metrics[key] = float(value)
        else:
            meta[key] = str(value)


class SpanPacker:
    """Packs the span maps of one adapter; keeps the per-function parts across traces."""

    def __init__(self, base_meta: Mapping[str, str]) -> None:
        self._base_meta = dict(base_meta)
        self._templates: dict[tuple[bool, int, str, str, str], tuple[Callable[..., bytes], bytes, bytes]] = {}

    @staticmethod
    def head(trace_id_low: int) -> bytes:
        """What every span map of a trace starts with: the map header, the trace id, the span id's key."""
        return b"\x8c" + _key("trace_id") + b"\xcf" + trace_id_low.to_bytes(8, "big") + _key("span_id") + b"\xcf"

    def plain(self, span: Span, head: bytes, parent_id: int, service: str) -> bytes:
        """The map of a span that carries only its identity (no tags, error, logs, metrics,
        allocations): from the function's template."""
        key = (span.manual, span.function_index, span.raw_name, span.name, service)
        template = self._templates.get(key)
        if template is None:
            template = self._templates[key] = self._template(span, service)
        pack, before, after = template
        duration = span.end_ns - span.start_ns
        return pack(head, span.span_id & _U64, _K_PARENT, parent_id & _U64, before, span.start_ns, _K_DURATION,
                    duration if duration > 0 else 0, after)

    def _template(self, span: Span, service: str) -> tuple[Callable[..., bytes], bytes, bytes]:
        """The function's fixed parts, and the packing of a whole span map around them (one call a span)."""
        meta = dict(self._base_meta)
        metrics: dict[str, float] = {}
        split_attributes(identity_attributes(span), meta, metrics)
        before = b"".join((_key("name"), _pack(span.name), _key("resource"), _pack(span.name),
                           _key("service"), _pack(service), _key("type"), _pack(SPAN_TYPE),
                           _key("start"), b"\xcf"))
        after = b"".join((_key("error"), _pack(0), _key("meta"), _pack(meta), _key("metrics"), _pack(metrics)))
        layout = f">{_HEAD_SIZE}sQ{len(_K_PARENT)}sQ{len(before)}sQ{len(_K_DURATION)}sQ{len(after)}s"
        return struct.Struct(layout).pack, before, after

    @staticmethod
    def map(span_map: Mapping[str, Any]) -> bytes:
        """A span map built as a dict (the spans that say more than their identity)."""
        return _pack(span_map)


_HEAD_SIZE = len(SpanPacker.head(0))  # the same for every trace: a plain span's packing has a slot this size


def payload(chunks: Sequence[tuple[int, bytes]]) -> bytes:
    """A ``/v0.4/traces`` body: a list of traces, each ``(number of spans, their packed maps)``."""
    out = [_array_header(len(chunks))]
    for count, spans in chunks:
        out.append(_array_header(count))
        out.append(spans)
    return b"".join(out)


def _array_header(n: int) -> bytes:
    if n < 16:
        return bytes((0x90 | n,))
    if n < 1 << 16:
        return b"\xdc" + n.to_bytes(2, "big")
    return b"\xdd" + n.to_bytes(4, "big")
