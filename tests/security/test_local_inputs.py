"""Attacks through allow-listed local paths: links out of them, '..', links planted by another job."""
from __future__ import annotations

import pytest
from sec_helpers import Host, assert_node_alive, attack, everything_seen, submit_or_refused, wait

from cod_reference.client import Client


def local(path: str, target: str = "/data", read_write: bool = False) -> dict:
    params = {"SourcePath": path, **({"ReadWrite": True} if read_write else {})}
    return {"Source": {"Type": "local", "Params": params}, "Target": target}


@pytest.mark.parametrize("source", ["ro/escape", "ro/escape-dir", "ro/../secret.txt", "ro/escape-dir/secret.txt"])
def test_a_path_resolving_out_of_the_allow_list_is_refused(client: Client, host: Host, source: str) -> None:
    doc = attack("cat /data", "cat /data/secret.txt", inputs=[local(f"{host.root}/{source}")])
    job = submit_or_refused(client, doc)
    if job is not None:
        assert job["State"]["StateType"] == "Failed"
        assert "allow-listed" in job["State"]["Message"] or "not enough nodes" in job["State"]["Message"]
        assert host.secret_text not in everything_seen(client, job)
    host.assert_untouched()


def test_links_inside_a_mounted_dir_are_not_followed_out(client: Client, host: Host) -> None:
    job = submit_or_refused(client, attack("cat /data/escape", "cat /data/escape-dir/secret.txt",
                                           "cat /data/data.txt", inputs=[local(str(host.ro))]))
    assert job is not None and job["State"]["StateType"] == "Completed", job and job["State"]
    seen = everything_seen(client, job)
    assert "ok cat /data/data.txt: allowed data" in seen
    assert host.secret_text not in seen


def test_a_link_planted_by_one_job_does_not_lead_the_next_out(client: Client, host: Host) -> None:
    planted = submit_or_refused(client, attack(
        "symlink ../secret.txt /data/planted", "symlink .. /data/planted-dir", "symlink ../victim.txt /data/victim",
        inputs=[local(str(host.rw), read_write=True)]))
    assert planted is not None and planted["State"]["StateType"] == "Completed"
    assert (host.rw / "planted").is_symlink()
    # mounting the link, or a path through it, is refused ...
    for source, rw in (("planted", False), ("planted-dir/secret.txt", False), ("victim", True)):
        job = submit_or_refused(client, attack("cat /data", "write /data pwned",
                                               inputs=[local(f"{host.rw}/{source}", read_write=rw)]))
        assert job is not None and job["State"]["StateType"] == "Failed", source
        assert host.secret_text not in everything_seen(client, job)
    # ... and a job mounting the whole dir cannot follow it either
    job = submit_or_refused(client, attack("cat /data/planted", "write /data/victim pwned",
                                           "cat /data/planted-dir/secret.txt",
                                           inputs=[local(str(host.rw), read_write=True)]))
    assert job is not None and host.secret_text not in everything_seen(client, job)
    host.assert_untouched()
    assert_node_alive(client)


def test_a_read_write_input_that_is_a_link_is_refused(client: Client, host: Host) -> None:
    # rw/inside -> rw/real.txt: written back, it would land on the link's target
    before = (host.rw / "real.txt").read_bytes()
    job = submit_or_refused(client, attack("write /data/f.txt pwned",
                                           inputs=[local(str(host.rw / "inside"), "/data/f.txt", read_write=True)]))
    assert job is not None and job["State"]["StateType"] == "Failed"
    assert "is a symbolic link; a ReadWrite input must be the file or directory itself" in everything_seen(client, job)
    assert (host.rw / "real.txt").read_bytes() == before and (host.rw / "inside").is_symlink()
    # the file itself may be mounted read-write, and is written back
    job = submit_or_refused(client, attack("write /data/f.txt written",
                                           inputs=[local(str(host.rw / "real.txt"), "/data/f.txt", read_write=True)]))
    assert job is not None and job["State"]["StateType"] == "Completed", job and job["State"]
    assert (host.rw / "real.txt").read_text() == "written"
    (host.rw / "real.txt").write_bytes(before)


def test_a_read_write_file_swapped_for_a_link_is_not_copied_back(client: Client, host: Host) -> None:
    # the guest replaces its staged copy of the file with a link to a host file: the copy-back
    # would write the host file's content into the allowed file, for the next job to read
    target = host.rw / "copied.txt"
    target.write_text("mine\n")
    job = submit_or_refused(client, attack(
        "rm /data/f.txt", f"symlink ../../../../../../../../../../../../../../..{host.secret} /data/f.txt",
        inputs=[local(str(target), "/data/f.txt", read_write=True)]))
    assert job is not None
    assert host.secret_text not in target.read_text()
    assert target.read_text() == "mine\n" and not target.is_symlink()
    host.assert_untouched()


def test_deep_trees_in_a_writable_file_mount_do_not_break_the_node(client: Client, host: Host) -> None:
    target = host.rw / "deep-host.txt"
    target.write_text("x\n")
    job = submit_or_refused(client, attack("deep /data 300", inputs=[local(str(target), "/data/f.txt",
                                                                          read_write=True)]))
    assert job is not None and job["State"]["StateType"] == "Completed", job and job["State"]
    assert_node_alive(client)


def test_a_path_flipping_between_a_dir_and_a_link_never_leads_out(client: Client, host: Host) -> None:
    # one job flips rw/flip between a directory and a link to the host's root as fast as it
    # can, while other jobs mount rw/flip: the node checks and opens it in one motion (pinned)
    flipper = client.submit(attack("flip /data/flip .. 0", inputs=[local(str(host.rw), read_write=True)],
                                   Timeouts={"ExecutionTimeout": 20}, Publisher={"Type": "noop"}))["JobID"]
    wait(lambda: (host.rw / "flip.real").exists() or (host.rw / "flip").exists(), "the flipping to start")
    outcomes = []
    for _ in range(8):
        job = submit_or_refused(client, attack("cat /data/secret.txt", inputs=[local(f"{host.rw}/flip")],
                                               Publisher={"Type": "noop"}))
        assert job is not None
        assert host.secret_text not in everything_seen(client, job)
        outcomes.append(job["State"]["StateType"])
    client.stop(flipper)
    client.wait(flipper, timeout=30, interval=0.05)
    host.assert_untouched()
    assert outcomes   # each either refused (the link was there) or mounted the empty directory


@pytest.mark.parametrize("local_inputs, results", [(64, 0), (10, 60)])
def test_too_many_mounts_are_refused(client: Client, host: Host, local_inputs: int, results: int) -> None:
    # each mount is held open while the guest runs: a thousand of them, times every
    # execution, would run the node out of file descriptors
    inputs = [local(str(host.ro), f"/d{i}") for i in range(local_inputs)]
    outputs = [{"Name": f"r{i}", "Path": f"/r{i}"} for i in range(results)]
    job = submit_or_refused(client, attack("cat /d0/data.txt", inputs=inputs, ResultPaths=outputs))
    assert job is not None and job["State"]["StateType"] == "Failed"
    assert "this node mounts at most 64" in everything_seen(client, job)
