"""Fixtures of the cod network tests: one devstack per test module, on a free port."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from cod_cli import cod_cli
from cod_reference.client import Client
from cod_reference.compute.policy import NodePolicy
from cod_reference.devstack import Devstack
from cod_reference.procstack import ProcessDevstack


@pytest.fixture(scope="module")
def cod_local_dir(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("cod-local")
    (path / "greeting.txt").write_text("hello from a local input\n")
    return path


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``cod_stack`` is the in-process devstack; a module listing ``COD_TRANSPORTS = ("inprocess", "nats")``
    runs its tests on the multi-process devstack over NATS too."""
    if "cod_stack" in metafunc.fixturenames:
        transports = getattr(metafunc.module, "COD_TRANSPORTS", ("inprocess",))
        metafunc.parametrize("cod_stack", transports, indirect=True, scope="module")


@pytest.fixture(scope="module")
def cod_stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
              cod_local_dir) -> Iterator[Devstack | ProcessDevstack]:
    kind = ProcessDevstack if getattr(request, "param", "inprocess") == "nats" else Devstack
    stack = kind(data_dir=tmp_path_factory.mktemp("cod-stack"), computes=3, port=0,
                 capacity={"CPU": 2.0, "Memory": 2 * 2**30},
                 allowed_local_paths=[str(cod_local_dir)], heartbeat_interval_s=0.5,
                 node_policy=NodePolicy(allow_url_hosts=["127.0.0.1"]))  # urlDownload of the stack's results
    stack.start()
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def cod_client(cod_stack: Devstack) -> Iterator[Client]:
    with Client(port=cod_stack.port) as client:
        yield client


@pytest.fixture()
def cod(cod_stack, capsys, monkeypatch):
    """Run the cod command line against the module's devstack: ``cod(*args) -> (code, out, err)``."""
    return cod_cli(cod_stack.port, capsys, monkeypatch)
