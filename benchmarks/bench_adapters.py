"""Each adapter's encoding of one 250,000-span trace, side by side in one run.

    .venv/bin/python benchmarks/bench_adapters.py        # prints spans/s and ratios
    .venv/bin/python -m pytest benchmarks/bench_adapters.py --benchmark-only

The trace is synthetic: a tree four wide (depth ~9), as the assembler would
give it.  "Encoding" is everything an adapter does with a trace short of I/O:

- otel-stdout: OTLP/JSON text (the reference point);
- zipkin: v2 span objects and their JSON;
- datadog: the msgpack payload of its span maps;
- otlp: OTLP protobuf request bytes (hand-written encoder);
- opentelemetry: SDK spans through a host TracerProvider (no processor).
"""
from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "adapters"))
sys.path.insert(0, str(ROOT))

from adapter_traces import deep_trace  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402

from observe_sdk.adapters.datadog import DatadogAdapter  # noqa: E402
from observe_sdk.adapters.datadog_msgpack import payload  # noqa: E402
from observe_sdk.adapters.opentelemetry import OpenTelemetryAdapter  # noqa: E402
from observe_sdk.adapters.otel_stdout import OtelStdoutAdapter  # noqa: E402
from observe_sdk.adapters.otlp import OtlpAdapter  # noqa: E402
from observe_sdk.adapters.zipkin import ZipkinAdapter  # noqa: E402
from observe_sdk.trace import Trace  # noqa: E402

N_SPANS = 250_000


def encode_otel_stdout(trace: Trace) -> int:
    return len(OtelStdoutAdapter().encode(trace))


def encode_zipkin(trace: Trace) -> int:
    adapter = ZipkinAdapter(endpoint="http://127.0.0.1:9/api/v2/spans")
    return sum(len(s) + 1 for s in adapter.encode_json(trace))


def encode_datadog(trace: Trace) -> int:
    adapter = DatadogAdapter(agent_url="http://127.0.0.1:9", dogstatsd_url=False, logs=False)
    chunks, _, _ = adapter.trace_chunks(trace)
    return len(payload(chunks))


def encode_otlp(trace: Trace) -> int:
    adapter = OtlpAdapter(protocol="http/protobuf", endpoint="http://127.0.0.1:9", signals=["traces"])
    size = sum(len(body) for _, body in adapter.encode([trace]))
    adapter.shutdown(1)
    return size


def encode_opentelemetry(trace: Trace) -> int:
    provider = TracerProvider(shutdown_on_exit=False)
    OpenTelemetryAdapter(provider, False, False, python_logging=False).emit_trace(trace)
    return 0


ENCODERS: dict[str, Callable[[Trace], int]] = {
    "otel-stdout (OTLP/JSON)": encode_otel_stdout,
    "zipkin (JSON)": encode_zipkin,
    "datadog (msgpack)": encode_datadog,
    "otlp (protobuf)": encode_otlp,
    "opentelemetry (SDK spans)": encode_opentelemetry,
}


def measure(fn: Callable[[Trace], int], trace: Trace) -> tuple[float, int]:
    started = time.perf_counter()
    size = fn(trace)
    return time.perf_counter() - started, size


def main() -> None:
    trace = deep_trace(N_SPANS)
    print(f"{N_SPANS:,} spans, one trace; spans per second (higher is better), best of 2")
    base = None
    for label, fn in ENCODERS.items():
        seconds, size = min(measure(fn, trace) for _ in range(2))
        rate = N_SPANS / seconds
        base = base or rate
        size_text = f"{size / 1e6:7.1f} MB" if size else "      -   "
        print(f"  {label:28s} {seconds:6.2f} s  {rate:>10,.0f} spans/s  {size_text}  x{rate / base:.2f}")


# pytest-benchmark entry points (one round each: a round is 250,000 spans)
_TRACE: list[Trace] = []


def _trace() -> Trace:
    if not _TRACE:
        _TRACE.append(deep_trace(N_SPANS))
    return _TRACE[0]


@pytest.mark.parametrize("label", list(ENCODERS), ids=lambda label: label.split()[0])
def test_encode(benchmark, label: str) -> None:
    benchmark.pedantic(ENCODERS[label], args=(_trace(),), rounds=1)


if __name__ == "__main__":
    main()
