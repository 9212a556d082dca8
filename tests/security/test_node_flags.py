"""The operator's node limits reach the node from `cod devstack` and `cod serve` flags."""
from __future__ import annotations

import pytest

from cod_reference.cli.app import build_parser
from cod_reference.cli.stack import node_policy
from cod_reference.compute.policy import NodePolicy


@pytest.mark.parametrize("command", [["devstack"], ["serve", "--compute"]])
def test_node_limit_flags(command: list[str]) -> None:
    args = build_parser().parse_args([*command, "--allow-url-host", "127.0.0.1", "--allow-url-host", "10.0.0.0/8",
                                      "--default-execution-timeout", "90s", "--max-download-size", "64MiB",
                                      "--download-timeout", "2m", "--retention", "none", "--retention-size", "1GiB",
                                      "--retention-sweep", "5s",
                                      "--max-running-executions", "4", "--max-result-size", "2GiB",
                                      "--max-execution-timeout", "1h"])
    assert node_policy(args) == NodePolicy(allow_url_hosts=["127.0.0.1", "10.0.0.0/8"], default_execution_timeout_s=90,
                                           max_download_bytes=64 << 20, download_timeout_s=120, retention_s=None,
                                           retention_bytes=1 << 30, retention_sweep_s=5, max_running_executions=4,
                                           max_result_bytes=2 << 30, max_execution_timeout_s=3600)
    assert node_policy(build_parser().parse_args(command)) == NodePolicy()


@pytest.mark.parametrize("flag", [["--retention", "soon"], ["--retention-size", "0"], ["--retention-sweep", "0"],
                                  ["--max-running-executions", "0"], ["--default-execution-timeout", "-1"]])
def test_bad_node_limit_flags_are_refused(flag: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["devstack", *flag])
    assert flag[0] in capsys.readouterr().err
