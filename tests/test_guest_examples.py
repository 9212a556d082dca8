"""The guest examples (guest-examples/) run as documented.

Each module runs under wasmtime with WASI (stdout and stderr captured to
files), its Observe imports satisfied by a recording stand-in defined here:
every call is kept as a tuple, strings decoded from guest memory. The SDK's own
tests check the traces built from these modules; these check the modules.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import wasmtime

from observe_sdk.abi import I32, I64, IMPORTS
from observe_sdk.names import read_module_info
from sdk_helpers import ENGINE, compiled, wasm_bytes

GUESTS = Path(__file__).resolve().parent.parent / "guest-examples"
BUILD = GUESTS / "build"
WAT = GUESTS / "wat"



@dataclass(frozen=True)
class OutOfBounds:
    """What the stand-in records for a (ptr, len) that does not fit in memory."""

    ptr: int
    length: int


@dataclass
class Run:
    exit_code: int | None          # None when the guest trapped
    trap: str | None               # the trap message, if any
    stdout: str
    stderr: str
    calls: list[tuple[Any, ...]]   # ("enter", 3), ("span-enter", "run"), ("log", 1, "..."), ...
    instance: wasmtime.Instance
    store: wasmtime.Store
    results: list[Any] = field(default_factory=list)

    def ops(self, *names: str) -> list[tuple[Any, ...]]:
        return [c for c in self.calls if c[0] in names]


# ---------------------------------------------------------------- the stand-in host

def _read_text(caller: wasmtime.Caller, ptr: int, length: int) -> str | bytes | OutOfBounds:
    memory = caller.get("memory")
    if not isinstance(memory, wasmtime.Memory) or ptr + length > memory.data_len(caller):
        return OutOfBounds(ptr, length)
    raw = bytes(memory.read(caller, ptr, ptr + length))
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw


def _recorder(op: str, calls: list[tuple[Any, ...]], ptr_bits: int) -> Callable[..., None]:
    # wasmtime hands over i32/i64 values as signed Python ints: pointers and lengths are unsigned.
    def ptr(value: int) -> int:
        return value & ((1 << ptr_bits) - 1)

    def text(caller: wasmtime.Caller, p: int, length: int) -> str | bytes | OutOfBounds:
        return _read_text(caller, ptr(p), length & 0xFFFFFFFF)

    if op in ("enter", "exit", "memory-grow"):
        return lambda caller, value: calls.append((op, value))
    if op == "span-exit":
        return lambda caller: calls.append((op,))
    if op in ("span-enter", "span-tags"):
        return lambda caller, p, length: calls.append((op, text(caller, p, length)))
    # metric (format, ptr, len) and log (level, ptr, len)
    return lambda caller, kind, p, length: calls.append((op, kind, text(caller, p, length)))


def _link_recorder(linker: wasmtime.Linker, calls: list[tuple[Any, ...]]) -> None:
    for (namespace, name), (params, op) in IMPORTS.items():
        ty = wasmtime.FuncType([wasmtime.ValType.i32() if p == I32 else wasmtime.ValType.i64() for p in params], [])
        ptr_bits = 32 if I64 not in params else 64
        linker.define_func(namespace, name, ty, _recorder(op, calls, ptr_bits), access_caller=True)




def run(path: Path, tmp: Path, *, argv: tuple[str, ...] = (), entry: str | None = "_start",
        invoke: tuple[tuple[str, tuple[Any, ...]], ...] = ()) -> Run:
    """Instantiate ``path``, call ``entry`` (if any), then each (export, args) of ``invoke``."""
    store = wasmtime.Store(ENGINE)
    wasi = wasmtime.WasiConfig()
    wasi.argv = [path.name, *argv]
    out, err = tmp / f"{path.name}.stdout", tmp / f"{path.name}.stderr"
    wasi.stdout_file = str(out)
    wasi.stderr_file = str(err)
    store.set_wasi(wasi)
    linker = wasmtime.Linker(ENGINE)
    linker.define_wasi()
    calls: list[tuple[Any, ...]] = []
    _link_recorder(linker, calls)
    instance = linker.instantiate(store, compiled(path))
    exports = instance.exports(store)
    exit_code: int | None = 0
    trap: str | None = None
    results: list[Any] = []
    try:
        if entry is not None:
            exports[entry](store)
        for name, args in invoke:
            results.append(exports[name](store, *args))
    except wasmtime.ExitTrap as exc:
        exit_code = exc.code
    except wasmtime.Trap as exc:
        exit_code, trap = None, str(exc)
    return Run(exit_code, trap, out.read_text(), err.read_text(), calls, instance, store, results)


def assert_balanced(calls: list[tuple[Any, ...]]) -> None:
    """Every enter has its exit and every span-enter its span-exit, properly nested."""
    stack: list[Any] = []
    for call in calls:
        if call[0] in ("enter", "span-enter"):
            stack.append(call)
        elif call[0] == "exit":
            assert stack and stack[-1] == ("enter", call[1]), f"unmatched {call}"
            stack.pop()
        elif call[0] == "span-exit":
            assert stack and stack[-1][0] == "span-enter", f"unmatched {call}"
            stack.pop()
    assert not stack, f"left open: {stack}"


def function_names(path: Path) -> dict[int, str]:
    return read_module_info(wasm_bytes(path)).function_names


def pages(result: Run) -> int:
    memory = result.instance.exports(result.store)["memory"]
    assert isinstance(memory, wasmtime.Memory)
    return memory.size(result.store)


# ---------------------------------------------------------------- what is committed

BUILT = ["hello", "nested", "vowels", "reactor", "trap", "fib", "features", "shapes", "words", "words_v0", "ledger",
         "inventory", "kitchensink"]
WATS = ["plain", "fib.instr", "nested.instr", "grow.instr", "legacy", "mixed.instr", "reactor.instr",
        "trap.instr", "exit.instr", "unbalanced", "wrapped.instr"]


def test_every_example_is_built_and_committed() -> None:
    assert sorted(p.stem for p in BUILD.glob("*.wasm") if ".instr" not in p.name) == sorted(BUILT)
    assert sorted(p.name[:-4] for p in WAT.glob("*.wat")) == sorted(WATS)


@pytest.mark.parametrize("name", WATS)
def test_wat_compiles_and_exports_memory(name: str) -> None:
    wasm = wasmtime.wat2wasm((WAT / f"{name}.wat").read_text())
    module = wasmtime.Module(ENGINE, wasm)
    assert "memory" in {e.name for e in module.exports}
    assert read_module_info(wasm).function_names, "WAT $names give a name section"


# Raw names each module's `name` section must hold (C++ and Rust: as mangled).
EXPECTED_NAMES = {
    "hello": {"_start", "main", "printf", "malloc"},
    "nested": {"_start", "main", "one", "two", "three", "printf"},
    "vowels": {"main", "count_vowels", "emit_stat", "emit_log", "printf"},
    "reactor": {"_initialize", "init", "add", "count_vowels", "is_vowel", "guest_alloc", "guest_free"},
    "trap": {"main", "outer", "middle", "inner"},
    "fib": {"main", "fib", "printf"},
    "features": {"main", "dot", "sum4", "saturate", "sext8", "sext16", "classify", "copy_and_sum"},
    "shapes": {"main", "_ZN6shapes5scaleEii", "_ZN6shapes5scaleEdd", "_ZNK6shapes6Circle4areaEv",
               "_ZNK6shapes4Rect4areaEv", "_ZN6shapes10total_areaINS_5ShapeEEEdPKPKT_i"},
    "inventory": {"main.main", "main.load", "main.summarize", "main.encode", "main.primes", "main.countPrimes"},
}


@pytest.mark.parametrize("name", sorted(EXPECTED_NAMES))
def test_name_section_is_kept(name: str) -> None:
    names = set(function_names(BUILD / f"{name}.wasm").values())
    assert EXPECTED_NAMES[name] <= names


@pytest.mark.parametrize(("name", "prefix", "functions"), [
    ("words", "_ZN5words", ("count_words", "count_vowels", "report", "process")),
    ("words_v0", "_RNv", ("count_words", "count_vowels", "report", "process")),
    ("ledger", "_ZN6ledger", ("parse_cents", "parse_line", "parse", "aggregate", "busiest", "report")),
])
def test_rust_names_are_mangled(name: str, prefix: str, functions: tuple[str, ...]) -> None:
    names = function_names(BUILD / f"{name}.wasm").values()
    mine = [n for n in names if n.startswith(prefix)]
    for fn in functions:
        assert any(fn in n for n in mine), (fn, mine)


# ---------------------------------------------------------------- C, C++, Rust, Go

def test_hello(tmp_path: Path) -> None:
    r = run(BUILD / "hello.wasm", tmp_path)
    assert (r.exit_code, r.trap) == (0, None)
    assert r.stdout == "".join(f"Hello, World! {i}\n" for i in range(10))
    assert r.calls == []
    assert pages(r) >= 2 + 10 * 3  # ten 192 KiB blocks, kept


def test_nested(tmp_path: Path) -> None:
    r = run(BUILD / "nested.wasm", tmp_path)
    assert (r.exit_code, r.stdout, r.calls) == (0, "Hello from three!\n", [])


VOWELS_CALLS = [
    ("span-enter", "run"),
    ("span-enter", "printf"),
    ("span-tags", "vowels:3,input:hello-world"),
    ("span-exit",),
    ("span-enter", "write_stat"),
    ("span-enter", "statsd"),
    ("metric", 1, "vowels.count:1|c"),
    ("span-exit",),
    ("span-exit",),
    ("span-enter", "write_log"),
    ("span-enter", "log_write"),
    ("log", 1, "Vowels Counted: 3"),
    ("span-exit",),
    ("span-exit",),
    ("span-exit",),
]


def test_vowels(tmp_path: Path) -> None:
    r = run(BUILD / "vowels.wasm", tmp_path)
    assert (r.exit_code, r.stdout) == (0, "Vowels: 3\n")
    assert r.calls == VOWELS_CALLS


def test_reactor(tmp_path: Path) -> None:
    path = BUILD / "reactor.wasm"
    store_text = "Observe all the things"

    r = run(path, tmp_path, entry="_initialize", invoke=(("add", (2, 3)), ("add", (40, 2))))
    assert r.results == [5, 42]
    assert r.calls == [
        ("span-enter", "init"), ("log", 3, "reactor initialized"), ("span-exit",),
        ("span-enter", "add"), ("log", 4, "adding"), ("span-exit",),
        ("span-enter", "add"), ("log", 4, "adding"), ("span-exit",),
    ]

    # The host writes a string into guest memory and counts its vowels, several times.
    exports = r.instance.exports(r.store)
    data = store_text.encode()
    ptr = exports["guest_alloc"](r.store, len(data))
    memory = exports["memory"]
    memory.write(r.store, data, ptr)
    del r.calls[:]
    counts = [exports["count_vowels"](r.store, ptr, len(data)) for _ in range(3)]
    exports["guest_free"](r.store, ptr)
    vowels = sum(c in "aeiouAEIOU" for c in store_text)
    assert counts == [vowels] * 3
    assert r.calls[:5] == [
        ("span-enter", "count_vowels"), ("span-tags", f"len:{len(data)}"),
        ("log", 3, f"counted {vowels} vowels (call 3)"), ("metric", 1, "reactor.count_vowels:1|c"), ("span-exit",),
    ]
    assert len(r.calls) == 15
    assert r.stdout == ""


def test_trap(tmp_path: Path) -> None:
    r = run(BUILD / "trap.wasm", tmp_path)
    assert r.exit_code is None and r.trap is not None and "unreachable" in r.trap
    assert r.stdout == "about to trap\n"
    assert r.calls == [("span-enter", "risky"), ("span-tags", "expect:trap")]


def test_fib(tmp_path: Path) -> None:
    assert run(BUILD / "fib.wasm", tmp_path).stdout == "fib(25) = 75025\n"
    assert run(BUILD / "fib.wasm", tmp_path, argv=("10",)).stdout == "fib(10) = 55\n"


# Post-MVP instructions that features.wasm must contain (opcode bytes as they appear in the code section).
FEATURE_OPCODES = {
    "memory.copy": b"\xfc\x0a\x00\x00",
    "memory.fill": b"\xfc\x0b\x00",
    "i32.trunc_sat_f64_s": b"\xfc\x02",
    "v128.load": b"\xfd\x00",
    "i32.extend8_s": b"\xc0",
    "br_table": b"\x0e",
}


def test_features(tmp_path: Path) -> None:
    r = run(BUILD / "features.wasm", tmp_path)
    assert (r.exit_code, r.calls) == (0, [])
    assert r.stdout.splitlines() == [
        "dot: 6111.0",
        "sum4: 36",
        "saturate: 2147483647 -2147483648 0",
        "sext: -128 -32768",
        "classify: 9 letters, 2 digits, 2 spaces, 2 other",
        "copy: checksum 8256",
    ]
    wasm = wasm_bytes(BUILD / "features.wasm")
    for name, opcode in FEATURE_OPCODES.items():
        assert opcode in wasm, name


def test_shapes_cpp(tmp_path: Path) -> None:
    r = run(BUILD / "shapes.wasm", tmp_path)
    assert (r.exit_code, r.stdout) == (0, "total area: 39.14\nscaled: 6\n")
    assert r.calls == [("span-enter", "measure"), ("span-tags", "count:3"), ("span-exit",)]


WORDS_CALLS = [
    ("span-enter", "process"),
    ("span-enter", "count_words"), ("span-exit",),
    ("span-tags", "lang:rust,words:9"),
    ("span-enter", "count_vowels"), ("log", 3, "found 11 vowels"), ("span-exit",),
    ("span-enter", "report"), ("metric", 1, "words.processed:9|c"), ("span-exit",),
    ("span-exit",),
]


@pytest.mark.parametrize("name", ["words", "words_v0"])
def test_words_rust(name: str, tmp_path: Path) -> None:
    r = run(BUILD / f"{name}.wasm", tmp_path)
    assert (r.exit_code, r.stdout) == (0, "words=9 vowels=11\nlongest=quick\n")
    assert r.calls == WORDS_CALLS


def test_ledger_rust(tmp_path: Path) -> None:
    r = run(BUILD / "ledger.wasm", tmp_path)
    assert (r.exit_code, r.stderr) == (0, "")
    assert r.stdout.splitlines() == [
        "accounts: 4",
        "  carol (3 entries)         3760.01",
        "  alice (4 entries)         1098.75",
        "  bob (3 entries)            242.50",
        "  dave (2 entries)            55.75",
        "busiest: month 2024-02 with 6425.75",
        "checksum: 2791",
    ]
    assert r.calls == [
        ("span-enter", "ledger"),
        ("span-enter", "parse"), ("log", 2, 'skipped line 13: unknown kind "steal"'), ("span-exit",),
        ("span-tags", "lang:rust,entries:12"),
        ("span-enter", "aggregate"), ("metric", 1, "ledger.entries:12|c"), ("span-exit",),
        ("span-enter", "report"), ("log", 3, "report: 4 accounts"), ("span-exit",),
        ("span-exit",),
    ]
    strict = run(BUILD / "ledger.wasm", tmp_path, argv=("strict",))
    assert (strict.exit_code, strict.stdout, strict.stderr) == (2, "", 'error: line 13: unknown kind "steal"\n')
    assert strict.calls == [("span-enter", "ledger"), ("span-enter", "parse"), ("span-exit",), ("span-exit",)]


def test_inventory_go(tmp_path: Path) -> None:
    path = BUILD / "inventory.wasm"
    assert path.stat().st_size > 2_000_000  # the large real module of the examples
    r = run(path, tmp_path)
    assert (r.exit_code, r.trap) == (0, None)
    lines = r.stdout.splitlines()
    assert lines[:3] == ["items: 6", "top: widget x40 @ 2.50", "total value: 523.84"]
    assert lines[3].startswith('json: [{"name":"anvil","qty":1,"price":99}')
    assert lines[4] == "primes below 100: 25"
    assert [c[:2] for c in r.ops("span-enter")] == [("span-enter", s) for s in
                                                     ("inventory", "load", "summarize", "encode", "primes")]
    assert ("metric", 1, "inventory.value:523.84|g") in r.calls
    assert ("span-tags", "lang:go,items:6") in r.calls
    assert any(c[0] == "log" and c[1] == 3 and str(c[2]).startswith("encoded ") for c in r.calls)
    assert_balanced(r.calls)

    failed = run(path, tmp_path, argv=("fail",))
    assert (failed.exit_code, failed.stdout, failed.stderr) == (3, "", "failing on request\n")
    assert failed.calls == []


# ---------------------------------------------------------------- hand-instrumented WAT

def test_plain(tmp_path: Path) -> None:
    r = run(WAT / "plain.wat", tmp_path)
    assert (r.exit_code, r.stdout, r.calls) == (0, "plain\n", [])
    assert read_module_info(wasm_bytes(WAT / "plain.wat")).observe_imports == []


def test_fib_instr(tmp_path: Path) -> None:
    r = run(WAT / "fib.instr.wat", tmp_path, invoke=(("fib", (10,)),))
    assert (r.exit_code, r.results) == (0, [55])
    assert_balanced(r.calls)
    assert r.calls[0] == ("enter", 4)
    # _start computes fib(20): 21891 calls; then fib(10): 177 more.
    assert r.calls.count(("enter", 3)) == 21891 + 177
    names = function_names(WAT / "fib.instr.wat")
    assert (names[3], names[4]) == ("fib", "_start")
    exports = {e.name for e in compiled(WAT / "fib.instr.wat").exports}
    assert {"wasm_instr_version_major", "wasm_instr_version_minor", "fib", "_start"} <= exports


def test_nested_instr(tmp_path: Path) -> None:
    r = run(WAT / "nested.instr.wat", tmp_path)
    assert (r.exit_code, r.stdout) == (0, "Hello from three!\n")
    assert_balanced(r.calls)
    assert [c[1] for c in r.ops("enter")] == [4, 5, 6, 7, 8, 9]
    names = function_names(WAT / "nested.instr.wat")
    assert [names[i] for i in range(4, 10)] == ["_start", "main", "one", "two", "three", "printf"]


def test_grow_instr(tmp_path: Path) -> None:
    r = run(WAT / "grow.instr.wat", tmp_path)
    assert r.exit_code == 0 and pages(r) == 7
    assert r.calls == [
        ("memory-grow", 1),
        ("enter", 4),
        ("enter", 5), ("enter", 6), ("memory-grow", 2), ("exit", 6), ("exit", 5),
        ("enter", 5), ("enter", 6), ("memory-grow", 3), ("exit", 6), ("exit", 5),
        ("exit", 4),
    ]


def test_legacy(tmp_path: Path) -> None:
    r = run(WAT / "legacy.wat", tmp_path)
    assert r.exit_code == 0 and pages(r) == 2
    assert r.calls == [
        ("enter", 8), ("enter", 9),
        ("span-enter", "legacy-span"), ("span-tags", "ns:legacy,ptr:i64"),
        ("metric", 1, "legacy.count:1|c"), ("log", 2, "legacy log"), ("memory-grow", 1),
        ("span-exit",), ("exit", 9), ("exit", 8),
    ]
    info = read_module_info(wasm_bytes(WAT / "legacy.wat"))
    assert {m for m, _ in info.observe_imports} == {"dylibso_observe"}


def test_mixed_instr(tmp_path: Path) -> None:
    r = run(WAT / "mixed.instr.wat", tmp_path)
    assert (r.exit_code, r.stdout) == (0, "Vowels: 3\n")
    assert_balanced(r.calls)
    manual = [c for c in r.calls if c[0] not in ("enter", "exit")]
    assert manual == VOWELS_CALLS
    assert r.calls[:4] == [("enter", 9), ("enter", 10), ("span-enter", "run"), ("enter", 11)]
    # printf (function 12) runs inside the manual span "printf"; the metric inside statsd under emit_stat (13).
    at = r.calls.index(("enter", 12))
    assert r.calls[at - 2:at] == [("span-enter", "printf"), ("span-tags", "vowels:3,input:hello-world")]
    at = r.calls.index(("metric", 1, "vowels.count:1|c"))
    assert r.calls[at - 3:at] == [("enter", 13), ("span-enter", "write_stat"), ("span-enter", "statsd")]


def test_reactor_instr(tmp_path: Path) -> None:
    r = run(WAT / "reactor.instr.wat", tmp_path, entry="_initialize",
            invoke=(("add", (1, 2)), ("add", (20, 22)), ("add", (-5, 5))))
    assert (r.exit_code, r.results) == (0, [3, 42, 0])
    assert_balanced(r.calls)
    assert r.calls[:4] == [("enter", 3), ("enter", 4), ("exit", 4), ("exit", 3)]
    assert r.calls[4:] == [("enter", 5), ("enter", 6), ("exit", 6), ("exit", 5)] * 3
    # Without _initialize, add traps.
    uninitialized = run(WAT / "reactor.instr.wat", tmp_path, entry=None, invoke=(("add", (1, 2)),))
    assert uninitialized.trap is not None and "unreachable" in uninitialized.trap


def test_trap_instr(tmp_path: Path) -> None:
    r = run(WAT / "trap.instr.wat", tmp_path)
    assert r.exit_code is None and r.trap is not None and "unreachable" in r.trap
    assert r.calls == [("enter", 6), ("enter", 7), ("span-enter", "risky"), ("span-tags", "expect:trap"),
                       ("enter", 8), ("enter", 9)]


def test_exit_instr(tmp_path: Path) -> None:
    r = run(WAT / "exit.instr.wat", tmp_path)
    assert (r.exit_code, r.trap) == (3, None)
    assert r.calls == [("enter", 6), ("enter", 7), ("span-enter", "shutdown"), ("enter", 8)]


def test_unbalanced(tmp_path: Path) -> None:
    r = run(WAT / "unbalanced.wat", tmp_path)
    assert (r.exit_code, r.trap) == (0, None)
    assert r.calls == [
        ("span-enter", "ok"), ("span-tags", "good:yes"), ("span-exit",),
        ("span-exit",),
        ("exit", 8),
        ("log", 1, OutOfBounds(0xFFFFFFF0, 32)),
        ("span-tags", OutOfBounds(65530, 100)),
        ("log", 3, b"\xff\xfeA"),
        ("log", 9, "bad level"),
        ("metric", 7, "bad.format:1|c"),
        ("span-enter", OutOfBounds(0xFFFFFFF0, 4)), ("span-exit",),
        ("span-enter", "left-open"),
    ]


# ---------------------------------------------------------------- instrumented builds
# guest-examples/build/<name>.instr.wasm, written by build.sh with observe_sdk.instrument.

@dataclass
class Node:
    """A function (by raw name) or a manual span ("span:<name>") and what happened inside it."""

    name: str
    children: list[Node] = field(default_factory=list)
    events: list[tuple[Any, ...]] = field(default_factory=list)   # metric, log, span-tags, memory-grow

    def find(self, *path: str) -> Node | None:
        """The first node reached by ``path``, each step a direct child, searching the whole subtree."""
        if not path:
            return self
        for child in self.children:
            if child.name == path[0]:
                hit = child.find(*path[1:])
                if hit is not None:
                    return hit
        for child in self.children:
            hit = child.find(*path)
            if hit is not None:
                return hit
        return None

    def named(self, name: str) -> list[Node]:
        return [c for c in self.children if c.name == name]


def call_tree(calls: list[tuple[Any, ...]], names: dict[int, str]) -> tuple[Node, list[Node]]:
    """The forest under a synthetic root, and the nodes still open at the end (innermost last)."""
    root = Node("<root>")
    stack = [root]
    for call in calls:
        if call[0] in ("enter", "span-enter"):
            node = Node(names.get(call[1], f"func[{call[1]}]") if call[0] == "enter" else f"span:{call[1]}")
            stack[-1].children.append(node)
            stack.append(node)
        elif call[0] in ("exit", "span-exit"):
            expected = names.get(call[1], f"func[{call[1]}]") if call[0] == "exit" else "span:"
            assert len(stack) > 1 and stack[-1].name.startswith(expected), f"{call} closes {stack[-1].name}"
            stack.pop()
        else:
            stack[-1].events.append(call)
    return root, stack[1:]


INSTR_RUNS: dict[str, dict[str, Any]] = {
    "hello": {}, "nested": {}, "vowels": {}, "trap": {}, "fib": {"argv": ("15",)}, "shapes": {},
    "words": {}, "words_v0": {}, "inventory": {}, "features": {}, "ledger": {}, "ledger:strict": {"argv": ("strict",)},
    "reactor": {"entry": "_initialize", "invoke": (("add", (2, 3)), ("add", (4, 5)))},
}


def test_every_example_has_an_instrumented_build() -> None:
    assert sorted(p.name[:-len(".instr.wasm")] for p in BUILD.glob("*.instr.wasm")) == sorted(BUILT)


@pytest.mark.parametrize("name", sorted(INSTR_RUNS))
def test_instrumented_build_behaves_like_the_plain_one(name: str, tmp_path: Path) -> None:
    module = name.split(":")[0]
    plain = run(BUILD / f"{module}.wasm", tmp_path, **INSTR_RUNS[name])
    instr = run(BUILD / f"{module}.instr.wasm", tmp_path, **INSTR_RUNS[name])
    assert (instr.exit_code, instr.stdout, instr.stderr, instr.results) == \
        (plain.exit_code, plain.stdout, plain.stderr, plain.results)
    assert (instr.trap is None) == (plain.trap is None)
    # The manual calls are the same, in the same order; the instrumenter added only enter/exit/memory-grow.
    assert [c for c in instr.calls if c[0] not in ("enter", "exit", "memory-grow")] == plain.calls
    assert any(c[0] == "enter" for c in instr.calls)
    info = read_module_info(wasm_bytes(BUILD / f"{module}.instr.wasm"))
    assert info.imports_namespace("dylibso:observe/instrument")


def instr_tree(name: str, tmp: Path) -> tuple[Run, Node, list[Node]]:
    r = run(BUILD / f"{name}.instr.wasm", tmp, **INSTR_RUNS[name])
    root, still_open = call_tree(r.calls, function_names(BUILD / f"{name}.instr.wasm"))
    return r, root, still_open


def test_hello_instr_tree(tmp_path: Path) -> None:
    r, root, still_open = instr_tree("hello", tmp_path)
    # wasm-ld wraps the exported _start of a command (to run constructors): that wrapper is the root.
    assert still_open == [] and [c.name for c in root.children] == ["_start.command_export"]
    main = root.find("_start.command_export", "_start", "__original_main", "__main_void", "main")
    assert main is not None
    assert len(main.named("printf")) == 10 and len(main.named("malloc")) == 10
    # The allocations reported add up to the growth of memory.
    initial = next(e.type.limits.min for e in compiled(BUILD / "hello.instr.wasm").exports if e.name == "memory")
    assert sum(c[1] for c in r.ops("memory-grow")) == pages(r) - initial > 0


def test_nested_instr_tree(tmp_path: Path) -> None:
    _, root, still_open = instr_tree("nested", tmp_path)
    assert still_open == []
    assert root.find("_start", "__original_main", "__main_void", "main", "one", "two", "three", "printf")


def test_vowels_instr_tree(tmp_path: Path) -> None:
    _, root, still_open = instr_tree("vowels", tmp_path)
    assert still_open == []
    run_span = root.find("main", "span:run")
    assert run_span is not None
    assert run_span.find("count_vowels") and run_span.find("span:printf", "printf")
    assert ("span-tags", "vowels:3,input:hello-world") in run_span.find("span:printf").events  # type: ignore[union-attr]
    statsd = run_span.find("emit_stat", "span:write_stat", "span:statsd")
    log_write = run_span.find("emit_log", "span:write_log", "span:log_write")
    assert statsd is not None and statsd.events == [("metric", 1, "vowels.count:1|c")]
    assert log_write is not None and ("log", 1, "Vowels Counted: 3") in log_write.events


def test_trap_instr_tree(tmp_path: Path) -> None:
    r, root, still_open = instr_tree("trap", tmp_path)
    assert r.trap is not None and "unreachable" in r.trap
    assert [n.name for n in still_open][-5:] == ["main", "span:risky", "outer", "middle", "inner"]
    assert [n.name for n in still_open][:2] == ["_start.command_export", "_start"]


def test_fib_instr_tree(tmp_path: Path) -> None:
    r, root, still_open = instr_tree("fib", tmp_path)
    assert r.stdout == "fib(15) = 610\n" and still_open == []
    fib_enters = [c for c in r.calls if c[0] == "enter" and function_names(BUILD / "fib.instr.wasm")[c[1]] == "fib"]
    assert len(fib_enters) == 1973  # fib(15) makes 2 * fib(16) - 1 calls


def test_reactor_instr_tree(tmp_path: Path) -> None:
    _, root, still_open = instr_tree("reactor", tmp_path)
    assert still_open == []
    assert [c.name for c in root.children] == ["_initialize", "add", "add"]
    assert root.children[0].find("init", "span:init")
    assert root.children[1].find("span:add")


def test_shapes_instr_tree(tmp_path: Path) -> None:
    _, root, still_open = instr_tree("shapes", tmp_path)
    assert still_open == []
    total = root.find("main", "span:measure", "_ZN6shapes10total_areaINS_5ShapeEEEdPKPKT_i")
    assert total is not None
    assert [c.name for c in total.children] == ["_ZNK6shapes6Circle4areaEv", "_ZNK6shapes4Rect4areaEv",
                                                "_ZNK6shapes4Rect4areaEv"]


@pytest.mark.parametrize(("name", "top", "functions"), [
    ("words", "process", ("count_words", "count_vowels", "report")),
    ("words_v0", "process", ("count_words", "count_vowels", "report")),
    ("ledger", "ledger", ("parse", "aggregate", "report")),
])
def test_rust_instr_tree(name: str, top: str, functions: tuple[str, ...], tmp_path: Path) -> None:
    _, root, still_open = instr_tree(name, tmp_path)
    assert still_open == []
    process = next(n for n in _walk(root) if n.name == f"span:{top}")
    inside = [n.name for n in _walk(process)]
    for fn in functions:
        assert f"span:{fn}" in inside
        assert any(fn in n and not n.startswith("span:") for n in inside), fn


def _walk(node: Node) -> list[Node]:
    out = [node]
    for child in node.children:
        out.extend(_walk(child))
    return out


def test_inventory_instr_functions_balance(tmp_path: Path) -> None:
    # Go's wasm port unwinds and re-enters frames (stack growth, goroutine switches), so a function
    # exit can cross a manual span: only the function spans are checked to pair up here.
    r = run(BUILD / "inventory.instr.wasm", tmp_path)
    functions_only = [c for c in r.calls if c[0] in ("enter", "exit")]
    _, still_open = call_tree(functions_only, function_names(BUILD / "inventory.instr.wasm"))
    # The Go runtime ends with proc_exit(0) from inside runtime.exit (a host call that never returns).
    assert [n.name for n in still_open] == ["_rt0_wasm_wasip1", "wasm_pc_f_loop", "runtime.main", "runtime.exit",
                                            "__imported_wasi_snapshot_preview1_proc_exit"]
    assert r.exit_code == 0
