"""Reading an execution's output from a compute node in another process, over its HTTP API.

A node that runs in a process of its own announces its API (``NodeInfo.APIURL``); its
``/api/v1/compute/<node>/logs/<execution>`` route serves the bytes of stdout or stderr from an
offset, so ``cod job logs --follow`` streams a run on another machine as it happens.
"""
from __future__ import annotations

import httpx

TIMEOUT_S = 5.0


class HttpLogSource:
    def __init__(self, api_url: str, node_id: str, token: str = "") -> None:
        self.base = f"{api_url.rstrip('/')}/api/v1/compute/{node_id}/logs"
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def read_output(self, execution_id: str, stream: str, offset: int, limit: int = 1 << 20) -> tuple[bytes, bool]:
        """Bytes from ``offset`` and whether the stream has ended; raises ``httpx.HTTPError`` when
        the node cannot answer."""
        response = httpx.get(f"{self.base}/{execution_id}", params={"stream": stream, "offset": offset,
                                                                  "limit": limit},
                             headers=self.headers, timeout=TIMEOUT_S)
        response.raise_for_status()
        return response.content, response.headers.get("Cod-Done") == "1"
