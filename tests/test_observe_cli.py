"""``observe-sdk run`` and ``observe-sdk inspect`` end to end, as a user runs them."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import wat_modules as W
from sdk_helpers import wasm_of


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "observe_sdk", *args], capture_output=True, text=True,
                          timeout=60, cwd=cwd)


@pytest.fixture
def mods(tmp_path: Path) -> dict[str, Path]:
    out = {}
    for name in ("NESTED", "MIXED", "REACTOR", "TRAP", "EXIT", "PLAIN", "LEGACY"):
        path = tmp_path / f"{name.lower()}.wasm"
        path.write_bytes(wasm_of(getattr(W, name)))
        out[name] = path
    wat = tmp_path / "echo.wat"
    wat.write_text(r'''(module
      (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
      (import "dylibso:observe/instrument" "enter" (func $enter (param i32)))
      (import "dylibso:observe/instrument" "exit" (func $exit (param i32)))
      (memory (export "memory") 1)
      (data (i32.const 16) "hello from wasm\n")
      (func $main (export "_start")
        (call $enter (i32.const 3))
        (i32.store (i32.const 0) (i32.const 16)) (i32.store (i32.const 4) (i32.const 16))
        (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
        (call $exit (i32.const 3))))''')
    out["ECHO"] = wat
    return out


def test_run_prints_guest_output_and_tree(mods):
    r = cli("run", str(mods["ECHO"]))
    assert r.returncode == 0, r.stderr
    assert "hello from wasm" in r.stderr and "hello" not in r.stdout   # the telemetry owns stdout
    assert "trace " in r.stdout and "  main  " in r.stdout


def test_run_otel_stdout_to_file(mods, tmp_path):
    out = tmp_path / "t.jsonl"
    r = cli("run", str(mods["MIXED"]), "--adapter", "otel-stdout", "--out", str(out), "--min-span-us", "0")
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text().splitlines()[0])
    names = [s["name"] for s in doc["resourceSpans"][0]["scopeSpans"][0]["spans"]]
    assert names == ["main", "run", "helper", "statsd"]


def test_run_reactor_invokes(mods):
    r = cli("run", str(mods["REACTOR"]), "--invoke", "bump", "--invoke", "bump", "--min-span-us", "0")
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines()[:2] == ["1", "2"]  # results go with the guest's stdout
    assert r.stdout.count("  bump  ") == 2 and "  init  " in r.stdout


def test_run_invoke_with_arguments(mods):
    r = cli("run", str(mods["PLAIN"]), "--invoke", "add:2,40", "--guest-stdout", "stdout")
    assert r.returncode == 0 and r.stdout.splitlines()[0] == "42"
    r = cli("run", str(mods["PLAIN"]), "--invoke", "add:2")
    assert r.returncode == 2 and "takes 2 argument(s)" in r.stderr


def test_run_exit_code_and_trap(mods):
    r = cli("run", str(mods["EXIT"]))
    assert r.returncode == 3
    assert "ERROR: exit code 3" in r.stdout
    r = cli("run", str(mods["TRAP"]))
    assert r.returncode == 134
    assert "trapped" in r.stderr and "ERROR: trap:" in r.stdout


def test_run_errors_are_one_line(mods, tmp_path):
    bad = tmp_path / "bad.wasm"
    bad.write_bytes(b"hello")
    for args, expect in [
        (("run", str(tmp_path / "missing.wasm")), "no such file"),
        (("run", str(bad)), "not a WebAssembly module"),
        (("run", str(mods["NESTED"]), "--invoke", "nope"), "no exported function 'nope'"),
        (("run", str(mods["NESTED"]), "--adapter", "nonesuch"), "nonesuch"),
        (("inspect", str(bad)), "not a WebAssembly module"),
    ]:
        r = cli(*args)
        assert r.returncode != 0
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and expect in lines[0], r.stderr


def test_run_env_and_args(tmp_path):
    # a guest that exits with argc*10 + envc
    wat = tmp_path / "argc.wat"
    wat.write_text(r'''(module
      (import "wasi_snapshot_preview1" "args_sizes_get" (func $a (param i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "environ_sizes_get" (func $e (param i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "proc_exit" (func $x (param i32)))
      (memory (export "memory") 1)
      (func (export "_start")
        (drop (call $a (i32.const 0) (i32.const 4))) (drop (call $e (i32.const 8) (i32.const 12)))
        (call $x (i32.add (i32.mul (i32.load (i32.const 0)) (i32.const 10)) (i32.load (i32.const 8))))))''')
    r = cli("run", str(wat), "--env", "A=1", "--env", "B=2", "--", "x", "y")
    assert r.returncode == 32, r.stderr


def test_inspect(mods):
    r = cli("inspect", str(mods["LEGACY"]), "--json")
    assert r.returncode == 0
    info = json.loads(r.stdout)
    assert info["deprecated_namespace"] is True
    assert "instrument_enter" in info["observe_imports"]["dylibso_observe"]
    assert info["named_functions"] >= 1
    r = cli("inspect", str(mods["PLAIN"]))
    assert "observe imports: none" in r.stdout and "instrumenter version exports: no" in r.stdout


def test_run_trap_while_instantiating(tmp_path):
    wat = tmp_path / "start_traps.wat"
    wat.write_text(r'''(module
      (import "dylibso:observe/instrument" "enter" (func $enter (param i32)))
      (memory (export "memory") 1)
      (func $init (call $enter (i32.const 1)) unreachable)
      (start $init)
      (func (export "_start")))''')
    r = cli("run", str(wat))
    assert r.returncode == 134
    assert r.stderr.strip().splitlines() == [
        f"observe-sdk: error: {wat}: trapped while instantiating: wasm `unreachable` instruction executed"]
    assert "init" in r.stdout and "ERROR: trap:" in r.stdout


def test_otel_stdout_pipes_into_a_json_reader(mods):
    r = cli("run", str(mods["ECHO"]), "--adapter", "otel-stdout")
    assert r.returncode == 0, r.stderr
    docs = [json.loads(line) for line in r.stdout.splitlines()]   # `| jq -c .` reads only telemetry
    assert len(docs) == 1 and "resourceSpans" in docs[0]
    assert "hello from wasm" in r.stderr
    r = cli("run", str(mods["ECHO"]), "--adapter", "otel-stdout", "--guest-stdout", "stdout")
    assert r.stdout.startswith("hello from wasm\n") and "hello" not in r.stderr
    out = mods["ECHO"].parent / "trace.jsonl"   # telemetry to a file: the guest keeps stdout
    r = cli("run", str(mods["ECHO"]), "--adapter", "otel-stdout", "--out", str(out))
    assert r.stdout == "hello from wasm\n" and json.loads(out.read_text())


def test_a_module_without_observe_imports_says_so_once(mods):
    r = cli("run", str(mods["PLAIN"]), "--invoke", "add:1,2")
    assert r.returncode == 0, r.stderr
    notes = [line for line in r.stderr.splitlines() if "nothing to trace" in line]
    assert len(notes) == 1 and notes[0].startswith("observe-sdk: note: ") and "observe-sdk instrument" in notes[0]
    r = cli("run", str(mods["ECHO"]))
    assert "nothing to trace" not in r.stderr


def test_invoke_is_checked_before_anything_runs(mods):
    for spec, expect in (("nope", "no exported function 'nope'"), ("bump:1", "takes 0 argument(s), 1 given")):
        r = cli("run", str(mods["REACTOR"]), "--invoke", spec)
        assert r.returncode == 2 and r.stdout == "", r.stdout   # _initialize did not run: no trace printed
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("observe-sdk: error: ") and expect in lines[0]
    r = cli("run", str(mods["PLAIN"]), "--invoke", "add:1,x")
    assert r.returncode == 2 and r.stderr.strip().endswith("argument 'x' is not an i32")


def test_a_lost_trace_is_in_the_exit_status(mods, monkeypatch):
    import socket

    with socket.socket() as s:   # a port nothing listens on: the connection is refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("OTEL_EXPORTER_ZIPKIN_ENDPOINT", f"http://127.0.0.1:{port}/api/v2/spans")
    r = cli("run", str(mods["ECHO"]), "--adapter", "zipkin")
    assert r.returncode == 75, r.stderr
    assert "connection refused" in r.stderr and "the trace was not delivered" in r.stderr
    assert all(line.startswith("observe-sdk: ") for line in r.stderr.splitlines() if "hello" not in line)


def test_an_old_wasmtime_keeps_the_guest_on_stdout_and_says_so(mods, monkeypatch, capfd):
    import wasmtime

    from observe_sdk.cli import main

    monkeypatch.delattr(wasmtime.WasiConfig, "stdout_custom")   # as in a wasmtime-py without it
    assert main(["run", str(mods["ECHO"]), "--guest-stdout", "stderr"]) == 2
    assert "--guest-stdout stderr: this wasmtime-py cannot" in capfd.readouterr().err
    assert main(["run", str(mods["ECHO"])]) == 0
    out, err = capfd.readouterr()
    assert "hello from wasm" in out and "shares stdout with the telemetry" in err
