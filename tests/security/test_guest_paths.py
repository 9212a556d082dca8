"""Attacks through the files a guest writes: result paths, links, node files, published results."""
from __future__ import annotations

import os
import tarfile

import pytest
from sec_helpers import UP, Host, assert_node_alive, attack, everything_seen, result_members, submit_or_refused

from cod_reference.client import Client
from cod_reference.compute.paths import PathError, PinnedPath, open_beneath, plain_name
from cod_reference.compute.publisher import MAX_DEPTH
from cod_reference.models import AllowedPath


@pytest.mark.parametrize("name", ["..", ".", "a/b", "stdout", "exitCode", "x" * 300])
def test_result_path_names_must_be_plain(client: Client, host: Host, name: str) -> None:
    # with ".." the guest would get the execution dir: it replaces stdout/exitCode with links to host files
    steps = [f"rm /out/{f} + symlink {UP}{str(host.secret)[1:]} /out/{f}" for f in ("stdout", "stderr")]
    steps += [f"rm /out/exitCode + symlink {UP}{str(host.victim)[1:]} /out/exitCode",
              f"symlink {UP}{str(host.root)[1:]} /out/outputs-link"]
    job = submit_or_refused(client, attack(*steps, ResultPaths=[{"Name": name, "Path": "/out"}]))
    if job is not None:
        assert job["State"]["StateType"] == "Failed"
        assert "result path name" in job["State"]["Message"], job["State"]
        assert host.secret_text not in everything_seen(client, job)
    host.assert_untouched()
    assert_node_alive(client)


def test_resolve_allowed_refuses_unusable_paths(tmp_path) -> None:
    from cod_reference.compute.paths import resolve_allowed

    for bad in ("", "a\0b"):
        with pytest.raises(PathError):
            resolve_allowed(bad, [AllowedPath(str(tmp_path), False)], writable=False)


def test_plain_name() -> None:
    assert plain_name("out") is None and plain_name("a.b-c_d") is None
    for bad in ("", ".", "..", "a/b", "a\\b", "a\0b", "é" * 128):
        assert plain_name(bad)
    assert plain_name("stdout", reserved=("stdout",))


def test_published_results_hold_no_link_out(client: Client, host: Host) -> None:
    outside = f"{UP}{str(host.secret)[1:]}"
    job = submit_or_refused(client, attack(
        f"symlink {outside} /out/abs-ish", "symlink ../../stdout /out/node-file", "symlink .. /out/up",
        "symlink . /out/self", "mkdir /out/sub", "symlink ../kept.txt /out/sub/ok", "write /out/kept.txt kept",
        "symlink ../.. /out/sub/up2", f"deep /out {MAX_DEPTH + 10}", "cat /out/up/stdout",
        ResultPaths=[{"Name": "out", "Path": "/out"}]))
    assert job is not None and job["State"]["StateType"] == "Completed", job and job["State"]
    members = {m.name: m for m in result_members(client, job)}
    links = {name: m.linkname for name, m in members.items() if m.type == tarfile.SYMTYPE}
    assert links == {"out/self": ".", "out/sub/ok": "../kept.txt"}   # only links that stay inside
    assert members["out/kept.txt"].data == b"kept"
    assert max(name.count("/") for name in members) <= MAX_DEPTH   # deeper than that is left out
    assert host.secret_text not in everything_seen(client, job)
    (result,) = client.results(job["ID"])
    assert result["Params"]["Skipped"] >= 4
    host.assert_untouched()
    assert_node_alive(client)


def test_hard_link_of_a_read_only_input_cannot_be_written(client: Client, host: Host) -> None:
    ro = {"Source": {"Type": "local", "Params": {"SourcePath": str(host.ro)}}, "Target": "/data"}
    before = (host.ro / "data.txt").read_bytes()
    job = submit_or_refused(client, attack(
        "link /data/data.txt /out/hard", "write /out/hard pwned", "write /data/data.txt pwned",
        inputs=[ro], ResultPaths=[{"Name": "out", "Path": "/out"}]))
    assert job is not None and job["State"]["StateType"] == "Completed"
    assert (host.ro / "data.txt").read_bytes() == before
    assert "fail link /out/hard" in everything_seen(client, job)


def test_open_beneath_refuses_a_link_on_the_way(tmp_path) -> None:
    (tmp_path / "root" / "sub").mkdir(parents=True)
    (tmp_path / "root" / "sub" / "f").write_text("inside")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "f").write_text("outside")
    os.close(open_beneath(str(tmp_path / "root"), "sub/f"))
    (tmp_path / "root" / "hop").symlink_to(tmp_path / "outside")
    for relative in ("hop/f", "sub/../hop/f", "../outside/f"):
        with pytest.raises((PathError, OSError)):
            os.close(open_beneath(str(tmp_path / "root"), relative))


def test_a_pinned_path_survives_a_swap_for_a_link(tmp_path) -> None:
    # the check-then-open race: a directory of the path replaced by a link after it was checked
    root = tmp_path / "allowed"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "f.txt").write_text("checked")
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "f.txt").write_text("secret")
    pinned = PinnedPath.open(str(root / "sub"), AllowedPath(str(root), False))
    try:
        (root / "sub").rename(root / "moved")
        (root / "sub").symlink_to(tmp_path / "secret")
        assert open(os.path.join(pinned.host_path, "f.txt")).read() == "checked"
    finally:
        pinned.close()
    with pytest.raises(PathError):
        PinnedPath.open(str(root / "sub" / "f.txt"), AllowedPath(str(root), False))


def test_published_results_stop_at_the_entry_cap(client: Client, host: Host, monkeypatch: pytest.MonkeyPatch) -> None:
    from cod_reference.compute import publisher

    monkeypatch.setattr(publisher, "MAX_ENTRIES", 50)
    job = submit_or_refused(client, attack("many /out 200", ResultPaths=[{"Name": "out", "Path": "/out"}]))
    assert job is not None and job["State"]["StateType"] == "Completed", job and job["State"]
    names = {m.name for m in result_members(client, job)}
    assert len(names) == 50 and {"stdout", "stderr", "exitCode"} <= names
    (result,) = client.results(job["ID"])
    assert result["Params"]["Skipped"] >= 150


def test_the_executor_refuses_a_writable_mount_through_a_link(tmp_path) -> None:
    # defence in depth: whoever builds the request, a writable mount reached through a link is refused
    from cod_reference.executor.mounts import MountError, prepare_mounts
    from cod_reference.executor.types import Mount

    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "f.txt").write_text("x")
    (tmp_path / "dir-link").symlink_to(tmp_path / "real")
    (tmp_path / "file-link").symlink_to(tmp_path / "real" / "f.txt")
    for host, guest in (("dir-link", "/out"), ("file-link", "/out/f.txt"), ("dir-link/f.txt", "/out/f.txt")):
        with pytest.raises(MountError, match="goes through a symbolic link"):
            prepare_mounts([Mount(str(tmp_path / host), guest, readonly=False)])
    prepare_mounts([Mount(str(tmp_path / "dir-link"), "/in")]).cleanup()   # read-only: followed, as before
