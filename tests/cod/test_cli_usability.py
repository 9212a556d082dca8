"""The cod command line as a new user meets it (issue 13): output flags, messages, parity with Bacalhau."""
from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
import yaml
from cod_helpers import DATA, wait_for

TOOL = str(DATA / "tool.wasm")


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


def trace_holding(cod, ref: str, marker: str) -> str:
    """The job's trace tree once it holds ``marker``: the guest's spans are stored a moment
    after the job ends."""
    def ready() -> str:
        code, out, _ = cod("job", "trace", ref)
        return out if code == 0 and marker in out else ""
    return wait_for(ready, what=f"{marker.strip()!r} in the trace of {ref}")


def test_job_trace_tree_is_the_sdk_tree_with_the_guests_tags(cod) -> None:
    examples = Path(__file__).resolve().parents[2] / "guest-examples" / "build"
    code, _, err = cod("wasm", "run", str(examples / "vowels.instr.wasm"), "--name", "usab-vowels")
    assert code == 0, err
    out = trace_holding(cod, "usab-vowels", " log_write  ")
    assert "[vowels:3, input:hello-world]" in out, out      # the guest's span-tags
    assert "metric statsd: vowels.count:1|c" in out and "log ERROR: Vowels Counted: 3" in out
    code, _, err = cod("wasm", "run", str(examples / "trap.instr.wasm"), "--name", "usab-trap")
    assert code == 1
    out = trace_holding(cod, "usab-trap", " inner  ")
    trapped = [line for line in out.splitlines() if "unreachable" in line and "ERROR" in line]
    assert trapped and all(line.count("unreachable") == 1 for line in trapped), out


def test_submitting_commands_honour_output(cod) -> None:
    code, out, err = cod("wasm", "run", TOOL, "args", "x", "--output", "json")
    assert code == 0, err
    doc = json.loads(out)   # the finished job, as job describe --output json shows it
    assert doc["Job"]["State"]["StateType"] == "Completed" and doc["Executions"]["Items"]
    assert "Completed" in err   # progress stays on stderr
    code, out, _ = cod("wasm", "run", TOOL, "--no-wait", "--output", "yaml")
    assert code == 0 and yaml.safe_load(out)["JobID"].startswith("j-")
    code, out, err = cod("wasm", "run", TOOL, "--id-only", "--output", "json")
    assert code == 1 and out == "" and "cannot be combined with --id-only" in err


def test_describe_shows_an_inline_module_as_size_and_digest(cod, done_job) -> None:
    code, out, _ = cod("job", "describe", done_job, "--output", "yaml")
    (source,) = yaml.safe_load(out)["Job"]["Tasks"][0]["InputSources"]
    size = (DATA / "tool.wasm").stat().st_size
    assert re.fullmatch(rf"data:\S+ \({size:,} bytes, sha256:[0-9a-f]{{64}}; --full shows it\)",
                        source["Source"]["Params"]["URL"])
    code, out, _ = cod("job", "describe", done_job, "--output", "json", "--full")
    (source,) = json.loads(out)["Job"]["Tasks"][0]["InputSources"]
    assert source["Source"]["Params"]["URL"].startswith("data:") and len(source["Source"]["Params"]["URL"]) > size


def test_a_failed_run_shows_the_output_tail_and_where_to_see_more(cod) -> None:
    examples = Path(__file__).resolve().parents[2] / "guest-examples" / "build"
    code, out, err = cod("wasm", "run", str(examples / "trap.instr.wasm"))
    assert code == 1 and out == ""
    assert re.search(r"Output of execution e-\S+ on \S+ \(all of it\):\n  \S", err), err
    assert re.search(r"To see more:\n  cod job describe j-\S+\n  cod job logs j-\S+\n", err), err
    assert "|" not in err.split("To see more:")[1]


def test_iso_times(cod, done_job) -> None:
    code, out, _ = cod("job", "list", "--hide-header")
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ  j-", out), out


