"""The cod command line as a new user meets it (issue 13): output flags, messages, parity with Bacalhau."""
from __future__ import annotations

from pathlib import Path

import pytest
from cod_helpers import DATA

from cod_reference.cli import main

TOOL = str(DATA / "tool.wasm")


@pytest.fixture()
def cod(cod_stack, capsys, monkeypatch):
    monkeypatch.setenv("COD_API_PORT", str(cod_stack.port))

    def call(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return call


@pytest.fixture(scope="module")
def done_job(cod_stack) -> str:
    """One completed ``wasm run`` job the read-only tests look at."""
    from cod_reference.client import Client
    from cod_reference.models import wasm_job

    with Client(port=cod_stack.port) as client:
        job_id = client.submit(wasm_job((DATA / "tool.wasm").read_bytes(), args=["args", "x"], name="usab"))["JobID"]
        assert client.wait(job_id, timeout=30)["State"]["StateType"] == "Completed"
    return job_id


def test_an_ambiguous_prefix_is_quoted_whole(cod, done_job) -> None:
    cod("wasm", "run", TOOL, "--no-wait")  # a second job: "j-" matches both
    code, _, err = cod("job", "describe", "j-")
    assert code == 1 and err.strip() == "Error: 'j-' matches several jobs; give more of the ID"


def test_version_and_commands_refuse_output_they_cannot_honour(cod) -> None:
    with pytest.raises(SystemExit) as exit_:
        cod("--version")
    assert exit_.value.code == 0
    for argv in (("job", "logs", "x", "--output", "json"), ("job", "stop", "x", "-O", "yaml"),
                 ("job", "get", "x", "--output", "json"), ("job", "validate", "f", "--output", "json")):
        with pytest.raises(SystemExit) as exit_:
            cod(*argv)
        assert exit_.value.code == 2, argv


def test_job_trace_tree_is_the_sdk_tree_with_the_guests_tags(cod) -> None:
    examples = Path(__file__).resolve().parents[2] / "guest-examples" / "build"
    code, _, err = cod("wasm", "run", str(examples / "vowels.instr.wasm"), "--name", "usab-vowels")
    assert code == 0, err
    code, out, _ = cod("job", "trace", "usab-vowels")
    assert code == 0 and "[vowels:3, input:hello-world]" in out, out      # the guest's span-tags
    assert "metric statsd: vowels.count:1|c" in out and "log ERROR: Vowels Counted: 3" in out
    code, _, err = cod("wasm", "run", str(examples / "trap.instr.wasm"), "--name", "usab-trap")
    assert code == 1
    code, out, _ = cod("job", "trace", "usab-trap")
    trapped = [line for line in out.splitlines() if "unreachable" in line and "ERROR" in line]
    assert trapped and all(line.count("unreachable") == 1 for line in trapped), out
