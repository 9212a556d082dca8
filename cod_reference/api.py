"""The HTTP API (FastAPI): ``/api/v1/orchestrator/...``, ``/api/v1/compute/...``, ``/api/v1/agent/...``.

Errors are JSON ``{"Status": <http status>, "Code": <short code>, "Message": <one line>}``; logs or
results that a node's retention removed are 410 Gone, Code ``Removed``, with the removal as ``FilesRemoved``.
Every parameter is bounded (:mod:`cod_reference.models.limits`); the guards of
:mod:`cod_reference.api_guard` (body size, Host header, bearer token, submission rate) run
before any route. Admission: a client past its submission rate, or a new job while the
orchestrator holds its cap of unfinished jobs, is a 429 with ``Retry-After``.
The OpenAPI description is served at ``/openapi.json`` (and browsable at ``/docs``).
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from observe_sdk.version import __version__

from .api_guard import BearerAuth, BodyLimit, HostCheck, SubmitRateLimit
from .errors import CodError
from .models import Removed, SpecError, execution_to_dict, job_to_dict, node_state_to_dict, parse_job, removal_to_dict
from .models.limits import (
    DEFAULT_SUBMIT_BURST,
    DEFAULT_SUBMIT_RATE,
    MAX_BODY_BYTES,
    MAX_NAME,
    MAX_RATE_CLIENTS,
    MAX_REF,
    MAX_TOKEN,
    MAX_VALUE,
)
from .orchestrator import Orchestrator, StopError
from .orchestrator.node_api import NodeAPI
from .orchestrator.store import Ambiguous, NotFound, TooManyUnfinishedJobs
from .states import ComputeState, TransitionError
from .telemetry import otlp_json
from .traceview import render as render_trace
from .transport.messages import extract_context
from .webui import register as register_web_ui

log = logging.getLogger(__name__)

PREFIX = "/api/v1/orchestrator"
COMPUTE_PATH = "/api/v1/compute/"
#: a submission repeating an Idempotency-Key header gets the job its first one created
MAX_IDEMPOTENCY_KEY = 256
#: seconds a client refused for the cap of unfinished jobs is told to wait (jobs take a while to finish)
UNFINISHED_RETRY_AFTER_S = 5
VIEW_MEDIA_TYPES = {"html": "text/html; charset=utf-8", "chrome-trace": "application/json",
                    "folded": "text/plain; charset=utf-8"}


JobRef = Annotated[str, PathParam(max_length=MAX_REF, description="a job ID, unique ID prefix or name")]
ExecutionRef = Annotated[str, Query(max_length=MAX_REF, description="an execution ID or unique prefix")]
NextToken = Annotated[str, Query(pattern=r"^[0-9]{0,18}$", description="from the previous page")]
Offset = Annotated[int, Query(ge=0, le=MAX_TOKEN)]
Text = Annotated[str, Query(max_length=MAX_VALUE)]
NodeRef = Annotated[str, PathParam(max_length=MAX_NAME)]


class SubmitRequest(BaseModel):
    Job: dict[str, Any] = Field(description="the job spec, with Bacalhau's field names")
    Force: bool = False


class SubmitResponse(BaseModel):
    JobID: str
    EvaluationID: str
    Warnings: list[str] = []


class StopResponse(BaseModel):
    EvaluationID: str


class OrchestratorDown(CodError):
    """The API is up but its orchestrator is stopped (between a stop and a restart)."""


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None,
           **extra: Any) -> JSONResponse:
    return JSONResponse({"Status": status, "Code": code, "Message": message, **extra}, status_code=status,
                        headers=headers)


def create_app(get_orchestrator: Callable[[], Orchestrator], computes: dict[str, Any] | None = None,
               version: str = __version__, *, max_body_bytes: int = MAX_BODY_BYTES, auth_token: str = "",
               loopback_only: bool = True, submit_rate: float = DEFAULT_SUBMIT_RATE,
               submit_burst: int = DEFAULT_SUBMIT_BURST) -> FastAPI:
    """The API app; ``get_orchestrator`` returns the current orchestrator (it may be replaced
    by a restart), ``computes`` maps node ids to in-process compute nodes whose results
    and logs the API serves. With ``auth_token`` every route but liveness needs it as a
    bearer token; ``loopback_only`` (the server listens on loopback) refuses requests
    whose Host header names anything else. Each client address may submit ``submit_burst``
    jobs at once, then ``submit_rate`` a second (either 0: no limit)."""
    app = FastAPI(title="cod_reference API", version=version,
                  description="A compute-over-data network in the style of Bacalhau that runs observed Wasm jobs.")
    computes = computes if computes is not None else {}
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    if submit_rate > 0 and submit_burst > 0:  # inside the token check: a refused token takes no submission slot
        app.add_middleware(SubmitRateLimit, rate=submit_rate, burst=submit_burst, paths=(f"{PREFIX}/jobs",),
                           max_clients=MAX_RATE_CLIENTS)
    if auth_token:
        app.add_middleware(BearerAuth, token=auth_token)
    if loopback_only:
        app.add_middleware(HostCheck)

    @app.exception_handler(SpecError)
    async def _spec_error(_: Request, exc: SpecError) -> JSONResponse:
        return _error(400, "InvalidJobSpec", f"invalid job spec: {exc}")

    @app.exception_handler(NotFound)
    async def _not_found(_: Request, exc: NotFound) -> JSONResponse:
        return _error(404, "NotFound", str(exc))

    @app.exception_handler(Removed)
    async def _removed(_: Request, exc: Removed) -> JSONResponse:
        return _error(410, "Removed", str(exc), FilesRemoved=removal_to_dict(exc.removal))

    @app.exception_handler(Ambiguous)
    async def _ambiguous(_: Request, exc: Ambiguous) -> JSONResponse:
        return _error(400, "AmbiguousID", str(exc))  # not stripped: it may start with a quoted ID

    @app.exception_handler(StopError)
    @app.exception_handler(TransitionError)  # e.g. a stop racing the job's completion
    async def _invalid_state(_: Request, exc: Exception) -> JSONResponse:
        return _error(409, "InvalidState", str(exc))

    @app.exception_handler(RequestValidationError)
    async def _bad_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return _error(400, "BadRequest", f"{where}: {first.get('msg', 'invalid request')}" if where
                      else first.get("msg", "invalid request"))

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
        if exc.status_code == 404:  # no route: say which path, not just "Not Found"
            return _error(404, "NotFound", f"nothing at {request.url.path}")
        return _error(exc.status_code, "HTTPError", str(exc.detail))

    @app.exception_handler(TooManyUnfinishedJobs)
    async def _too_many(_: Request, exc: TooManyUnfinishedJobs) -> JSONResponse:
        return _error(429, "TooManyUnfinishedJobs", str(exc), {"Retry-After": str(UNFINISHED_RETRY_AFTER_S)})

    @app.exception_handler(OrchestratorDown)
    async def _down(_: Request, exc: OrchestratorDown) -> JSONResponse:
        return _error(503, "Unavailable", "the orchestrator is not running (it may be restarting); try again")

    @app.exception_handler(Exception)
    async def _internal(_: Request, exc: Exception) -> JSONResponse:
        log.exception("API request failed")
        return _error(500, "InternalError", f"{type(exc).__name__}: {exc}")

    def orch() -> Orchestrator:
        current = get_orchestrator()
        if current is None or current.stopped:
            raise OrchestratorDown()
        return current

    # ------------------------------------------------------------------ jobs

    def submit(request: Request, body: SubmitRequest) -> SubmitResponse:
        key = request.headers.get("Idempotency-Key", "").strip()
        if len(key) > MAX_IDEMPOTENCY_KEY:
            raise SpecError([("Idempotency-Key", f"is longer than {MAX_IDEMPOTENCY_KEY} characters")])
        job = parse_job(body.Job)
        return SubmitResponse(**orch().submit(job, extract_context(dict(request.headers)), key))

    app.put(f"{PREFIX}/jobs", response_model=SubmitResponse, summary="Submit a job", tags=["jobs"])(submit)
    app.post(f"{PREFIX}/jobs", response_model=SubmitResponse, summary="Submit a job", tags=["jobs"],
             include_in_schema=False)(submit)

    @app.get(f"{PREFIX}/jobs", summary="List jobs", tags=["jobs"])
    def list_jobs(limit: int = Query(100, ge=1, le=10000), next_token: NextToken = "",
                  labels: str = Query("", max_length=MAX_VALUE, description="k=v,k2=v2"),
                  reverse: bool = True) -> dict[str, Any]:
        offset = int(next_token or 0)
        wanted = dict(item.split("=", 1) for item in labels.split(",") if "=" in item)
        items = orch().store.list_jobs(limit + 1, offset, wanted, reverse)
        more = len(items) > limit
        return {"Items": [job_to_dict(j) for j in items[:limit]], "NextToken": str(offset + limit) if more else ""}

    @app.get(f"{PREFIX}/jobs/{{job_id}}", summary="Get a job by ID, unique ID prefix or name", tags=["jobs"])
    def get_job(job_id: JobRef, include: str = Query("", max_length=64, description="history,executions")
                ) -> dict[str, Any]:
        o = orch()
        job = o.store.find_job(job_id)
        out: dict[str, Any] = {"Job": job_to_dict(job)}
        parts = {p.strip() for p in include.split(",")}
        if "history" in parts:
            out["History"] = {"Items": o.store.history(job.ID)}
        if "executions" in parts:
            out["Executions"] = {"Items": [execution_to_dict(e) for e in o.store.executions(job.ID)]}
        return out

    @app.delete(f"{PREFIX}/jobs/{{job_id}}", response_model=StopResponse, summary="Stop a job", tags=["jobs"])
    def stop_job(job_id: JobRef, reason: Text = "") -> StopResponse:
        return StopResponse(**orch().stop_job(job_id, reason))

    @app.get(f"{PREFIX}/jobs/{{job_id}}/executions", summary="Executions of a job", tags=["jobs"])
    def executions(job_id: JobRef) -> dict[str, Any]:
        o = orch()
        return {"Items": [execution_to_dict(e) for e in o.store.executions(o.store.find_job(job_id).ID)]}

    @app.get(f"{PREFIX}/jobs/{{job_id}}/history", summary="History of a job", tags=["jobs"],
             description="NextToken stays non-empty while the job is not in a final state: poll with it.")
    def history(job_id: JobRef, next_token: NextToken = "",
                event_type: str = Query("all", pattern="^(all|job|execution)$"),
                execution_id: ExecutionRef = "") -> dict[str, Any]:
        o = orch()
        job = o.store.find_job(job_id)
        since = int(next_token or 0)
        items = o.store.history(job.ID, since, event_type, execution_id)
        last = items[-1]["SeqNum"] if items else since
        return {"Items": items, "NextToken": "" if job.State.StateType.terminal else str(last),
                "State": job_to_dict(job)["State"]}

    @app.get(f"{PREFIX}/jobs/{{job_id}}/results", summary="Published results of a job", tags=["jobs"])
    def results(request: Request, job_id: JobRef) -> dict[str, Any]:
        o = orch()
        job = o.store.find_job(job_id)
        here = str(request.base_url).rstrip("/")
        items = []
        for ex in o.store.executions(job.ID):
            if ex.state is not ComputeState.COMPLETED or not ex.PublishedResult:
                continue
            item = dict(ex.PublishedResult, ExecutionID=ex.ID, PartitionIndex=ex.PartitionIndex)
            url = str((item.get("Params") or {}).get("URL", ""))
            if o.node_api(ex.NodeID) is not None and COMPUTE_PATH in url:  # a node elsewhere: fetched through here
                item["Params"] = dict(item["Params"], URL=here + url[url.index(COMPUTE_PATH):])
            items.append(item)
        return {"Items": items}

    @app.get(f"{PREFIX}/jobs/{{job_id}}/logs", summary="Output of an execution", tags=["jobs"],
             description="Reads stdout and stderr from the given offsets; poll with the returned offsets "
                         "until Done to follow a running execution. 410 Gone (Code Removed, FilesRemoved: when, "
                         "why) when the node's retention removed them: the execution's RunOutput keeps their heads.")
    def logs(job_id: JobRef, execution_id: ExecutionRef = "", stdout_offset: Offset = 0,
             stderr_offset: Offset = 0) -> dict[str, Any]:
        o = orch()
        job = o.store.find_job(job_id)
        execs = o.store.executions(job.ID)
        if execution_id:
            execs = [e for e in execs if e.ID.startswith(execution_id)]
            if not execs:
                raise NotFound(f"execution {execution_id} not found in job {job.ID}")
        else:
            # the latest execution that was not discarded, else the latest one
            kept = [e for e in execs if not e.state.discarded or e.state is ComputeState.FAILED]
            execs = kept or execs
        terminal = job.State.StateType.terminal
        if not execs:
            return {"ExecutionID": "", "Stdout": "", "Stderr": "", "StdoutOffset": 0, "StderrOffset": 0,
                    "Done": terminal}
        ex = execs[-1]
        out, done_out = o.read_logs(ex, "stdout", stdout_offset)
        err, done_err = o.read_logs(ex, "stderr", stderr_offset)
        ex_done = o.store.get_execution(ex.ID).state.terminal
        return {"ExecutionID": ex.ID, "Stdout": out.decode("utf-8", "replace"),
                "Stderr": err.decode("utf-8", "replace"), "StdoutOffset": stdout_offset + len(out),
                "StderrOffset": stderr_offset + len(err), "Done": (done_out and done_err) or ex_done or terminal}

    @app.get(f"{PREFIX}/jobs/{{job_id}}/trace", summary="The whole trace of a job", tags=["jobs"],
             description="format=otlp (default): one OTLP/JSON TracesData document; format=records: "
                         "{TraceID, Spans} with one flat record per span; format=html: the trace view page; "
                         "format=chrome-trace: Trace Event Format JSON; format=folded: folded stacks.")
    def job_trace(job_id: JobRef, format: str = Query("otlp", pattern="^(otlp|records|html|chrome-trace|folded)$")
                  ) -> Any:
        o = orch()
        job = o.store.find_job(job_id)
        trace_id = o.trace_id(job)
        if format == "records":  # served as stored: a large trace is never decoded here
            text = o.telemetry.trace_spans_json(trace_id) if trace_id else "[]"
            return Response(f'{{"TraceID":{json.dumps(trace_id)},"Spans":{text}}}', media_type="application/json")
        spans = o.telemetry.trace_spans(trace_id) if trace_id else []
        if format in VIEW_MEDIA_TYPES:
            return Response(render_trace(spans, format, title=f"job {job.Name or job.ID}"),
                            media_type=VIEW_MEDIA_TYPES[format])
        return Response(otlp_json(spans), media_type="application/json")

    # ------------------------------------------------------------------ nodes

    @app.get(f"{PREFIX}/nodes", summary="List nodes", tags=["nodes"])
    def nodes() -> dict[str, Any]:
        return {"Nodes": [node_state_to_dict(n) for n in orch().nodes.all()]}

    @app.get(f"{PREFIX}/nodes/{{node_id}}", summary="Get a node", tags=["nodes"])
    def node(node_id: NodeRef) -> dict[str, Any]:
        state = orch().nodes.get(node_id)
        if state is None:
            raise NotFound(f"node {node_id} not found")
        return {"Node": node_state_to_dict(state)}

    # ------------------------------------------------------------------ compute nodes and agent

    @app.get("/api/v1/compute/{node_id}/results/{name}", summary="Download a published result",
             tags=["compute"], response_class=FileResponse,
             description="410 Gone (Code Removed) when the node's retention removed it.")
    def result_file(node_id: NodeRef, name: NodeRef) -> Response:
        compute = computes.get(node_id)
        if compute is None and (remote := _node_api(node_id)) is not None:  # a node elsewhere: passed on
            try:
                chunks = remote.result(name)
            except Removed as exc:  # kept with the execution too, if its message has not arrived yet
                if (current := get_orchestrator()) is not None and not current.stopped:
                    current.record_removal(exc.removal, node_id)
                raise
            if chunks is not None:
                return StreamingResponse(chunks, media_type="application/gzip",
                                         headers={"Content-Disposition": f'attachment; filename="{name}"'})
        path = compute.result_archive(name.removesuffix(".tar.gz")) if compute else None
        if path is None:
            raise NotFound(f"result {name} not found on node {node_id}")
        return FileResponse(path, media_type="application/gzip", filename=name)

    def _node_api(node_id: str) -> NodeAPI | None:
        current = get_orchestrator()
        return current.node_api(node_id) if current is not None and not current.stopped else None

    @app.get("/api/v1/compute/{node_id}/logs/{execution_id}", summary="An execution's output on this node",
             tags=["compute"], response_class=Response,
             description="The bytes of stdout or stderr from offset; header Cod-Done says whether it has ended. "
                         "410 Gone (Code Removed) when the node's retention removed them.")
    def compute_logs(node_id: NodeRef, execution_id: NodeRef, stream: str = Query("stdout", pattern="^std(out|err)$"),
                     offset: Offset = 0, limit: int = Query(1 << 20, ge=1, le=1 << 24)) -> Response:
        compute = computes.get(node_id)
        if compute is None:
            raise NotFound(f"node {node_id} is not served here")
        data, done = compute.read_output(execution_id, stream, offset, limit)
        return Response(data, media_type="application/octet-stream", headers={"Cod-Done": "1" if done else "0"})

    @app.get("/api/v1/agent/alive", summary="Liveness", tags=["agent"])
    def alive() -> dict[str, str]:
        return {"Status": "OK"}

    @app.get("/api/v1/agent/version", summary="Version", tags=["agent"])
    def version_info() -> dict[str, str]:
        return {"Version": version, "Name": "cod_reference"}

    @app.get("/api/v1/agent/metrics", summary="Current metric values", tags=["agent"])
    def metric_values() -> dict[str, Any]:
        return orch().telemetry.metrics_snapshot()

    register_web_ui(app)
    return app
