"""The HTTP API of a compute node in another process, as the orchestrator uses it.

A node that runs in a process of its own announces its API (``NodeInfo.APIURL``). The orchestrator
reads a running execution's output there (``cod job logs --follow`` streams a run on another
machine) and passes its published results on, so clients need to reach only the orchestrator
(and send their token only there). What the node's retention removed it answers with 410 Gone
and the :class:`~cod_reference.models.Removal`, raised here as :class:`~cod_reference.models.Removed`.
"""
from __future__ import annotations

import json
from collections.abc import Iterator

import httpx

from ..models import Removed, removal_from_dict

TIMEOUT_S = 5.0
#: most read of a node's error answer
MAX_ERROR_BYTES = 64 << 10


class NodeAPI:
    def __init__(self, api_url: str, node_id: str, token: str = "") -> None:
        self.base = f"{api_url.rstrip('/')}/api/v1/compute/{node_id}"
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def read_output(self, execution_id: str, stream: str, offset: int, limit: int = 1 << 20) -> tuple[bytes, bool]:
        """Bytes from ``offset`` and whether the stream has ended; raises ``httpx.HTTPError`` when
        the node cannot answer, :class:`~cod_reference.models.Removed` when its retention removed them."""
        response = httpx.get(f"{self.base}/logs/{execution_id}", headers=self.headers, timeout=TIMEOUT_S,
                             params={"stream": stream, "offset": offset, "limit": limit})
        if response.status_code == 410:
            _raise_removed(response.content, "logs")
        response.raise_for_status()
        return response.content, response.headers.get("Cod-Done") == "1"

    def result(self, name: str) -> Iterator[bytes] | None:
        """The published result ``name`` as chunks, or None when the node does not have it; raises
        ``httpx.HTTPError`` when the node cannot answer, :class:`~cod_reference.models.Removed` when its
        retention removed it."""
        client = httpx.Client(timeout=TIMEOUT_S, headers=self.headers)
        response = client.send(client.build_request("GET", f"{self.base}/results/{name}"), stream=True)
        if response.status_code == 404 or response.is_error:
            status = response.status_code
            try:
                if status == 410:
                    body = b""
                    for chunk in response.iter_bytes():  # an error's JSON: a few hundred bytes
                        body += chunk
                        if len(body) > MAX_ERROR_BYTES:
                            break
                    _raise_removed(body, "results")
            finally:
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


def _raise_removed(body: bytes, what: str) -> None:
    """Raise :class:`Removed` for the body of the node's 410 answer when it names the removal
    (another 410 stays an HTTP error)."""
    try:
        removal = removal_from_dict(json.loads(body[:MAX_ERROR_BYTES]).get("FilesRemoved"))
    except (ValueError, AttributeError):
        return
    raise Removed(removal, what)
