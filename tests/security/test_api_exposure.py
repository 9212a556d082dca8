"""Who may talk to the API: a token when it is exposed, loopback Host names when it is not,
and a database file that is not ours is named in one line."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_attacks import MODULE, PREFIX, no_server_errors, refused

from cod_reference.api_guard import is_loopback
from cod_reference.cli import main
from cod_reference.client import APIError, Client
from cod_reference.devstack import Devstack
from cod_reference.models import wasm_job
from cod_reference.sqlite import UnusableDatabase

TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devstack]:
    """A devstack that requires a token (on loopback: tests listen nowhere else)."""
    with Devstack(data_dir=tmp_path_factory.mktemp("api-auth"), computes=1, port=0, auth_token=TOKEN,
                  capacity={"CPU": 1.0, "Memory": 2**30}) as stack:
        yield stack


def test_without_the_token_every_route_but_liveness_is_401(guarded: Devstack) -> None:
    routes = [("GET", f"{PREFIX}/jobs"), ("GET", f"{PREFIX}/nodes"), ("GET", f"{PREFIX}/jobs/x/logs"),
              ("DELETE", f"{PREFIX}/jobs/x"), ("GET", "/api/v1/agent/metrics"), ("GET", "/api/v1/agent/version"),
              ("GET", "/api/v1/compute/node-1/results/e-1.tar.gz")]
    with no_server_errors(), httpx.Client(base_url=guarded.url) as http:
        for method, path in routes:
            body = refused(http.request(method, path), 401, "Authorization: Bearer", "no token")
            assert body["Code"] == "Unauthorized"
        for wrong in ("Bearer nope", f"Bearer {TOKEN}x", TOKEN, f"bearer {TOKEN}", f"Basic {TOKEN}"):
            refused(http.get(f"{PREFIX}/jobs", headers={"Authorization": wrong}), 401, "a wrong token")
        refused(http.put(f"{PREFIX}/jobs", json={"Job": wasm_job(MODULE)}), 401)
        assert http.get("/api/v1/agent/alive").status_code == 200
        assert http.get("/").status_code == 200  # the web UI's page holds no data: it asks for the token


def test_the_client_and_the_cli_send_the_token_from_cod_auth_token(guarded: Devstack, monkeypatch: Any,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    with Client(port=guarded.port, token=TOKEN) as client:
        job_id = client.submit(wasm_job(MODULE, name="authorized"))["JobID"]
        assert client.get_job(job_id)["Job"]["Name"] == "authorized"
    monkeypatch.setenv("COD_API_PORT", str(guarded.port))
    monkeypatch.delenv("COD_AUTH_TOKEN", raising=False)
    with Client() as client, pytest.raises(APIError, match="COD_AUTH_TOKEN") as err:
        client.nodes()
    assert err.value.status == 401
    assert main(["node", "list"]) == 1
    assert "COD_AUTH_TOKEN" in capsys.readouterr().err
    monkeypatch.setenv("COD_AUTH_TOKEN", TOKEN)
    assert main(["job", "describe", job_id]) == 0
    assert "authorized" in capsys.readouterr().out


@pytest.mark.parametrize("host", ["evil.example", "evil.example:1234", "127.0.0.1.evil.example",
                                  "localhost.evil.example", "10.0.0.1", "[::ffff:8.8.8.8]", ""])
def test_a_foreign_host_header_is_refused_on_loopback(guarded: Devstack, host: str) -> None:
    """DNS rebinding: a page on evil.example resolving to 127.0.0.1 reaches the port, with its own Host."""
    with no_server_errors(), httpx.Client(base_url=guarded.url) as http:
        response = http.get(f"{PREFIX}/jobs", headers={"Host": host, "Authorization": f"Bearer {TOKEN}"})
        refused(response, 421, "loopback only")
        refused(http.get("/api/v1/agent/alive", headers={"Host": host}), 421)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "LOCALHOST.", "127.8.9.10", "[::1]", "app.localhost"])
def test_loopback_host_names_are_accepted(guarded: Devstack, host: str) -> None:
    port = f":{guarded.port}"
    with httpx.Client(base_url=guarded.url) as http:
        response = http.get(f"{PREFIX}/nodes", headers={"Host": host + port, "Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 200, response.text
    assert is_loopback(host.strip("[]"))


def test_exposing_the_api_needs_a_token_or_insecure(tmp_path: Path) -> None:
    for host in ("0.0.0.0", "::", "192.168.1.10", ""):
        with pytest.raises(ValueError, match="--auth-token or COD_AUTH_TOKEN.*--insecure"):
            Devstack(data_dir=tmp_path, host=host, computes=0, port=0)
        exposed = Devstack(data_dir=tmp_path, host=host, computes=0, port=0, auth_token=TOKEN)  # not started
        # result URLs name a host clients here reach, so the client sends its token to them
        assert exposed.url.startswith("http://127.0.0.1:") if host in ("0.0.0.0", "") else host in exposed.url
        Devstack(data_dir=tmp_path, host=host, computes=0, port=0, insecure=True)


def test_cod_serve_refuses_an_exposed_api_without_a_token(tmp_path: Path, monkeypatch: Any,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("COD_AUTH_TOKEN", raising=False)
    code = main(["serve", "--orchestrator", "--api-host", "0.0.0.0", "--api-port", "0", "--data-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "--insecure" in err, err
    assert not (tmp_path / "orchestrator").exists()  # refused before anything started


def test_the_devstack_cli_refuses_an_exposed_host_without_a_token(tmp_path: Path, monkeypatch: Any,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("COD_AUTH_TOKEN", raising=False)
    code = main(["devstack", "--host", "0.0.0.0", "--port", "0", "--computes", "0", "--data-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "--insecure" in err, err


@pytest.mark.parametrize("content", [b"\x00garbage" * 1000, b"SQLite format 3\x00" + b"\xff" * 4000])
def test_a_corrupt_database_is_named_in_one_line(tmp_path: Path, content: bytes,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "orchestrator" / "jobs.db"
    db.parent.mkdir(parents=True)
    db.write_bytes(content)
    with pytest.raises(UnusableDatabase, match=f"{db} is damaged or not a cod database.*--data-dir"):
        Devstack(data_dir=tmp_path, computes=0, port=0).start()
    for transport in ("inprocess", "nats"):  # the orchestrator in this process, or in its own
        code = main(["devstack", "--port", "0", "--computes", "0", "--data-dir", str(tmp_path),
                     "--transport", transport])
        err = capsys.readouterr().err
        assert code == 1 and err.count("\n") == 1 and str(db) in err and "Traceback" not in err, err
    assert db.read_bytes() == content  # left as it was, for the operator to look at


def test_another_programs_database_is_named(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "compute" / "node-1" / "executions.db"
    db.parent.mkdir(parents=True)
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE executions (id TEXT PRIMARY KEY, payload BLOB)")
    with pytest.raises(UnusableDatabase, match=f"{db} belongs to another program or version .*executions.job"):
        Devstack(data_dir=tmp_path, computes=1, port=0).start()
