"""A small client of the orchestrator's HTTP API (used by the CLI, the demo and the tests)."""
from __future__ import annotations

import io
import os
import tarfile
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from observe_sdk.gcpause import gc_paused

from .errors import CodError
from .models import Job, spec_to_dict

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 1234
PREFIX = "/api/v1/orchestrator"


class APIError(CodError):
    """The API answered with an error, or could not be reached; the message is one line.
    ``retry_after``: the seconds its ``Retry-After`` header asked to wait (0 without one);
    ``body``: the error document (``Code``, and ``FilesRemoved`` with a 410 Gone), {} without one."""

    def __init__(self, message: str, status: int = 0, retry_after: float = 0.0,
                 body: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        self.body = body or {}


class ResultsRemoved(APIError):
    """``download_results``: a node's retention removed the results of some executions (410 Gone).
    The message has one line for each; ``written`` are the directories of the results that were there."""

    def __init__(self, messages: list[str], written: list[Path]) -> None:
        super().__init__("\n".join(messages), 410)
        self.messages = messages
        self.written = written


class Client:
    def __init__(self, host: str | None = None, port: int | str | None = None, timeout: float = 30.0,
                 token: str | None = None) -> None:
        self.host = host or os.environ.get("COD_API_HOST") or DEFAULT_HOST
        raw_port = port or os.environ.get("COD_API_PORT") or DEFAULT_PORT
        try:
            self.port = int(raw_port)
        except ValueError:
            raise APIError(f"the API port must be a number, not {raw_port!r}") from None
        self.base = f"http://{self.host}:{self.port}"
        token = token if token is not None else os.environ.get("COD_AUTH_TOKEN", "")
        self._auth = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.base, timeout=timeout, headers=self._auth)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.ConnectError:
            raise APIError(f"cannot reach the orchestrator at {self.base} (is a devstack running? "
                           "see --api-host/--api-port or COD_API_HOST/COD_API_PORT)") from None
        except httpx.HTTPError as exc:
            raise APIError(f"request to {self.base}{path} failed: {exc}") from None
        if response.status_code >= 400:
            raise APIError(_error_message(response, self.base), response.status_code,
                           _retry_after(response.headers.get("retry-after")), _error_body(response))
        try:
            with gc_paused():  # a large answer (a 124k-span trace: millions of objects, no cycles) decodes faster
                return response.json()
        except ValueError:
            raise APIError(f"{self.base}{path} did not answer with JSON (is it a cod orchestrator?)") from None

    # ------------------------------------------------------------------ jobs

    def submit(self, job: Job | dict[str, Any], idempotency_key: str = "", retry_s: float = 0.0) -> dict[str, Any]:
        """Submit ``job`` (a parsed :class:`~cod_reference.models.Job`, or a spec document). With an
        ``idempotency_key`` a repeated submission returns the job the first one created, so one whose
        answer was lost (the orchestrator unreachable or restarting) is retried for up to ``retry_s``
        seconds without creating a second job. A refusal for load (429: this client's submission
        rate, or the network's cap of unfinished jobs; no job was made) is retried after its
        ``Retry-After``, key or not, when that is still within ``retry_s``; otherwise the
        :class:`APIError` carries the server's message, ``status`` 429 and ``retry_after``."""
        doc = spec_to_dict(job) if isinstance(job, Job) else job
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        deadline = time.monotonic() + retry_s
        while True:
            try:
                return self._call("PUT", f"{PREFIX}/jobs", json={"Job": doc}, headers=headers)
            except APIError as exc:
                if exc.status == 429:
                    pause = exc.retry_after or 1.0
                    if time.monotonic() + pause > deadline:
                        raise
                    time.sleep(pause)
                    continue
                retryable = exc.status in (0, 502, 503, 504)
                if not (idempotency_key and retryable and time.monotonic() < deadline):
                    raise
                time.sleep(0.2)

    def get_job(self, ref: str, include: str = "") -> dict[str, Any]:
        return self._call("GET", _job_path(ref), params={"include": include} if include else None)

    def list_jobs(self, limit: int = 100, labels: str = "") -> list[dict[str, Any]]:
        return self._call("GET", f"{PREFIX}/jobs", params={"limit": limit, "labels": labels})["Items"]

    def executions(self, ref: str) -> list[dict[str, Any]]:
        return self._call("GET", _job_path(ref, "executions"))["Items"]

    def history(self, ref: str, next_token: str = "", event_type: str = "all",
                execution_id: str = "") -> dict[str, Any]:
        return self._call("GET", _job_path(ref, "history"),
                          params={"next_token": next_token, "event_type": event_type, "execution_id": execution_id})

    def logs(self, ref: str, execution_id: str = "", stdout_offset: int = 0, stderr_offset: int = 0) -> dict[str, Any]:
        return self._call("GET", _job_path(ref, "logs"),
                          params={"execution_id": execution_id, "stdout_offset": stdout_offset,
                                  "stderr_offset": stderr_offset})

    def results(self, ref: str) -> list[dict[str, Any]]:
        return self._call("GET", _job_path(ref, "results"))["Items"]

    def trace(self, ref: str, format: str = "otlp") -> dict[str, Any]:
        return self._call("GET", _job_path(ref, "trace"), params={"format": format})

    def stop(self, ref: str, reason: str = "") -> dict[str, Any]:
        return self._call("DELETE", _job_path(ref), params={"reason": reason} if reason else None)

    def nodes(self) -> list[dict[str, Any]]:
        return self._call("GET", f"{PREFIX}/nodes")["Nodes"]

    def node(self, node_id: str) -> dict[str, Any]:
        return self._call("GET", f"{PREFIX}/nodes/{urllib.parse.quote(node_id, safe='')}")["Node"]

    def metrics(self) -> dict[str, Any]:
        return self._call("GET", "/api/v1/agent/metrics")

    # ------------------------------------------------------------------ helpers

    def wait(self, ref: str, timeout: float = 300.0, interval: float = 0.1,
             on_event: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """Poll the job's history until it reaches a final state; returns the job. An orchestrator
        that is restarting (503) is waited for too."""
        deadline = time.monotonic() + timeout
        token = "0"
        while True:
            try:
                page = self.history(ref, token)
            except APIError as exc:
                if exc.status != 503 or time.monotonic() > deadline:
                    raise
                time.sleep(max(interval, 0.2))
                continue
            for event in page["Items"]:
                if on_event:
                    on_event(event)
            if not page["NextToken"]:
                return self.get_job(ref)["Job"]
            token = page["NextToken"]
            if time.monotonic() > deadline:
                raise APIError(f"job {ref} did not finish within {timeout:g}s "
                               f"(state {page['State']['StateType']})")
            time.sleep(interval)

    def download_results(self, ref: str, output_dir: str | Path) -> list[Path]:
        """Fetch and unpack the published results; one dir per execution when there are several.
        Results a node's retention removed (410 Gone) are skipped, then :class:`ResultsRemoved` says
        which, with the directories of the others."""
        items = self.results(ref)
        out = Path(output_dir)
        out.mkdir(parents=True, exist_ok=True)
        written: list[Path] = []
        removed: list[str] = []
        for item in items:
            url = (item.get("Params") or {}).get("URL")
            if not url:
                continue
            try:
                # the token goes only to the orchestrator that gave it, not to a result stored elsewhere
                response = httpx.get(url, timeout=60, headers=self._auth if url.startswith(self.base + "/") else {})
                if response.status_code == 410:
                    removed.append(_error_message(response, url))
                    continue
                response.raise_for_status()
            except httpx.HTTPError as exc:
                raise APIError(f"cannot download {url}: {exc}") from None
            dest = out if len(items) == 1 else out / f"{item['PartitionIndex']}-{item['ExecutionID'][:10]}"
            dest.mkdir(parents=True, exist_ok=True)
            try:
                with tarfile.open(fileobj=io.BytesIO(response.content), mode="r:gz") as tar:
                    tar.extractall(dest, filter="data")
            except tarfile.TarError as exc:
                raise APIError(f"the result at {url} is not a readable tarball: {exc}") from None
            written.append(dest)
        if removed:
            raise ResultsRemoved(removed, written)
        return written


def _error_message(response: httpx.Response, base: str) -> str:
    """One line from an error answer: the API's Message (or FastAPI's detail), else the status."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("Message") or body.get("detail"), str):
        return body.get("Message") or body["detail"]
    return f"HTTP {response.status_code} {response.reason_phrase} from {base} (is it a cod orchestrator?)"


def _error_body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _retry_after(value: str | None) -> float:
    """Seconds from a ``Retry-After`` header given in seconds (0 when absent; an HTTP date counts as 1 s,
    a value past an hour as an hour)."""
    if not value:
        return 0.0
    value = value.strip()
    return float(min(int(value), 3600)) if value.isascii() and value.isdigit() else 1.0


def _job_path(ref: str, *rest: str) -> str:
    """The API path of job ``ref`` (quoted: an ID, prefix or name may hold '/', '?' or '#')."""
    return "/".join((f"{PREFIX}/jobs", urllib.parse.quote(ref, safe=""), *rest))
