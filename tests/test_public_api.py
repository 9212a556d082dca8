"""The public surface: observe() with any TraceSink, adapter.start as its shortcut, the root's names."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import wasmtime

import observe_sdk
import wat_modules as W
from observe_sdk import Adapter, Options, Trace, TraceContext, TraceSink, observe
from observe_sdk.adapters.memory import InMemoryAdapter
from sdk_helpers import Guest, tree, wasm_of


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


def test_every_error_of_observe_sdk_is_an_observe_error() -> None:
    import importlib
    import pkgutil

    from observe_sdk.errors import ObserveError

    found = []
    for info in pkgutil.walk_packages(observe_sdk.__path__, "observe_sdk."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, BaseException) and \
                    value.__module__.startswith("observe_sdk"):
                found.append(value)
    assert len(found) >= 12
    assert [e.__qualname__ for e in found if not issubclass(e, ObserveError)] == []


# ---------------------------------------------------------------- which stores have WASI

def test_untracking_restores_wasmtime_store() -> None:
    from observe_sdk.host import wasi_stores

    assert wasi_stores.is_tracking()                       # import observe_sdk turned it on
    wrapped = wasmtime.Store.set_wasi
    observe_sdk.untrack_wasi_stores()
    try:
        assert not wasi_stores.is_tracking() and wasmtime.Store.set_wasi is not wrapped
        store = wasmtime.Store()
        store.set_wasi(wasmtime.WasiConfig())
        assert wasi_stores.store_has_wasi(store) is None   # unknown: the fast path is not risked
    finally:
        observe_sdk.track_wasi_stores()
    observe_sdk.track_wasi_stores()                        # idempotent: no wrapper of a wrapper
    assert not hasattr(wasmtime.Store.set_wasi.__wrapped__, "__wrapped__")
    store = wasmtime.Store()
    assert wasi_stores.store_has_wasi(store) is False
    store.set_wasi(wasmtime.WasiConfig())
    assert wasi_stores.store_has_wasi(store) is True


def test_environment_switch_leaves_wasmtime_untouched() -> None:
    script = ("import wasmtime; init, set_wasi = wasmtime.Store.__init__, wasmtime.Store.set_wasi\n"
              "import observe_sdk\n"
              "assert (wasmtime.Store.__init__, wasmtime.Store.set_wasi) == (init, set_wasi)\n"
              "observe_sdk.track_wasi_stores()\n"
              "assert wasmtime.Store.set_wasi is not set_wasi\n")
    env = {**os.environ, "OBSERVE_SDK_TRACK_WASI": "0"}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, timeout=60,
                          cwd=Path(__file__).resolve().parent.parent)
    assert proc.returncode == 0, proc.stderr.decode()
