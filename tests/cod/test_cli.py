"""The ``cod`` command line against a devstack."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from cod_helpers import DATA, EXAMPLES, wait_for

from cod_reference.cli import main
from cod_reference.models import encode_data_url


def test_wasm_run_waits_and_prints_output(cod) -> None:
    code, out, err = cod("wasm", "run", str(DATA / "tool.wasm"), "args", "x", "-e", "A=1")
    assert code == 0, err
    assert out.splitlines()[1:] == ["args", "x"]
    assert "Submission: Job submitted" in err and "Completed" in err


def test_wasm_run_id_only_then_inspect(cod, tmp_path: Path) -> None:
    src = tmp_path / "in.txt"
    src.write_text("from a file\n")
    code, out, _ = cod("wasm", "run", str(DATA / "tool.wasm"), "cat", "/in/in.txt", "-i", f"{src}:/in/in.txt",
                       "-o", "out:/out", "--id-only", "--no-wait")
    assert code == 0
    job_id = out.strip()
    assert job_id.startswith("j-")
    wait_for(lambda: cod("job", "describe", job_id, "--output", "json")[1].count('"Completed"') >= 2)
    code, out, _ = cod("job", "describe", job_id[:10])
    assert code == 0 and "State         = Completed" in out and "from a file" in out
    code, out, _ = cod("job", "executions", job_id, "--output", "yaml")
    assert yaml.safe_load(out)[0]["ComputeState"]["StateType"] == "Completed"
    code, out, _ = cod("job", "history", job_id)
    assert "Job submitted" in out
    code, out, _ = cod("job", "logs", job_id)
    assert out == "from a file\n"
    code, out, _ = cod("job", "get", job_id, "--output-dir", str(tmp_path / "res"))
    assert code == 0 and (tmp_path / "res" / "stdout").read_text() == "from a file\n"
    code, out, _ = cod("job", "list", "--output", "json")
    assert job_id in {j["ID"] for j in json.loads(out)}


def test_job_run_yaml_follow_and_trace(cod, tmp_path: Path) -> None:
    spec = tmp_path / "job.yaml"
    spec.write_text(f"""
Name: cli-hello
Type: batch
Tasks:
  - Name: main
    Engine: {{Type: wasm, Params: {{EntryModule: /code}}}}
    InputSources:
      - Target: /code
        Source: {{Type: local, Params: {{SourcePath: {EXAMPLES}}}}}
""")
    code, _, err = cod("job", "run", str(spec))
    # no node allow-lists that path: a clear failure, and a non-zero exit
    assert code == 1 and "does not hold the job's local inputs" in err
    spec.write_text(yaml.safe_dump({
        "Name": "cli-hello", "Type": "batch",
        "Tasks": [{"Name": "main", "Engine": {"Type": "wasm", "Params": {"EntryModule": "/hello.wasm"}},
                   "InputSources": [{"Target": "/hello.wasm", "Source": {"Type": "inline", "Params": {
                       "URL": encode_data_url((EXAMPLES / "hello.instr.wasm").read_bytes())}}}]}]}))
    code, out, err = cod("job", "run", str(spec), "--follow")
    assert code == 0, err
    assert out.startswith("Hello, World! 0\n")
    code, out, _ = cod("job", "trace", "cli-hello")
    assert code == 0 and "\n  submit  " in out and "execution" in out
    code, out, _ = cod("job", "trace", "cli-hello", "--output", "json")
    doc = json.loads(out)
    assert len({s["traceId"] for rs in doc["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]}) == 1


def test_wasm_run_flags_before_module_args(cod) -> None:
    code, out, err = cod("wasm", "run", str(DATA / "tool.wasm"), "-e", "A=1", "args", "x", "--", "-y")
    assert code == 0, err
    assert out.splitlines()[1:] == ["args", "x", "-y"]
    with pytest.raises(SystemExit):
        cod("wasm", "run", str(DATA / "tool.wasm"), "-e", "A=1", "args", "--bogus")


def test_node_list_and_errors(cod, monkeypatch) -> None:
    code, out, _ = cod("node", "list")
    assert code == 0 and "node-1" in out and "env=devstack" in out
    code, _, err = cod("job", "describe", "j-nothere")
    assert code == 1 and err.strip() == "Error: job j-nothere not found"
    code, _, err = cod("job", "validate", str(DATA / "tool.wasm"))
    assert code == 2 and err.startswith("Error: invalid job spec")
    code, _, err = cod("wasm", "run", "/no/such.wasm")
    assert code == 1 and "cannot read /no/such.wasm" in err
    code, _, err = cod("wasm", "run", str(DATA / "tool.wasm"), "-I", "/no/such/lib.wasm")
    assert code == 1 and err.strip() == "Error: cannot read /no/such/lib.wasm: No such file or directory"
    code, _, err = cod("job", "describe", "a?b")  # an odd reference is sent quoted, whole
    assert code == 1 and err.strip() == "Error: job a?b not found"
    code, _, err = cod("job", "describe", "a/b")
    assert code == 1 and err.strip() == "Error: nothing at /api/v1/orchestrator/jobs/a/b"
    monkeypatch.setenv("COD_API_PORT", "1")
    code, _, err = cod("node", "list")
    assert code == 1 and "cannot reach the orchestrator" in err


def test_devstack_command_starts_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    import re
    import signal
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "cod_reference", "devstack", "--computes", "1", "--port", "0",
                             "--data-dir", str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
        assert first.startswith("devstack: orchestrator + 1 compute node"), first + proc.stderr.read()
        api_line = next(line for line in proc.stdout if "/api/" in line)   # after the web UI's line
        port = int(re.search(r":(\d+)/api", api_line).group(1))
        code = main(["node", "list", "--api-port", str(port)])
        assert code == 0
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert (tmp_path / "orchestrator" / "jobs.db").exists()
    code = main(["devstack", "--port", "99999"])
    assert code == 1
