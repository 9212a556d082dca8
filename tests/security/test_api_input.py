"""Attacks on the API's inputs, against a running devstack: every one is a 4xx naming the
field, with nothing logged as an error and nothing stored.

The spec side (YAML alias bombs, deep nesting) is attacked through the CLI, which reads
job files with the same parser the API uses.
"""
from __future__ import annotations

import json
import socket
import tarfile
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_attacks import (
    MODULE,
    PATHS,
    PREFIX,
    data_url,
    full_spec,
    member,
    no_server_errors,
    put,
    refused,
    tarball,
    values,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cod_reference.cli import main
from cod_reference.devstack import Devstack
from cod_reference.models import wasm_job
from cod_reference.models.limits import MAX_BODY_BYTES, MAX_NAME


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devstack]:
    with Devstack(data_dir=tmp_path_factory.mktemp("api-input"), computes=1, port=0,
                  capacity={"CPU": 1.0, "Memory": 2**30}) as devstack:
        yield devstack


@pytest.fixture(scope="module")
def http(stack: Devstack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.url, timeout=30) as client:
        yield client


def submit(http: httpx.Client, doc: Any) -> httpx.Response:
    return http.put(f"{PREFIX}/jobs", json={"Job": doc})


def job_count(http: httpx.Client) -> int:
    return len(http.get(f"{PREFIX}/jobs", params={"limit": 10000}).json()["Items"])