def test_bacalhau_list_flags(cod, done_job) -> None:
    code, out, _ = cod("job", "list", "--output", "csv")
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["CREATED", "ID", "NAME", "TYPE", "COUNT", "STATE"]
    assert done_job in [row[1] for row in rows[1:]]   # CSV has whole IDs
    code, out, _ = cod("job", "list", "--output", "csv", "--hide-header")
    assert not out.startswith("CREATED")
    code, out, _ = cod("job", "executions", done_job)
    assert done_job not in out and "e-" in out         # a table cuts IDs ...
    code, out, _ = cod("job", "executions", done_job, "--wide", "--no-style")
    full_id = out.splitlines()[1].split()[2]
    assert full_id.startswith("e-") and len(full_id) > 30 and "\033[" not in out   # ... unless --wide
    code, out, _ = cod("node", "list", "--hide-header", "--output", "table")
    assert not out.startswith("ID") and "node-1" in out


def test_node_describe(cod) -> None:
    code, out, _ = cod("node", "describe", "node-1")
    assert code == 0 and "ID             = node-1" in out and "Engines        = wasm" in out
    code, out, _ = cod("node", "describe", "node-1", "--output", "json")
    assert json.loads(out)["Info"]["NodeID"] == "node-1"
    code, _, err = cod("node", "describe", "nope")
    assert code == 1 and err.strip() == "Error: node nope not found"


def test_logs_tail_and_rerun(cod, done_job) -> None:
    code, out, _ = cod("wasm", "run", TOOL, "args", "a", "b", "c", "--name", "usab-lines")
    assert code == 0 and out.splitlines()[1:] == ["args", "a", "b", "c"]
    code, out, _ = cod("job", "logs", "usab-lines", "--lines", "2")
    assert out == "b\nc\n"
    code, out, _ = cod("job", "logs", "-t", "usab-lines")   # as Bacalhau's: a flag, then the ID
    assert code == 0 and out.splitlines()[-1] == "c"
    code, out, err = cod("job", "rerun", "usab-lines")
    assert code == 0, err
    assert out.splitlines()[1:] == ["args", "a", "b", "c"] and "Rerunning job j-" in err
    code, out, _ = cod("job", "list", "--output", "json")
    assert sum(job["Name"] == "usab-lines" for job in json.loads(out)) == 2


def test_wasm_run_timeout_and_constraints_flags_as_bacalhau(cod) -> None:
    code, out, err = cod("wasm", "run", TOOL, "args", "--timeout", "30", "--execution-timeout", "20",
                         "--constraints", "env=devstack,name!=nope", "--output", "json")
    assert code == 0, err
    task = json.loads(out)["Job"]["Tasks"][0]
    assert task["Timeouts"]["TotalTimeout"] == 30 and task["Timeouts"]["ExecutionTimeout"] == 20
    assert [c["Key"] for c in json.loads(out)["Job"]["Constraints"]] == ["env", "name"]
    with pytest.raises(SystemExit):
        cod("wasm", "run", TOOL, "-c", "env=devstack")   # -c is Bacalhau's --config, not a constraint


@pytest.mark.parametrize("missing", ["yaml", "httpx"])
def test_without_the_cod_extra_cod_says_which_to_install(missing: str) -> None:
    import subprocess
    import sys

    code = (f"import sys; sys.modules[{missing!r}] = None\n"   # as if the package were not installed
            "from cod_reference.cli import main; sys.exit(main(['--help']))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        f"Error: the cod command needs the 'cod' extra ({missing} is not installed): pip install 'observe-sdk[cod]'"]


def test_a_terminal_gets_a_bold_header_unless_no_style(monkeypatch, capsys) -> None:
    import argparse
    import sys

    from cod_reference.cli.output import Column, print_rows

    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    args = argparse.Namespace(output="table", wide=False, hide_header=False, no_style=False)
    print_rows(args, [], [Column("ID", ident=True), Column("NAME", 5)], [["j-0123456789abcdef", "a long name"]])
    assert capsys.readouterr().out == "\033[1mID          NAME\033[0m\nj-01234567  a lo…\n"
    args.no_style = True
    print_rows(args, [], [Column("ID", ident=True), Column("NAME", 5)], [["j-0123456789abcdef", "a long name"]])
    assert capsys.readouterr().out == "ID          NAME\nj-01234567  a lo…\n"
