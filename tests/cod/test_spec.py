"""The job spec: parsing, defaults, and errors that name the field and the reason."""
from __future__ import annotations

import pytest

from cod_reference.models import (
    Constraint,
    SpecError,
    decode_data_url,
    encode_data_url,
    holds_path,
    load_job_text,
    parse_cpu,
    parse_job,
    parse_size,
    spec_to_dict,
    wasm_job,
)

YAML = """
Name: wasm-line-count
Type: batch
Count: 2
Constraints:
  - {Key: env, Operator: "=", Values: [devstack]}
Labels: {team: research}
Tasks:
  - Name: main
    Engine:
      Type: wasm
      Params:
        EntryModule: /code
        Parameters: ["data/input.txt"]
    InputSources:
      - Target: /code
        Source: {Type: urlDownload, Params: {URL: "https://example.org/bin/linecount.wasm"}}
      - Target: /data
        Source: {Type: local, Params: {SourcePath: /srv/shared/data, ReadWrite: false}}
    ResultPaths:
      - {Name: out, Path: /out}
    Publisher: {Type: local}
    Env: {MODE: fast}
    Resources: {CPU: 250m, Memory: 128Mb}
    Timeouts: {ExecutionTimeout: 120, QueueTimeout: 60, TotalTimeout: 600}
"""


def problems(doc) -> list[tuple[str, str]]:
    with pytest.raises(SpecError) as err:
        parse_job(doc)
    return err.value.problems


def test_bacalhau_style_yaml_round_trips() -> None:
    job = load_job_text(YAML)
    assert job.Count == 2 and job.Type == "batch" and job.Namespace == "default"
    assert job.Task.Engine.Entrypoint == "_start"
    assert job.Task.Resources.cpu == 0.25 and job.Task.Resources.memory == 128 * 10**6
    assert job.Task.Timeouts.execution_timeout() == 120
    assert spec_to_dict(parse_job(spec_to_dict(job))) == spec_to_dict(job)
    assert parse_job({"Job": spec_to_dict(job)}).Name == "wasm-line-count"


def test_json_is_accepted_and_defaults_apply() -> None:
    job = load_job_text('{"Type": "ops", "Tasks": [{"Name": "t", "Engine": {"Type": "wasm", "Params": '
                        '{"EntryModule": "/m.wasm"}}, "InputSources": [{"Target": "/m.wasm", "Source": '
                        '{"Type": "inline", "Params": {"URL": "data:,x"}}}]}]}')
    assert job.Type == "ops" and job.Count == 0 and job.Task.Publisher == "local"


