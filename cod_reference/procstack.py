"""A devstack of separate OS processes: ``nats-server``, the orchestrator and each compute node.

What ``cod devstack`` starts by default. Each node is a ``cod serve`` child process talking over
NATS, as on several machines; any of them can be killed (``kill -9``), paused (``SIGSTOP``) and
started again, which is what the fault tests do. Layout of the data dir: ``nats/`` (JetStream's
store), ``orchestrator/`` and ``traces/`` (the orchestrator's), ``compute/<node>/`` (each node's own
dir) and ``logs/<process>.log``. Nodes are ``node-1`` ... ``node-N`` as in the in-process devstack.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from .api_guard import check_exposure
from .apiserver import reachable_host
from .compute.node import default_capacity
from .compute.policy import NodePolicy
from .models.limits import DEFAULT_MAX_UNFINISHED_JOBS, DEFAULT_SUBMIT_BURST, DEFAULT_SUBMIT_RATE
from .natsserver import NatsAuth, NatsServer
from .netutil import free_port

ORCHESTRATOR = "orchestrator"
PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)


def policy_flags(policy: NodePolicy) -> list[str]:
    """``cod serve`` flags that give a compute node ``policy``."""
    flags = ["--default-execution-timeout", f"{policy.default_execution_timeout_s}s",
             "--max-running-executions", str(policy.max_running_executions),
             "--max-download-size", str(policy.max_download_bytes),
             "--download-timeout", f"{policy.download_timeout_s}s",
             "--retention", "none" if policy.retention_s is None else f"{policy.retention_s}s",
             "--retention-size", "none" if policy.retention_bytes is None else str(policy.retention_bytes),
             "--retention-sweep", f"{policy.retention_sweep_s}s"]
    for host in policy.allow_url_hosts:
        flags += ["--allow-url-host", host]
    return flags


class ProcessDevstack:
    def __init__(self, *, data_dir: str | Path | None = None, computes: int = 3, port: int = 1234,
                 host: str = "127.0.0.1", bad_computes: int = 0, capacity: dict[str, float] | None = None,
                 allowed_local_paths: list[str] | None = None, heartbeat_interval_s: float = 1.0,
                 disconnect_timeout_s: float = 10.0, compute_labels: dict[int, dict[str, str]] | None = None,
                 nats_auth: NatsAuth | None = None, auth_token: str = "", insecure: bool = False,
                 node_policy: NodePolicy | None = None, default_queue_timeout_s: float = 0.0,
                 start_timeout_s: float = 30.0, submit_rate: float = DEFAULT_SUBMIT_RATE,
                 submit_burst: int = DEFAULT_SUBMIT_BURST,
                 max_unfinished_jobs: int = DEFAULT_MAX_UNFINISHED_JOBS) -> None:
        if computes < 0 or bad_computes < 0:
            raise ValueError("the number of compute nodes cannot be negative")
        if not 0 <= port <= 65535:
            raise ValueError(f"port {port} is not between 0 and 65535")
        self._own_dir = data_dir is None
        self.data_dir = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="cod-devstack-"))
        self.n_computes = computes
        self.bad_computes = bad_computes
        self.host = host
        self.port = port or free_port(host)
        #: a port picked here may be taken before the orchestrator binds it: then pick another
        self._free_port_retries = 3 if port == 0 else 0
        self.capacity = capacity or default_capacity()
        self.allowed_local_paths = list(allowed_local_paths or [])
        self.heartbeat_interval_s = heartbeat_interval_s
        self.disconnect_timeout_s = disconnect_timeout_s
        self.compute_labels = compute_labels or {}
        self.auth = nats_auth or NatsAuth()
        check_exposure(host, auth_token, insecure)
        self.auth_token = auth_token
        self.insecure = insecure
        self.node_policy = node_policy or NodePolicy()
        self.default_queue_timeout_s = default_queue_timeout_s
        self.submit_rate = submit_rate
        self.submit_burst = submit_burst
        self.max_unfinished_jobs = max_unfinished_jobs
        self.start_timeout_s = start_timeout_s
        self.nats = NatsServer(self.data_dir / "nats", host=host, port=0, auth=self.auth,
                               log_file=self.data_dir / "logs" / "nats-server.log")
        #: the command line of each node process, by name ("orchestrator", "node-1", ...)
        self.commands: dict[str, list[str]] = {}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        return f"http://{reachable_host(self.host)}:{self.port}"

    @property
    def computes(self) -> list[str]:
        return [name for name in self.commands if name != ORCHESTRATOR]

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> ProcessDevstack:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.nats.start()
            self._set_orchestrator_command()
            self.start_process(ORCHESTRATOR)
            for i in range(1, self.n_computes + self.bad_computes + 1):
                self.add_compute(bad=i > self.n_computes, wait=False)
            self.wait_ready()
        except BaseException:
            self.cleanup()
            raise
        return self

    def _set_orchestrator_command(self) -> None:
        self.commands[ORCHESTRATOR] = self._serve_args(
            "--orchestrator", "--data-dir", str(self.data_dir), "--api-host", self.host,
            "--api-port", str(self.port), "--disconnect-timeout", str(self.disconnect_timeout_s),
            "--default-queue-timeout", str(self.default_queue_timeout_s),
            "--submit-rate", repr(float(self.submit_rate)), "--submit-burst", str(self.submit_burst),
            "--max-unfinished-jobs", str(self.max_unfinished_jobs))

    def _serve_args(self, *args: str) -> list[str]:
        nats = ["--nats-url", self.nats.url]
        a = self.auth
        for flag, value in (("--nats-token", a.token), ("--nats-user", a.user), ("--nats-password", a.password),
                            ("--nats-tls-ca", a.tls_ca)):
            if value:
                nats += [flag, value]
        if self.insecure:
            nats.append("--insecure")
        return [sys.executable, "-m", "cod_reference", "serve", *args, *nats]

    def add_compute(self, *, bad: bool = False, labels: dict[str, str] | None = None,
                    allowed_local_paths: list[str] | None = None, wait: bool = True) -> str:
        """Start one more compute node process (``node-<n>``); returns its id."""
        index = len(self.computes) + 1
        node_id = f"node-{index}"
        node_labels = {"env": "devstack", **self.compute_labels.get(index, {}), **(labels or {})}
        args = ["--compute", "--node-id", node_id, "--data-dir", str(self.data_dir / "compute" / node_id),
                "--api-host", self.host, "--api-port", "0", "--heartbeat-interval", str(self.heartbeat_interval_s),
                "--labels", ",".join(f"{k}={v}" for k, v in node_labels.items()),
                "--cpu", str(self.capacity["CPU"]), "--memory", str(int(self.capacity["Memory"]))]
        for path in self.allowed_local_paths if allowed_local_paths is None else allowed_local_paths:
            args += ["--allow-local-path", path]
        if bad:
            args.append("--bad")
        args += policy_flags(self.node_policy)
        self.commands[node_id] = self._serve_args(*args)
        self.start_process(node_id)
        if wait:
            self.wait_ready()
        return node_id

    def start_process(self, name: str) -> int:
        """Start (or start again) the process ``name``; returns its pid."""
        old = self.processes.get(name)
        if old is not None and old.poll() is None:
            raise RuntimeError(f"{name} is already running (pid {old.pid})")
        logs = self.data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        path = os.pathsep.join(filter(None, [PACKAGE_ROOT, os.environ.get("PYTHONPATH")]))
        env = dict(os.environ, PYTHONPATH=path, COD_AUTH_TOKEN=self.auth_token)  # not in argv, which `ps` shows
        with open(logs / f"{name}.log", "ab") as log:
            self.processes[name] = subprocess.Popen(self.commands[name], stdout=log, stderr=subprocess.STDOUT,
                                                    stdin=subprocess.DEVNULL, env=env)
        return self.processes[name].pid

    def wait_ready(self, timeout_s: float | None = None) -> None:
        """Wait until the API answers and every running compute node is CONNECTED."""
        deadline = time.monotonic() + (timeout_s or self.start_timeout_s)
        wanted = {n for n in self.computes if self.alive(n)}
        headers = {"Authorization": f"Bearer {self.auth_token}"} if self.auth_token else {}
        while True:
            if self._port_taken():
                self._free_port_retries -= 1
                self.port = free_port(self.host)
                self._set_orchestrator_command()
                self.start_process(ORCHESTRATOR)
            for name, proc in self.processes.items():
                if proc.poll() is not None and (name == ORCHESTRATOR or name in wanted):
                    # an OSError: the CLI says it in one line (the child's own error is in the tail)
                    raise ChildProcessError(f"{name} exited with status {proc.returncode}: {self.log_tail(name)}")
            try:
                answer = httpx.get(f"{self.url}/api/v1/orchestrator/nodes", timeout=2, headers=headers)
                nodes = answer.json()["Nodes"]
                connected = {n["Info"]["NodeID"] for n in nodes if n["Connection"] == "CONNECTED"}
                if wanted <= connected:
                    self._free_port_retries = 0  # from now on the API stays on this port
                    return
            except (httpx.HTTPError, KeyError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the devstack was not ready within {timeout_s or self.start_timeout_s:g}s "
                                   f"(logs in {self.data_dir / 'logs'})")
            time.sleep(0.05)

    def _port_taken(self) -> bool:
        """Whether the orchestrator's first start failed because another process took its port."""
        return bool(self._free_port_retries and not self.alive(ORCHESTRATOR)
                    and "cannot listen on" in self.log_tail(ORCHESTRATOR, 2))

    def alive(self, name: str) -> bool:
        proc = self.processes.get(name)
        return proc is not None and proc.poll() is None

    def pid(self, name: str) -> int:
        return self.processes[name].pid

    def log_tail(self, name: str, lines: int = 5) -> str:
        try:
            text = (self.data_dir / "logs" / f"{name}.log").read_text(errors="replace")
        except OSError:
            return "(no log)"
        return " | ".join(text.strip().splitlines()[-lines:])

    # ------------------------------------------------------------------ faults

    def kill(self, name: str) -> None:
        """``kill -9`` the process ``name`` and reap it."""
        proc = self.processes[name]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()

    def pause(self, name: str) -> None:
        os.kill(self.processes[name].pid, signal.SIGSTOP)

    def resume(self, name: str) -> None:
        os.kill(self.processes[name].pid, signal.SIGCONT)

    def restart_nats(self, downtime_s: float = 0.0) -> None:
        self.nats.stop()
        time.sleep(downtime_s)
        self.nats.start()

    # ------------------------------------------------------------------ stopping

    def stop(self) -> None:
        order = [n for n in self.processes if n != ORCHESTRATOR] + [ORCHESTRATOR]
        for name in order:  # compute nodes first: their last results and spans reach the orchestrator
            proc = self.processes.get(name)
            if proc is not None and proc.poll() is None:
                try:
                    proc.send_signal(signal.SIGCONT)  # a paused process cannot act on SIGTERM
                    proc.terminate()
                except ProcessLookupError:
                    pass
        for name in order:
            proc = self.processes.get(name)
            if proc is None:
                continue
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.nats.stop()

    def cleanup(self) -> None:
        """Stop, and remove the data dir if the devstack made it."""
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> ProcessDevstack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    def describe(self) -> str:
        lines = [f"devstack: orchestrator + {len(self.computes)} compute node(s), each its own process, over NATS",
                 f"  web UI:    {self.url}/",
                 f"  API:       {self.url}/api/v1/orchestrator  (OpenAPI: {self.url}/docs)",
                 f"  NATS:      {self.nats.url}",
                 "  processes: " + ", ".join(f"{n}={p.pid}" for n, p in self.processes.items()),
                 f"  data dir:  {self.data_dir}  (logs in {self.data_dir / 'logs'})",
                 f"  try:       COD_API_PORT={self.port} python -m cod_reference node list"]
        return "\n".join(lines)
