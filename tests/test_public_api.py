"""The public surface: observe() with any TraceSink, adapter.start as its shortcut, the root's names."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import wat_modules as W
from sdk_helpers import Guest, tree, wasm_of

import observe_sdk
from observe_sdk import Adapter, Options, Trace, TraceContext, TraceSink, observe
from observe_sdk.adapters.memory import InMemoryAdapter


class ListSink:
    """A sink that is no Adapter: two methods are all the host needs."""

    def __init__(self) -> None:
        self.traces: list[Trace] = []
        self.invoked: list[dict[str, Any]] = []

    def submit(self, trace: Trace) -> None:
        self.traces.append(trace)

    def on_guest_invoked(self, metadata: dict[str, Any]) -> None:
        self.invoked.append(metadata)


class ObserveEntry:
    """``Guest`` calls ``adapter.start``; this one goes through ``observe_sdk.observe``."""

    def __init__(self, sink: TraceSink) -> None:
        self.sink = sink

    def start(self, linker: Any, wasm: bytes, options: Options | None = None, **kw: Any) -> TraceContext:
        return observe(linker, wasm, self.sink, options, **kw)


def test_observe_sends_traces_to_any_sink(tmp_path: Path) -> None:
    sink = ListSink()
    guest = Guest(wasm_of(W.NESTED), ObserveEntry(sink), Options(min_span_duration_us=0), tmp=tmp_path)
    guest.call("_start")
    trace = guest.ctx.finish()
    assert sink.traces == [trace] and tree(trace) == W.NESTED_TREE
    assert sink.invoked and guest.ctx.sink is sink


def test_adapter_start_is_observe_with_the_adapter_as_sink(tmp_path: Path) -> None:
    adapter = InMemoryAdapter()
    guest = Guest(wasm_of(W.NESTED), adapter, Options(min_span_duration_us=0), tmp=tmp_path)
    guest.call("_start")
    guest.ctx.finish()
    assert guest.ctx.sink is adapter and guest.ctx.adapter is adapter
    assert isinstance(adapter, TraceSink) and isinstance(adapter, Adapter)
    assert adapter.shutdown(timeout=10).complete and tree(adapter.traces[0]) == W.NESTED_TREE


def test_the_root_exports_what_users_name() -> None:
    for name in observe_sdk.__all__:
        assert getattr(observe_sdk, name) is not None, name
    assert observe_sdk.__version__.count(".") == 2
