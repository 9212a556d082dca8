"""Decoding YAML/JSON text within bounds: nesting depth and the size once aliases expand.

PyYAML composes a document recursively (500 levels exhaust Python's stack) and shares
aliased nodes, so 300 aliases of a 1 MB scalar become 300 MB as soon as the document is
copied or written as JSON. :func:`load_document` refuses both before building anything.
"""
from __future__ import annotations

from typing import Any

import yaml

from ..errors import CodError
from .limits import MAX_YAML_DEPTH, MAX_YAML_SIZE


class DocumentError(CodError, ValueError):
    """Text that is not a YAML/JSON document within the bounds (the message says why and where)."""


class _BoundedLoader(yaml.SafeLoader):
    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                mark = self.peek_event().start_mark
                raise DocumentError(f"is nested deeper than {MAX_YAML_DEPTH} levels{_where(mark)}")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _where(mark: Any) -> str:
    return f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """Characters of ``node`` with every alias expanded; shared nodes are measured once."""
    key = id(node)
    if key in sizes:
        if sizes[key] < 0:
            raise DocumentError(f"holds a recursive alias{_where(node.start_mark)}")
        return sizes[key]
    sizes[key] = -1
    if isinstance(node, yaml.ScalarNode):
        size = 1 + len(node.value)
    elif isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(child, sizes) for child in node.value)
    else:
        size = 1 + sum(_expanded_size(k, sizes) + _expanded_size(v, sizes) for k, v in node.value)
    if size > MAX_YAML_SIZE:
        raise DocumentError(f"expands to more than {MAX_YAML_SIZE} characters (through its aliases)")
    sizes[key] = size
    return size


def load_document(text: str) -> Any:
    """The decoded document in ``text`` (YAML or JSON); raises :class:`DocumentError`."""
    try:
        loader = _BoundedLoader(text)  # the reader refuses control characters at once
    except yaml.reader.ReaderError as exc:
        raise DocumentError(f"is not valid YAML or JSON (character #x{exc.character:02x} at offset "
                            f"{exc.position} is not allowed)") from None
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded_size(node, {})
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise DocumentError(f"is not valid YAML or JSON{_where(mark)}") from None
    finally:
        loader.dispose()
