"""The HTTP API of a compute node in another process, as the orchestrator uses it.

A node that runs in a process of its own announces its API (``NodeInfo.APIURL``). The orchestrator
reads a running execution's output there (``cod job logs --follow`` streams a run on another
machine) and passes its published results on, so clients need to reach only the orchestrator
(and send their token only there).
"""
from __future__ import annotations

from collections.abc import Iterator

import httpx

TIMEOUT_S = 5.0


class NodeAPI:
    def __init__(self, api_url: str, node_id: str, token: str = "") -> None:
        self.base = f"{api_url.rstrip('/')}/api/v1/compute/{node_id}"
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def read_output(self, execution_id: str, stream: str, offset: int, limit: int = 1 << 20) -> tuple[bytes, bool]:
        """Bytes from ``offset`` and whether the stream has ended; raises ``httpx.HTTPError`` when
        the node cannot answer."""
        response = httpx.get(f"{self.base}/logs/{execution_id}", headers=self.headers, timeout=TIMEOUT_S,
                             params={"stream": stream, "offset": offset, "limit": limit})
        response.raise_for_status()
        return response.content, response.headers.get("Cod-Done") == "1"

    def result(self, name: str) -> Iterator[bytes] | None:
        """The published result ``name`` as chunks, or None when the node does not have it; raises
        ``httpx.HTTPError`` when the node cannot answer."""
        client = httpx.Client(timeout=TIMEOUT_S, headers=self.headers)
        response = client.send(client.build_request("GET", f"{self.base}/results/{name}"), stream=True)
        if response.status_code == 404 or response.is_error:
            status = response.status_code
            response.close()
            client.close()
            if status == 404:
                return None
            raise httpx.HTTPStatusError(f"node answered {status}", request=response.request, response=response)

        def chunks() -> Iterator[bytes]:
            try:
                yield from response.iter_bytes()
            finally:
                response.close()
                client.close()

        return chunks()
