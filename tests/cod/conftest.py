"""Fixtures of the cod network tests: one devstack per test module, on a free port."""
from __future__ import annotations

from typing import Iterator

import pytest

from cod_reference.client import Client
from cod_reference.compute.policy import NodePolicy
from cod_reference.devstack import Devstack


@pytest.fixture(scope="module")
def cod_local_dir(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("cod-local")
    (path / "greeting.txt").write_text("hello from a local input\n")
    return path


@pytest.fixture(scope="module")
def cod_stack(tmp_path_factory: pytest.TempPathFactory, cod_local_dir) -> Iterator[Devstack]:
    stack = Devstack(data_dir=tmp_path_factory.mktemp("cod-stack"), computes=3, port=0,
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
