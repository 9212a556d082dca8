"""Random corruptions of real modules, fed to the module reader, ``adapter.start`` and
``observe-sdk inspect``: refused with a clear one-line error naming the byte offset, or run."""
from __future__ import annotations

import io
import json
import tempfile
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest
import wasmtime
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import wat_modules as W
from observe_sdk import Options
from observe_sdk.adapters.memory import InMemoryAdapter
from observe_sdk.cli import main as cli_main
from observe_sdk.names import ModuleFormatError, demangle, read_module_info
from observed_runs import ENGINE, check_exports, engine_with
from sdk_helpers import GUESTS

BUILD = GUESTS / "build"
SMALL_MODULES = sorted(p.name for p in BUILD.glob("*.wasm") if p.stat().st_size < 200_000)
ORIGINALS = {name: (BUILD / name).read_bytes() for name in SMALL_MODULES}


def section_starts(data: bytes) -> list[int]:
    """Offsets of each section's id byte, of each section's body, and of the end."""
    from observe_sdk.names import _Reader

    r = _Reader(data, 8)
    out = [0, 4, 8]
    while r.pos < r.end:
        out.append(r.pos)
        r.byte()
        size = r.u32()
        out.append(r.pos)
        r.pos += size
    return out


SECTION_STARTS = {name: section_starts(data) for name, data in ORIGINALS.items()}
MUTATIONS = ["flip", "byte", "truncate", "insert", "delete", "leb"]
LONG_LEBS = [b"\xff\xff\xff\xff\x0f", b"\x80\x80\x80\x80\x80\x00", b"\xff\xff\xff\xff\xff\xff\x01", b"\x80"]


@st.composite
def corruptions(draw: st.DrawFn) -> tuple[str, list[tuple[str, int, Any]]]:
    """A module and what to do to it (applied by :func:`corrupt`, so a failure's report stays short)."""
    name = draw(st.sampled_from(SMALL_MODULES))
    size = len(ORIGINALS[name])
    steps = []
    for _ in range(draw(st.integers(1, 4))):
        # anywhere, or at the headers of sections (ids, sizes, counts, names)
        anchor = draw(st.sampled_from(SECTION_STARTS[name]))
        pos = draw(st.one_of(st.integers(0, size), st.integers(anchor, anchor + 24)))
        what = draw(st.sampled_from(MUTATIONS))
        arg = {"flip": st.integers(0, 7), "byte": st.integers(0, 255), "truncate": st.none(),
               "insert": st.binary(min_size=1, max_size=8), "delete": st.integers(1, 8),
               "leb": st.sampled_from(LONG_LEBS)}[what]
        steps.append((what, pos, draw(arg)))
    return name, steps


def corrupt(name: str, steps: list[tuple[str, int, Any]]) -> bytes:
    data = bytearray(ORIGINALS[name])
    for what, pos, arg in steps:
        pos = min(pos, len(data))
        if what == "flip" and pos < len(data):
            data[pos] ^= 1 << arg
        elif what == "byte" and pos < len(data):
            data[pos] = arg
        elif what == "truncate":
            del data[pos:]
        elif what in ("insert", "leb"):  # bytes, or an over-long or huge LEB128 number
            data[pos:pos] = arg
        elif what == "delete":
            del data[pos:pos + arg]
    return bytes(data)


def expect_readable_or_format_error(data: bytes) -> bool:
    """read_module_info either works or raises ModuleFormatError naming a byte offset."""
    try:
        read_module_info(data)
    except ModuleFormatError as exc:
        assert "byte offset" in str(exc), str(exc)
        return False
    return True


def inspect_cli(data: bytes, tmp: Path) -> tuple[int, str, str]:
    path = tmp / "module.wasm"
    path.write_bytes(data)
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli_main(["inspect", str(path), "--json"])
    return code, out.getvalue(), err.getvalue()


