"""Vendor presets: :class:`~.otlp.OtlpAdapter` with a vendor's endpoint and auth headers.

Honeycomb: ``x-honeycomb-team`` (API key) and ``x-honeycomb-dataset``; from
``HONEYCOMB_API_KEY``, ``HONEYCOMB_DATASET``, ``HONEYCOMB_API_ENDPOINT``
(default ``https://api.honeycomb.io``, HTTP/protobuf; ``protocol="grpc"``
uses port 443).

Lightstep (ServiceNow Cloud Observability): ``lightstep-access-token``; from
``LS_ACCESS_TOKEN``, ``LS_SERVICE_NAME``, ``LS_ENDPOINT`` (default
``https://ingest.lightstep.com:443``, gRPC).

Explicit keywords win over these variables; the generic ``OTEL_EXPORTER_OTLP_*``
endpoint and headers are deliberately not used, since they usually point at a
different collector.  ``OTEL_SERVICE_NAME`` / ``OTEL_RESOURCE_ATTRIBUTES``
still shape the resource.
"""
from __future__ import annotations

import os
from typing import Any

from .otlp import OtlpAdapter, parse_headers

HONEYCOMB_ENDPOINT = "https://api.honeycomb.io"
LIGHTSTEP_ENDPOINT = "https://ingest.lightstep.com:443"


def _grpc_endpoint(url: str) -> str:
    """Add the TLS port to a bare https URL (gRPC needs one)."""
    scheme, sep, rest = url.partition("://")
    host = rest.split("/", 1)[0]
    if sep and ":" not in host:
        return f"{scheme}://{host}:443"
    return url


def honeycomb(*, api_key: str | None = None, dataset: str | None = None, endpoint: str | None = None,
              protocol: str = "http/protobuf", **kwargs: Any) -> OtlpAdapter:
    """An OTLP adapter for Honeycomb (see the module docs for the environment)."""
    api_key = api_key or os.environ.get("HONEYCOMB_API_KEY")
    if not api_key:
        raise ValueError("the honeycomb adapter needs an API key: set HONEYCOMB_API_KEY or pass api_key=")
    headers = {"x-honeycomb-team": api_key}
    dataset = dataset or os.environ.get("HONEYCOMB_DATASET")
    if dataset:
        headers["x-honeycomb-dataset"] = dataset
    headers.update(parse_headers(kwargs.pop("headers", None)) or {})   # a dict or "k=v,..."
    endpoint = endpoint or os.environ.get("HONEYCOMB_API_ENDPOINT") or HONEYCOMB_ENDPOINT
    if protocol == "grpc":
        endpoint = _grpc_endpoint(endpoint)
    adapter = OtlpAdapter(protocol=protocol, endpoint=endpoint, headers=headers, **kwargs)
    adapter.name = "honeycomb"
    return adapter


def lightstep(*, access_token: str | None = None, endpoint: str | None = None, protocol: str = "grpc",
              service_name: str | None = None, **kwargs: Any) -> OtlpAdapter:
    """An OTLP adapter for Lightstep (see the module docs for the environment)."""
    token = access_token or os.environ.get("LS_ACCESS_TOKEN")
    if not token:
        raise ValueError("the lightstep adapter needs an access token: set LS_ACCESS_TOKEN or pass access_token=")
    headers = {"lightstep-access-token": token}
    headers.update(parse_headers(kwargs.pop("headers", None)) or {})   # a dict or "k=v,..."
    endpoint = endpoint or os.environ.get("LS_ENDPOINT") or LIGHTSTEP_ENDPOINT
    service_name = service_name or os.environ.get("LS_SERVICE_NAME") or None
    adapter = OtlpAdapter(protocol=protocol, endpoint=endpoint, headers=headers, service_name=service_name,
                          **kwargs)
    adapter.name = "lightstep"
    return adapter
