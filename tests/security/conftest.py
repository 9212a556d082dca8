"""Fixtures of the attack tests: a real devstack, a host with files a guest must never reach."""
from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from sec_helpers import Host

from cod_reference.client import Client
from cod_reference.devstack import Devstack


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Host:
    """Files of the node's host: a secret to read, a victim to overwrite, and allow-listed dirs."""
    root = tmp_path_factory.mktemp("host")
    host = Host(root=root, secret=root / "secret.txt", victim=root / "victim.txt", ro=root / "ro", rw=root / "rw",
                secret_text=f"TOP-SECRET-{secrets.token_hex(8)}")
    host.secret.write_text(host.secret_text)
    host.victim.write_text("victim: leave me alone\n")
    host.ro.mkdir()
    host.rw.mkdir()
    (host.ro / "data.txt").write_text("allowed data\n")
    (host.ro / "escape").symlink_to(host.secret)          # a link inside an allowed dir pointing out
    (host.ro / "escape-dir").symlink_to(root)
    (host.rw / "real.txt").write_text("real\n")
    (host.rw / "inside").symlink_to(host.rw / "real.txt")  # a link that stays inside
    host.remember()
    return host


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, host: Host) -> Iterator[Devstack]:
    stack = Devstack(data_dir=tmp_path_factory.mktemp("sec-stack"), computes=1, port=0,
                     capacity={"CPU": 2.0, "Memory": 2 * 2**30},
                     allowed_local_paths=[f"{host.ro}:ro", f"{host.rw}:rw"], heartbeat_interval_s=0.5)
    stack.start()
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def client(stack: Devstack) -> Iterator[Client]:
    with Client(port=stack.port) as client:
        yield client