FUEL_ENGINE = engine_with(consume_fuel=True)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=corruptions(), recorder=st.sampled_from(["python", "wasm"]))
def test_corrupted_modules_are_refused_clearly_or_run(case: tuple[str, list[Any]], recorder: str) -> None:

    data = corrupt(*case)
    readable = expect_readable_or_format_error(data)
    try:
        module: wasmtime.Module | None = wasmtime.Module(FUEL_ENGINE, data)
    except wasmtime.WasmtimeError:
        module = None
    assert readable or module is None, "the reader refuses a module wasmtime accepts"
    # the CLI: its JSON report, or one line on stderr and exit code 2
    with tempfile.TemporaryDirectory() as tmp:
        code, out, err = inspect_cli(data, Path(tmp))
    if readable:
        assert code == 0 and json.loads(out)["module"].endswith("module.wasm")
    else:
        assert code == 2 and err.count("\n") == 1 and err.startswith("observe-sdk: error: ")
        assert "byte offset" in err or "magic" in err
    # the SDK: start() refuses exactly what the reader refuses, with the reader's error
    adapter = InMemoryAdapter()
    store = wasmtime.Store(FUEL_ENGINE)
    store.set_wasi(wasmtime.WasiConfig())
    store.set_fuel(300_000)  # enough to run a while; a loop of host calls costs ~2 fuel each
    linker = wasmtime.Linker(FUEL_ENGINE)
    linker.define_wasi()
    try:
        ctx = adapter.start(linker, data, Options(min_span_duration_us=0, recorder=recorder), store=store)
    except ModuleFormatError:
        assert not readable
        event("refused by the reader")
        return
    assert readable
    # what wasmtime accepts too runs observed; whatever it does, the host carries on
    if module is None:
        event("refused by wasmtime")
        return
    try:
        instance = linker.instantiate(store, module)
    except (wasmtime.WasmtimeError, wasmtime.Trap):  # a link error, or a data segment out of bounds
        event("not instantiable")
        return
    event("ran")
    exports = instance.exports(store)
    for entry in ("_start", "_initialize"):
        func = exports.get(entry) if hasattr(exports, "get") else None
        if isinstance(func, wasmtime.Func) and not func.type(store).params:
            try:
                ctx.call(store, func)
            except (wasmtime.Trap, wasmtime.WasmtimeError):
                pass
            break
    trace = ctx.finish()
    check_exports(trace)
    assert adapter.shutdown(timeout=10).complete


def test_the_original_modules_read() -> None:
    for name, data in ORIGINALS.items():
        assert expect_readable_or_format_error(data), name


MANGLED_PREFIXES = st.sampled_from(["_Z", "_ZN", "__Z", "_R", "_RN", "_RNv"])


@settings(max_examples=200, deadline=None)
@given(raw=st.one_of(st.text(max_size=40), st.builds(str.__add__, MANGLED_PREFIXES, st.text(max_size=40))))
def test_demangling_never_fails(raw: str) -> None:
    out = demangle(raw)
    assert isinstance(out, str) and (out or not raw)


def test_start_with_something_that_is_not_module_bytes() -> None:
    adapter = InMemoryAdapter()
    linker = wasmtime.Linker(ENGINE)
    with pytest.raises(TypeError, match="WAT text"):
        adapter.start(linker, W.NESTED, Options(recorder="python"))      # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not NoneType"):
        adapter.start(linker, None, Options(recorder="python"))          # type: ignore[arg-type]
    for data in (b"", b"\0asm", b"\0asm\x02\0\0\0", b"\0asm\x01\0\0\0\x02\x80"):
        with pytest.raises(ModuleFormatError, match="byte offset"):
            adapter.start(linker, data, Options(recorder="python"))
    ctx = adapter.start(linker, memoryview(wasmtime.wat2wasm(W.NESTED)), Options(recorder="python"))
    assert ctx.module.function_names
    adapter.shutdown()
