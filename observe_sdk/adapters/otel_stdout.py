"""OtelStdoutAdapter: one OTLP/JSON ``TracesData`` document per trace, one per line."""
from __future__ import annotations

import os
from typing import IO, Any

from ..gcpause import gc_paused
from ..trace import Trace
from .base import Adapter
from .common import DEFAULT_SERVICE_NAME
from .otlp_json import traces_data_json, traces_data_json_parts
from .sink import TextSink
from .traceinfo import CapturesHostParent


class OtelStdoutAdapter(CapturesHostParent, Adapter):
    """Writes each trace as a line of OTLP/JSON to stdout, a stream, or a file (appended).

    When the host has an OpenTelemetry span open as it runs the guest, the
    guest's spans are written in that span's trace, as its children.
    """

    name = "otel-stdout"

    def __init__(self, out: str | IO[str] | None = None, *, service_name: str = DEFAULT_SERVICE_NAME,
                 resource_attributes: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.service_name = service_name
        self.resource_attributes = dict(resource_attributes or {})
        self._sink = TextSink(out)

    @classmethod
    def from_env(cls, out: str | None = None, **kwargs: Any) -> OtelStdoutAdapter:
        """Configured from ``OTEL_SERVICE_NAME``; ``out`` is a file path (default stdout)."""
        kwargs.setdefault("service_name", os.environ.get("OTEL_SERVICE_NAME") or DEFAULT_SERVICE_NAME)
        return cls(out, **kwargs)

    def encode(self, trace: Trace) -> str:
        return traces_data_json([trace], self.service_name, self.resource_attributes)

    def export(self, traces: list[Trace]) -> None:
        with gc_paused():
            for trace in traces:
                self._sink.write_line_in_parts(
                    traces_data_json_parts([trace], self.service_name, self.resource_attributes))

    def close(self) -> None:
        self._sink.close()