def task(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["Tasks"][0]


# ----------------------------------------------------------------------------- the request itself

def test_a_body_over_the_limit_is_413_from_its_length(http: httpx.Client) -> None:
    with no_server_errors():
        big = b'{"Job": {"Name": "' + b"x" * MAX_BODY_BYTES + b'"}}'
        refused(http.put(f"{PREFIX}/jobs", content=big, headers={"content-type": "application/json"}), 413,
                "larger than 16777216 bytes")


def test_a_streamed_body_over_the_limit_is_413_while_it_streams(http: httpx.Client) -> None:
    sent = 0

    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked; stops once the server has answered
        nonlocal sent
        yield b'{"Job": {"Name": "'
        while sent < 2 * MAX_BODY_BYTES:
            sent += 1 << 20
            yield b"x" * (1 << 20)
        yield b'"}}'

    with no_server_errors():
        try:
            response = http.put(f"{PREFIX}/jobs", content=chunks(), headers={"content-type": "application/json"})
        except httpx.HTTPError:  # the server may close the connection before all was sent: also a refusal
            return
        refused(response, 413, "larger than")


def test_a_deeply_nested_json_body_is_400(http: httpx.Client) -> None:
    with no_server_errors():
        body = '{"Job": ' + "[" * 100_000 + "]" * 100_000 + "}"
        response = http.put(f"{PREFIX}/jobs", content=body, headers={"content-type": "application/json"})
        assert response.status_code == 400, response.text[:300]
        nested = wasm_job(MODULE)
        nested["Labels"] = {"a": json.loads("[" * 500 + "]" * 500)}
        refused(submit(http, nested), 400, "Labels.a: must be a string, not a list")


# ----------------------------------------------------------------------------- field values

LONG = "x" * 200_000


@pytest.mark.parametrize("mutate, field, words", [
    (lambda d: d.update(Name=LONG), "Name", f"at most {MAX_NAME}"),
    (lambda d: d.update(Name="team/etl"), "Name", "must not contain '/'"),
    (lambda d: d.update(Name=" padded"), "Name", "blanks"),
    (lambda d: d.update(Name="bell\a"), "Name", "control characters"),
    (lambda d: d.update(Namespace="a/b"), "Namespace", "'/'"),
    (lambda d: d.update(Labels={"k": LONG}), "Labels.k", "at most 4096"),
    (lambda d: d.update(Labels={"k": "\0"}), "Labels.k", "NUL"),
    (lambda d: d.update(Labels={LONG: "v"}), "Labels key", "at most 255"),
    (lambda d: d.update(Labels={f"k{i}": "v" for i in range(1001)}), "Labels", "at most 1000"),
    (lambda d: d.update(Meta={"k": LONG}), "Meta.k", "at most 4096"),
    (lambda d: d.update(Priority=10**30), "Priority", "at most"),
    (lambda d: d.update(Constraints=[{"Key": "k", "Operator": "=", "Values": ["v"]}] * 1001), "Constraints",
     "at most 1000"),
    (lambda d: task(d).update(Env={"A": LONG}), "Tasks[0].Env.A", "at most 4096"),
    (lambda d: task(d).update(Env={"A": "x\0y"}), "Tasks[0].Env.A", "NUL"),
    (lambda d: task(d)["Engine"]["Params"].update(Parameters=["a\0b"]), "Tasks[0].Engine.Params.Parameters[0]",
     "NUL"),
    (lambda d: task(d)["Engine"]["Params"].update(Parameters=["a"] * 1001), "Tasks[0].Engine.Params.Parameters",
     "at most 1000"),
    (lambda d: task(d)["Engine"]["Params"].update(Entrypoint=LONG), "Tasks[0].Engine.Params.Entrypoint",
     "at most 255"),
    (lambda d: task(d).update(Name="t/1"), "Tasks[0].Name", "'/'"),
    (lambda d: task(d).update(Resources={"Memory": "0"}), "Tasks[0].Resources.Memory", "more than 0"),
    (lambda d: task(d).update(Resources={"Memory": "0.1"}), "Tasks[0].Resources.Memory", "more than 0"),
    (lambda d: task(d).update(Resources={"CPU": "0"}), "Tasks[0].Resources.CPU", "more than 0"),
    (lambda d: task(d).update(Resources={"CPU": "0m"}), "Tasks[0].Resources.CPU", "more than 0"),
    (lambda d: task(d).update(Resources={"CPU": "-1"}), "Tasks[0].Resources.CPU", "negative"),
    (lambda d: task(d).update(Timeouts={"ExecutionTimeout": 1e300}), "Tasks[0].Timeouts.ExecutionTimeout",
     "at most"),
    (lambda d: task(d).update(ResultPaths=[{"Name": "..", "Path": "/out"}]), "Tasks[0].ResultPaths[0].Name",
     "neither '.' nor '..'"),
    (lambda d: task(d).update(ResultPaths=[{"Name": ".", "Path": "/out"}]), "Tasks[0].ResultPaths[0].Name",
     "neither '.' nor '..'"),
    (lambda d: task(d)["InputSources"].append(
        {"Source": {"Type": "urlDownload", "Params": {"URL": "https://h/" + LONG}}, "Target": "/in"}),
     "Tasks[0].InputSources[1].Source.Params.URL", "at most 8192"),
    (lambda d: task(d)["InputSources"].append(
        {"Source": {"Type": "local", "Params": {"SourcePath": ["/etc"]}}, "Target": "/in"}),
     "Tasks[0].InputSources[1].Source.Params.SourcePath", "must be a string"),
    (lambda d: task(d)["InputSources"].append(
        {"Source": {"Type": "local", "Params": {"SourcePath": "/srv\0/x"}}, "Target": "/in"}),
     "Tasks[0].InputSources[1].Source.Params.SourcePath", "NUL"),
])
def test_bad_values_are_refused_at_submit(http: httpx.Client, mutate: Any, field: str, words: str) -> None:
    doc = wasm_job(MODULE)
    mutate(doc)
    before = job_count(http)
    with no_server_errors():
        body = refused(submit(http, doc), 400, field, words)
    assert len(body["Message"]) < 2000  # what the user sent is quoted, cut short
    assert job_count(http) == before


def test_an_unknown_field_with_a_huge_name_is_quoted_short(http: httpx.Client) -> None:
    doc = wasm_job(MODULE)
    doc[LONG] = 1
    with no_server_errors():
        body = refused(submit(http, doc), 400, "unknown field")
    assert len(body["Message"]) < 300


def test_many_problems_are_counted_not_listed(http: httpx.Client) -> None:
    doc = wasm_job(MODULE)
    doc.update({f"Field{i}": 1 for i in range(500)})
    with no_server_errors():
        body = refused(submit(http, doc), 400, "and 480 more problems")
    assert len(body["Message"]) < 2000


@pytest.mark.parametrize("members, words", [
    ((member("../escape"),), "'../escape' would be written outside the input directory"),
    ((member("a/../../escape"),), "outside the input directory"),
    ((member("/etc/cron.d/x"),), "absolute path"),
    ((member("link", tarfile.SYMTYPE, "/etc/passwd"),), "link to an absolute path"),
    ((member("link", tarfile.SYMTYPE, "../../etc/passwd"),), "link leading outside"),
    ((member("hard", tarfile.LNKTYPE, "../outside"),), "link leading outside"),
    ((member("dev", tarfile.CHRTYPE),), "device, pipe or other special file"),
    ((member("fifo", tarfile.FIFOTYPE),), "device, pipe or other special file"),
])
def test_an_inline_tarball_that_escapes_is_refused_at_submit(http: httpx.Client, members: tuple[tarfile.TarInfo],
                                                             words: str) -> None:
    doc = wasm_job(MODULE)
    task(doc)["InputSources"].append({"Source": {"Type": "inline", "Params": {
        "URL": data_url(tarball(member("ok.txt"), *members), "application/gzip")}}, "Target": "/data"})
    with no_server_errors():
        refused(submit(http, doc), 400, "Tasks[0].InputSources[1].Source.Params.URL", words)


def test_a_tarball_bomb_and_a_broken_tarball_are_refused(http: httpx.Client) -> None:
    bomb = member("zeros")
    bomb.size = 2**40  # a header claiming 1 TiB: refused from the header, before anything is unpacked
    header_only = bomb.tobuf(tarfile.GNU_FORMAT)
    for payload, words in ((header_only, "unpacks to more than 256 MiB"), (b"not a tarball", "not a readable tarball")):
        doc = wasm_job(MODULE)
        task(doc)["InputSources"].append({"Source": {"Type": "inline", "Params": {
            "URL": data_url(payload, "application/x-tar")}}, "Target": "/data"})
        with no_server_errors():
            refused(submit(http, doc), 400, "Tasks[0].InputSources[1].Source.Params.URL", words)


def test_a_safe_tarball_is_accepted(http: httpx.Client) -> None:
    doc = wasm_job(MODULE)
    task(doc)["InputSources"].append({"Source": {"Type": "inline", "Params": {
        "URL": data_url(tarball(member("dir/ok.txt"), member("dir/link", tarfile.SYMTYPE, "ok.txt")),
                        "application/gzip")}}, "Target": "/data"})
    assert submit(http, doc).status_code == 200


# ----------------------------------------------------------------------------- references, tokens, offsets

@pytest.fixture(scope="module")
def job_id(http: httpx.Client) -> str:
    response = submit(http, wasm_job(MODULE, name="addressable"))
    assert response.status_code == 200, response.text
    return str(response.json()["JobID"])


@pytest.mark.parametrize("path, params, status, words", [
    ("/jobs/" + "j" * 60_000, {}, 400, "job_id: String should have at most 255 characters"),
    ("/jobs/" + "%25" * 5000, {}, 400, "job_id"),
    ("/jobs/{id}/history", {"execution_id": "e" * 60_000}, 400, "execution_id"),
    ("/jobs/{id}/history", {"next_token": "9" * 400}, 400, "next_token"),
    ("/jobs/{id}/history", {"next_token": "-1"}, 400, "next_token"),
    ("/jobs", {"next_token": "99999999999999999999"}, 400, "next_token"),
    ("/jobs", {"labels": "k=" + "v" * 60_000}, 400, "labels"),
    ("/jobs/{id}/logs", {"stdout_offset": "9" * 30}, 400, "stdout_offset"),
    ("/jobs/{id}/logs", {"stderr_offset": str(2**63)}, 400, "stderr_offset"),
    ("/jobs/{id}/logs", {"stdout_offset": "-5"}, 400, "stdout_offset"),
    ("/nodes/" + "n" * 60_000, {}, 400, "node_id"),
    ("/api/v1/compute/node-1/logs/e-1", {"offset": "9" * 30}, 400, "offset"),
    ("/api/v1/compute/node-1/logs/" + "e" * 60_000, {}, 400, "execution_id"),
    ("/api/v1/compute/node-1/results/" + "r" * 60_000, {}, 400, "name"),
])
def test_bad_references_tokens_and_offsets_are_400(http: httpx.Client, job_id: str, path: str,
                                                   params: dict[str, str], status: int, words: str) -> None:
    with no_server_errors():
        url = path if path.startswith("/api/") else PREFIX + path.replace("{id}", job_id)
        refused(http.get(url, params=params), status, words)


def test_a_100000_character_reference_is_400(stack: Devstack) -> None:
    """Longer than httpx sends: written on the socket as an attacker would."""
    with no_server_errors(), socket.create_connection(("127.0.0.1", stack.port), timeout=30) as sock:
        sock.sendall(f"GET {PREFIX}/jobs/{'j' * 100_000} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Connection: close\r\n\r\n".encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400"), head
    assert "job_id: String should have at most 255 characters" in json.loads(body)["Message"]


def test_a_long_stop_reason_is_400_and_the_job_is_untouched(http: httpx.Client, job_id: str) -> None:
    with no_server_errors():
        refused(http.delete(f"{PREFIX}/jobs/{job_id}", params={"reason": "r" * 60_000}), 400, "reason")


def test_the_largest_valid_values_still_work(http: httpx.Client, job_id: str) -> None:
    assert http.get(f"{PREFIX}/jobs/{job_id}/history", params={"next_token": "9" * 18}).status_code == 200
    page = http.get(f"{PREFIX}/jobs/{job_id}/logs", params={"stdout_offset": 2**62}).json()
    assert page["Stdout"] == "" and page["StdoutOffset"] == 2**62
    assert http.get(f"{PREFIX}/jobs/addressable").json()["Job"]["ID"] == job_id


# ----------------------------------------------------------------------------- job files (the CLI's parser)

@pytest.fixture()
def cli(capsys: pytest.CaptureFixture[str]) -> Any:
    def call(*args: str) -> tuple[int, str]:
        code = main(list(args))
        return code, capsys.readouterr().err
    return call


def test_a_yaml_alias_bomb_is_refused_before_it_expands(cli: Any, tmp_path: Path) -> None:
    lines = ["a0: &a0 " + "x" * 1_000_000]  # 1 MB, then 300 aliases of it: ~300 MB once expanded
    lines += [f"a{i}: *a0" for i in range(1, 301)]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    code, err = cli("job", "validate", str(path))
    assert code == 2 and err.count("\n") == 1, err[:300]
    assert "expands to more than" in err
    nested = tmp_path / "nested.yaml"  # aliases of aliases: 10 levels of 10 = 10^10 leaves
    nested.write_text("l0: &l0 [x]\n" + "".join(
        f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]\n" for i in range(1, 11)))
    code, err = cli("job", "validate", str(nested))
    assert code == 2 and "expands to more than" in err


def test_a_500_deep_yaml_is_refused_in_one_line(cli: Any, tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("Labels: " + "[" * 500 + "]" * 500 + "\n")
    code, err = cli("job", "validate", str(path))
    assert code == 2 and err.count("\n") == 1, err[:300]
    assert "nested deeper than 32 levels at line 1" in err
    recursive = tmp_path / "recursive.yaml"
    recursive.write_text("a: &a [*a]\n")
    code, err = cli("job", "validate", str(recursive))
    assert code == 2 and "recursive alias" in err


# ----------------------------------------------------------------------------- fuzzing the live API

@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(PATHS), value=values)
def test_no_spec_value_is_a_500(http: httpx.Client, path: tuple[Any, ...], value: Any) -> None:
    body = json.dumps({"Job": put(full_spec(), path, value)})  # NaN and Infinity included, as Python's json reads them
    with no_server_errors():
        response = http.put(f"{PREFIX}/jobs", content=body, headers={"content-type": "application/json"})
    assert response.status_code in (200, 400), response.text[:300]


queries = st.dictionaries(st.sampled_from(["next_token", "stdout_offset", "stderr_offset", "execution_id", "limit",
                                           "labels", "include", "event_type", "format", "reverse", "reason"]),
                          st.one_of(st.text(max_size=30), st.integers(min_value=-2**70, max_value=2**70).map(str)),
                          max_size=4)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(route=st.sampled_from(["", "/history", "/logs", "/executions", "/results", "/trace"]), params=queries,
       ref=st.one_of(st.just("addressable"), st.text(min_size=1, max_size=40)))
def test_no_query_is_a_500(http: httpx.Client, job_id: str, route: str, params: dict[str, str], ref: str) -> None:
    with no_server_errors():
        response = http.get(f"{PREFIX}/jobs/{urllib.parse.quote(ref, safe='')}{route}", params=params)
    assert response.status_code in (200, 400, 404), (response.status_code, response.text[:300])
