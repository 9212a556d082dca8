"""The network's web UI: plain HTML, CSS and JavaScript served by the API's own app at ``/``.

Nodes, jobs (filtered, newest first, refreshed live) and a job's page (spec, executions,
history, output, published results and its trace view). The files hold no data: the page
reads everything from ``/api/v1/...`` like any other client, sending the API's bearer token
when one is set (``?token=...`` once, or the page asks after a 401), so the UI has exactly the
API's access rules. Nothing is fetched from elsewhere and nothing needs building.
"""
from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parent / "static"
UI_PREFIX = "/ui"


def register(app: FastAPI) -> None:
    """Serve the UI's page at ``/`` and its files under ``/ui``."""
    app.mount(UI_PREFIX, StaticFiles(directory=STATIC), name="ui")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")