@pytest.mark.parametrize("mutate, path, reason", [
    (lambda d: d.update(Colour="blue"), "Colour", "unknown field"),
    (lambda d: d.update(count=2), "count", "did you mean Count?"),
    (lambda d: d.update(ID="j-1"), "ID", "set by the orchestrator"),
    (lambda d: d.update(Type="service"), "Type", "not one of batch, ops"),
    (lambda d: d.update(Count=-1), "Count", "at least 0"),
    (lambda d: d.update(Count="two"), "Count", "must be an integer"),
    (lambda d: d.update(Count=10**12), "Count", "at most"),
    (lambda d: d.update(Constraints=[{"Key": "a", "Operator": "~"}]), "Constraints[0].Operator", "not one of"),
    (lambda d: d.update(Constraints=[{"Key": "a", "Operator": "=", "Values": []}]), "Constraints[0].Values",
     "exactly one value"),
    (lambda d: d.update(Constraints=[{"Key": "a", "Operator": "gt", "Values": ["x"]}]),
     "Constraints[0].Values[0]", "not a number"),
    (lambda d: d["Tasks"].append(d["Tasks"][0]), "Tasks", "exactly one task"),
    (lambda d: d["Tasks"][0]["Engine"].update(Type="docker"), "Tasks[0].Engine.Type", "not one of wasm"),
    (lambda d: d["Tasks"][0]["Engine"]["Params"].update(EntryModule="/elsewhere.wasm"),
     "Tasks[0].Engine.Params.EntryModule", "not the Target of an input source"),
    (lambda d: d["Tasks"][0]["Engine"]["Params"].pop("EntryModule"), "Tasks[0].Engine.Params.EntryModule",
     "is required"),
    (lambda d: d["Tasks"][0]["InputSources"][0].update(Target="rel"), "Tasks[0].InputSources[0].Target",
     "absolute"),
    (lambda d: d["Tasks"][0]["InputSources"][0]["Source"]["Params"].update(URL="nope"),
     "Tasks[0].InputSources[0].Source.Params.URL", "not a data URL"),
    (lambda d: d["Tasks"][0]["InputSources"][0]["Source"].update(Type="s3"),
     "Tasks[0].InputSources[0].Source.Type", "not one of"),
    (lambda d: d["Tasks"][0].update(Env={"lower": "x"}), "Tasks[0].Env.lower", "upper case"),
    (lambda d: d["Tasks"][0].update(Env={"BACALHAU_X": "x"}), "Tasks[0].Env.BACALHAU_X", "set by the network"),
    (lambda d: d["Tasks"][0].update(Resources={"CPU": "lots"}), "Tasks[0].Resources.CPU", "not a CPU amount"),
    (lambda d: d["Tasks"][0].update(Resources={"GPU": "1"}), "Tasks[0].Resources.GPU", "cannot use GPUs"),
    (lambda d: d["Tasks"][0].update(Resources={"CPU": "nan"}), "Tasks[0].Resources.CPU", "not a CPU amount"),
    (lambda d: d["Tasks"][0].update(Resources={"Memory": "9" * 400}), "Tasks[0].Resources.Memory", "too large"),
    (lambda d: d["Tasks"][0].update(Timeouts={"ExecutionTimeout": float("inf")}),
     "Tasks[0].Timeouts.ExecutionTimeout", "finite"),
    (lambda d: d["Tasks"][0].update(Timeouts={"ExecutionTimeout": 10, "TotalTimeout": 5}), "Tasks[0].Timeouts",
     "must not exceed TotalTimeout"),
    (lambda d: d["Tasks"][0].update(ResultPaths=[{"Name": "out", "Path": "out"}]), "Tasks[0].ResultPaths[0].Path",
     "absolute"),
    (lambda d: d["Tasks"][0].update(Publisher={"Type": "s3"}), "Tasks[0].Publisher.Type", "not one of"),
    (lambda d: d["Tasks"][0].update(Network={"Type": "Host"}), "Tasks[0].Network.Type", "not one of"),
])
def test_invalid_fields_are_named(mutate, path, reason) -> None:
    doc = wasm_job(b"\0asm\1\0\0\0")
    mutate(doc)
    found = problems(doc)
    assert any(p == path and reason in r for p, r in found), found


def test_all_problems_are_reported_at_once() -> None:
    doc = wasm_job(b"", env={"bad": "x"})
    doc["Count"] = "x"
    assert {p for p, _ in problems(doc)} == {"Count", "Tasks[0].Env.bad"}


def test_not_a_mapping_and_bad_yaml() -> None:
    assert problems([1, 2]) == [("", "must be a mapping, not a list")]
    with pytest.raises(SpecError, match="not valid YAML or JSON at line 1"):
        load_job_text("Name: [unclosed", "job.yaml")
    assert ("Tasks", "is required") in problems({"Type": "batch"})


def test_sizes_cpus_and_data_urls() -> None:
    assert parse_size("512Mb") == 512 * 10**6 and parse_size("64MiB") == 64 * 2**20 and parse_size(10) == 10
    assert parse_size("1.5Gi") == int(1.5 * 2**30)
    assert parse_cpu("500m") == 0.5 and parse_cpu(2) == 2.0
    for bad in ("12 parsecs", "-1", True):
        with pytest.raises(ValueError):
            parse_size(bad)
    assert decode_data_url(encode_data_url(b"\x00\x01", "application/wasm")) == ("application/wasm", b"\x00\x01")
    assert decode_data_url("data:,a%20b") == ("text/plain", b"a b")


@pytest.mark.parametrize("op, values, labels, expected", [
    ("=", ["a"], {"k": "a"}, True), ("==", ["a"], {"k": "b"}, False), ("!=", ["a"], {}, True),
    ("in", ["a", "b"], {"k": "b"}, True), ("notin", ["a"], {"k": "a"}, False),
    ("exists", [], {"k": ""}, True), ("!", [], {"k": "x"}, False), ("!", [], {}, True),
    ("gt", ["2"], {"k": "3"}, True), ("lt", ["2"], {"k": "3"}, False), ("gt", ["2"], {"k": "x"}, False),
])
def test_constraint_operators(op, values, labels, expected) -> None:
    assert Constraint("k", op, values).matches(labels) is expected


def test_allow_listed_local_paths() -> None:
    node = ["/srv/data:ro", "/scratch:rw"]
    assert holds_path(node, "/srv/data") and holds_path(node, "/srv/data/sub/f.txt") and holds_path(node, "/scratch")
    assert not holds_path(node, "/srv/database") and not holds_path(node, "/etc")
    assert not holds_path(node, "/srv/data/../../etc")  # the scheduler agrees with the node, which resolves '..'
