"""DatadogAdapter: traces to the Agent (``/v0.4/traces``, msgpack), metrics to
DogStatsD, logs to the Datadog Logs API.

Traces are encoded as the Datadog tracers send them: a list of traces, each a
list of span maps (``trace_id``/``span_id``/``parent_id`` as unsigned 64-bit
ints, the upper half of a 128-bit trace id in ``meta["_dd.p.tid"]``; ``start``
and ``duration`` in ns; string attributes in ``meta``, numbers in
``metrics``; ``error`` 0/1).  The Wasm root spans are children of the host
span (see :mod:`.traceinfo`), so a guest run by a traced request appears
inside that request's trace.

Per-trace Datadog metadata, as the reference SDKs allow, goes in
``trace.metadata["datadog"]`` (``trace_ctx.set_metadata(datadog={...})``)
and is applied to the root spans::

    resource          the root spans' resource name (e.g. "GET /run")
    service, type     override the service name and span type
    http.url, http.method, http.status_code, http.client_ip,
    http.request.content_length, http.response.content_length,
    span.kind         ("server" makes the span type "web")
    any other key     a string goes to meta, a number to metrics

(``resource_name``, ``http_url``, ``http_status_code``, ``http_client_ip``,
``http_request_content_length``, ``http_response_content_length``,
``span_kind`` are accepted as aliases.)  A ``http.status_code`` of 500 or more
marks the root span as an error.

Environment: ``DD_TRACE_AGENT_URL`` (``http://host:port`` or
``unix:///path``), else ``DD_AGENT_HOST`` (localhost) and
``DD_TRACE_AGENT_PORT`` (8126); ``DD_SERVICE``, ``DD_ENV``, ``DD_VERSION``,
``DD_TAGS`` (``k:v,k2:v2`` or space separated); DogStatsD at
``DD_DOGSTATSD_URL`` (``udp://host:port`` or ``unix:///path``), else
``DD_AGENT_HOST`` and ``DD_DOGSTATSD_PORT`` (8125); logs with
``DD_API_KEY`` and ``DD_SITE`` (datadoghq.com), the intake URL overridable
with ``logs_url`` / ``DD_LOGS_URL``.  Logs are off without an API key.
"""
from __future__ import annotations

import json
import logging
import os
import platform
import socket
import urllib.parse
from collections.abc import Iterable, Mapping
from functools import partial
from typing import Any

from ..gcpause import gc_paused
from ..trace import Log, Metric, Span, Trace
from ..version import __version__
from .base import Adapter, TransientExportError
from .common import (
    ATTR_ERROR_MESSAGE,
    DEFAULT_SERVICE_NAME,
    EVENT_LOG,
    EVENT_METRIC,
    FAULT_EVENT,
    AttrValue,
    log_attributes,
    metric_attributes,
    span_attributes,
)
from .datadog_msgpack import SPAN_TYPE, SpanPacker, payload, split_attributes
from .httpsend import ExportError, check_timeout, check_url, send
from .resume import ResumableSends, Send
from .statsd import IgnoredMetrics, StatsdError, parse_metric, sanitize_tag
from .traceinfo import CapturesHostParent, effective_trace_id, host_parent, trace_attributes

log = logging.getLogger("observe_sdk.adapters")

METADATA_KEY = "datadog"
_U64 = (1 << 64) - 1
_ALIASES = {
    "resource_name": "resource",
    "http_url": "http.url",
    "http_method": "http.method",
    "http_status_code": "http.status_code",
    "http_client_ip": "http.client_ip",
    "http_request_content_length": "http.request.content_length",
    "http_response_content_length": "http.response.content_length",
    "span_kind": "span.kind",
    "span_type": "type",
}
_LOG_STATUS = {1: "error", 2: "warn", 3: "info", 4: "debug", 5: "trace"}
_DATAGRAM_MAX = 8192
_LOGS_PER_REQUEST = 1000


def parse_dd_tags(text: str | None) -> list[tuple[str, str]]:
    """``DD_TAGS``: ``k:v`` items separated by commas or spaces."""
    out = []
    for item in (text or "").replace(",", " ").split():
        key, _, value = item.partition(":")
        if key:
            out.append((key, value))
    return out


def normalize_metadata(meta: Mapping[str, Any] | None) -> dict[str, Any]:
    """The per-trace Datadog metadata with aliases resolved; bad input is a ValueError."""
    if meta is None:
        return {}
    if not isinstance(meta, Mapping):
        raise ValueError(f"trace metadata {METADATA_KEY!r} must be a mapping, not {type(meta).__name__}")
    out = {}
    for key, value in meta.items():
        out[_ALIASES.get(str(key), str(key))] = value
    kind = out.get("span.kind")
    if kind is not None:
        out["span.kind"] = str(getattr(kind, "value", kind)).lower()
    return out


def _url_from_env(url_var: str, port_var: str, default_port: str, scheme: str) -> str:
    """``url_var``, else ``<scheme>://$DD_AGENT_HOST:$<port_var>`` (localhost, ``default_port``)."""
    url = os.environ.get(url_var)
    if url:
        return url
    host = os.environ.get("DD_AGENT_HOST") or "localhost"
    port = os.environ.get(port_var) or default_port
    return f"{scheme}://{host}:{port}"


def agent_url_from_env() -> str:
    return _url_from_env("DD_TRACE_AGENT_URL", "DD_TRACE_AGENT_PORT", "8126", "http")


def dogstatsd_addr_from_env() -> str:
    return _url_from_env("DD_DOGSTATSD_URL", "DD_DOGSTATSD_PORT", "8125", "udp")


class DatadogAdapter(CapturesHostParent, Adapter):
    """Guest traces, metrics and logs to Datadog (see the module docs for the environment).

    ``agent_url``: the trace agent; ``dogstatsd_url``: where metrics go
    (``None``: from the environment; ``False``: no metrics); ``api_key``,
    ``site``, ``logs_url``: the Logs API (logs are off without a key;
    ``logs=False`` turns them off anyway); ``service``, ``env``, ``version``,
    ``tags``: unified service tagging; ``timeout``: seconds per request.
    """

    name = "datadog"
    max_spans_per_payload = 20_000

    def __init__(
        self,
        *,
        agent_url: str | None = None,
        service: str | None = None,
        env: str | None = None,
        version: str | None = None,
        tags: Iterable[tuple[str, str]] | Mapping[str, str] | str | None = None,
        dogstatsd_url: str | bool | None = None,
        api_key: str | None = None,
        site: str | None = None,
        logs_url: str | None = None,
        logs: bool = True,
        hostname: str | None = None,
        timeout: float = 10.0,
        **queue_options: Any,
    ) -> None:
        super().__init__(**queue_options)
        self.agent_url = agent_url or agent_url_from_env()
        self._agent = check_url(self.agent_url, "Datadog agent URL")
        self.service = service or os.environ.get("DD_SERVICE") or DEFAULT_SERVICE_NAME
        self.env = env if env is not None else os.environ.get("DD_ENV", "")
        self.version = version if version is not None else os.environ.get("DD_VERSION", "")
        if tags is None:
            tag_list = parse_dd_tags(os.environ.get("DD_TAGS"))
        elif isinstance(tags, str):
            tag_list = parse_dd_tags(tags)
        elif isinstance(tags, Mapping):
            tag_list = [(str(k), str(v)) for k, v in tags.items()]
        else:
            tag_list = [(str(k), str(v)) for k, v in tags]
        self.tags = tag_list
        self.timeout = check_timeout(timeout, "Datadog timeout")
        self.hostname = hostname or os.environ.get("DD_HOSTNAME") or socket.gethostname()
        self._base_meta = {k: v for k, v in tag_list}
        if self.env:
            self._base_meta["env"] = self.env
        if self.version:
            self._base_meta["version"] = self.version
        unified = self._unified_tags()
        self._statsd_tags = [sanitize_tag(k, v) for k, v in unified]
        self._ddtags = ",".join(f"{k}:{v}" if v else k for k, v in unified)    # on every log item
        self._trace_headers = {
            "Content-Type": "application/msgpack",
            "Datadog-Meta-Lang": "python",
            "Datadog-Meta-Lang-Version": platform.python_version(),
            "Datadog-Meta-Lang-Interpreter": platform.python_implementation(),
            "Datadog-Meta-Tracer-Version": __version__,
        }
        base = self._agent.path.rstrip("/") if self._agent.scheme != "unix" else ""
        self._traces_path = base + "/v0.4/traces"

        self._logs_api: Any = None
        api_key = api_key or os.environ.get("DD_API_KEY")
        logs_url = logs_url or os.environ.get("DD_LOGS_URL")
        if logs_url:
            check_url(logs_url, "Datadog logs URL", unix=False)
        if logs and api_key:
            self._logs_api = self._make_logs_api(api_key, site or os.environ.get("DD_SITE") or "datadoghq.com",
                                                 logs_url)
        elif logs:
            log.info("datadog: no DD_API_KEY; guest logs are not sent to the Logs API")

        self._ignored_metrics = IgnoredMetrics(self.name)
        self._packer = SpanPacker(self._base_meta)
        self._sends = ResumableSends()
        self._statsd_sock: socket.socket | None = None     # opened last: a bad setting above leaks nothing
        self._statsd_target: Any = None
        if dogstatsd_url is not False:
            self._open_dogstatsd(dogstatsd_url if isinstance(dogstatsd_url, str) else dogstatsd_addr_from_env())

    @classmethod
    def from_env(cls, **kwargs: Any) -> DatadogAdapter:
        """Everything from the ``DD_*`` environment variables (keywords override)."""
        return cls(**kwargs)

    def _unified_tags(self) -> list[tuple[str, str]]:
        tags = [("service", self.service)]
        if self.env:
            tags.append(("env", self.env))
        if self.version:
            tags.append(("version", self.version))
        return tags + [t for t in self.tags if t[0] not in ("service", "env", "version")]

    # -- setup -----------------------------------------------------------
    def _open_dogstatsd(self, url: str) -> None:
        parts = urllib.parse.urlsplit(url if "://" in url else f"udp://{url}")
        if parts.scheme == "udp":
            try:
                port = parts.port
            except ValueError:      # not a number in 0-65535
                port = None
            if not parts.hostname or not port:
                raise ValueError(f"DogStatsD address {url!r}: expected udp://host:port")
            family = socket.AF_INET6 if ":" in parts.hostname else socket.AF_INET
            self._statsd_sock = socket.socket(family, socket.SOCK_DGRAM)
            self._statsd_target = (parts.hostname, port)
        elif parts.scheme in ("unix", "unixgram"):
            self._statsd_sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._statsd_target = parts.path
        else:
            raise ValueError(f"DogStatsD address {url!r}: expected udp://host:port or unix:///path")
        self._statsd_sock.setblocking(False)

    def _make_logs_api(self, api_key: str, site: str, logs_url: str | None) -> Any:
        try:
            from datadog_api_client import ApiClient, Configuration
            from datadog_api_client.v2.api.logs_api import LogsApi
        except ImportError:  # pragma: no cover - the datadog extra is not installed
            log.warning("datadog: datadog-api-client is not installed; guest logs are not sent")
            return None
        config = Configuration(host=logs_url or f"https://http-intake.logs.{site}",  # type: ignore[no-untyped-call]
                               request_timeout=self.timeout, enable_retry=False)
        config.api_key["apiKeyAuth"] = api_key
        return LogsApi(ApiClient(config))  # type: ignore[no-untyped-call]

    # -- encoding ----------------------------------------------------------
    def trace_chunks(self, trace: Trace) -> tuple[list[tuple[int, bytes]], list[dict[str, Any]], list[str]]:
        """(span chunks for /v0.4/traces as (number of spans, their packed maps), log items for
        the Logs API, DogStatsD lines)."""
        with gc_paused():
            return self._trace_chunks(trace)

    def _trace_chunks(self, trace: Trace) -> tuple[list[tuple[int, bytes]], list[dict[str, Any]], list[str]]:
        tid = effective_trace_id(trace)
        tid_low, tid_high = tid & _U64, tid >> 64
        parent = host_parent(trace)
        root_parent = parent.span_id if parent else 0
        priority = 1 if parent is None or parent.sampled else 0
        try:
            dd_meta = normalize_metadata(trace.metadata.get(METADATA_KEY))
        except ValueError as exc:   # one trace's bad metadata must not cost the batch
            log.warning("datadog: trace %s: %s; ignored", trace.trace_id_hex, exc)
            dd_meta = {}
        root_extra = trace_attributes(trace)
        spans: list[bytes] = []                  # of the chunk being filled
        chunks: list[tuple[int, bytes]] = []
        logs: list[dict[str, Any]] = []
        lines: list[str] = []
        service = str(dd_meta.get("service") or self.service)
        packer = self._packer
        head = packer.head(tid_low)
        per_chunk = self.max_spans_per_payload

        for event in trace.roots:
            if type(event) is Log:
                logs.append(self._log_item(event, tid_low, root_parent, trace))
            elif type(event) is Metric:
                lines.extend(self._statsd_lines(event))
            elif type(event) is Span:
                stack: list[tuple[Span, int, bool]] = [(event, root_parent, True)]
                while stack:
                    span, parent_id, is_root = stack.pop()
                    if len(spans) == per_chunk:
                        chunks.append((per_chunk, b"".join(spans)))
                        spans = []
                    chunk_start = tid_high and not spans
                    plain = not (is_root or chunk_start or span.tags or span.error is not None)
                    for ev in reversed(span.events):
                        if type(ev) is Span:
                            stack.append((ev, span.span_id, False))
                        elif type(ev) is Log:
                            logs.append(self._log_item(ev, tid_low, span.span_id, trace))
                            plain = False
                        elif type(ev) is Metric:
                            lines.extend(self._statsd_lines(ev))
                            plain = False
                        else:
                            plain = False       # an allocation: a metric of the span
                    if plain:
                        spans.append(packer.plain(span, head, parent_id, service))
                        continue
                    span_map = self._span_map(span, tid_low, parent_id, service)
                    if is_root:
                        self._decorate_root(span_map, dd_meta, root_extra, priority, trace)
                    if chunk_start:      # the upper half of the trace id, on each chunk's first span
                        span_map["meta"]["_dd.p.tid"] = f"{tid_high:016x}"
                    spans.append(packer.map(span_map))
        logs.sort(key=lambda item: item["timestamp"])
        if spans:
            chunks.append((len(spans), b"".join(spans)))
        return chunks, logs, lines

    def _span_map(self, span: Span, tid_low: int, parent_id: int, service: str) -> dict[str, Any]:
        meta: dict[str, str] = dict(self._base_meta)
        metrics: dict[str, float] = {}
        split_attributes(span_attributes(span), meta, metrics)
        events = [{"name": EVENT_LOG, "time_unix_nano": e.time_ns, "attributes": log_attributes(e)}
                  if isinstance(e, Log) else
                  {"name": EVENT_METRIC, "time_unix_nano": e.time_ns, "attributes": metric_attributes(e)}
                  for e in span.events if isinstance(e, (Log, Metric))]
        if events:
            meta["events"] = json.dumps(events, separators=(",", ":"))
        out = {
            "trace_id": tid_low,
            "span_id": span.span_id & _U64,
            "parent_id": parent_id & _U64,
            "name": span.name,
            "resource": span.name,
            "service": service,
            "type": SPAN_TYPE,
            "start": span.start_ns,
            "duration": max(0, span.duration_ns),
            "error": 0,
            "meta": meta,
            "metrics": metrics,
        }
        if span.error:
            out["error"] = 1
            meta["error.msg"] = span.error
            meta["error.type"] = "wasm.trap"
            meta[ATTR_ERROR_MESSAGE] = span.error
        return out

    def _decorate_root(self, root: dict[str, Any], dd_meta: dict[str, Any], extra: Mapping[str, AttrValue],
                       priority: int, trace: Trace) -> None:
        meta, metrics = root["meta"], root["metrics"]
        metrics["_sampling_priority_v1"] = float(priority)
        for key, value in extra.items():
            if isinstance(value, (int, float)):
                metrics[key] = float(value)
            else:
                meta[key] = str(value)
        if trace.errors:
            meta[FAULT_EVENT] = "; ".join(trace.errors)
        for key, value in dd_meta.items():
            if key == "resource":
                root["resource"] = str(value)
            elif key == "service":
                continue
            elif key == "type":
                root["type"] = str(value)
            elif isinstance(value, bool) or not isinstance(value, (int, float)) or key.startswith("http."):
                meta[key] = str(value)
            else:
                metrics[key] = float(value)
        if dd_meta.get("span.kind") == "server" and "type" not in dd_meta:
            root["type"] = "web"
        try:
            if int(dd_meta.get("http.status_code", 0)) >= 500:
                root["error"] = 1
        except (TypeError, ValueError):
            pass

    def _log_item(self, entry: Log, tid_low: int, span_id: int, trace: Trace) -> dict[str, Any]:
        item = {
            "message": entry.message,
            "status": _LOG_STATUS.get(entry.level, "info"),
            "timestamp": entry.time_ns // 1_000_000,
            "dd.trace_id": str(tid_low),
            "dd.span_id": str(span_id & _U64),
            "service": self.service,
            "hostname": self.hostname,
            "ddsource": "wasm",
            "ddtags": self._ddtags,
        }
        if trace.module_name:
            item["wasm.module"] = trace.module_name
        return item

    @property
    def invalid_metrics(self) -> int:
        """Guest metrics that could not be parsed (logged, never raised)."""
        return self._ignored_metrics.count

    def _statsd_lines(self, metric: Metric) -> list[str]:
        try:
            return [m.format(self._statsd_tags) for m in parse_metric(metric)]
        except StatsdError as exc:
            self._ignored_metrics.add(str(exc))
            return []

    # -- delivery ------------------------------------------------------------
    def export(self, traces: list[Trace]) -> None:
        self._sends.run(traces, self._encode_batch)

    def _encode_batch(self, traces: list[Trace]) -> list[Send]:
        payloads: list[list[tuple[int, bytes]]] = []
        logs: list[dict[str, Any]] = []
        lines: list[str] = []
        current: list[tuple[int, bytes]] = []
        size = 0
        for trace in traces:
            chunks, trace_logs, trace_lines = self.trace_chunks(trace)
            logs.extend(trace_logs)
            lines.extend(trace_lines)
            for chunk in chunks:
                if current and size + chunk[0] > self.max_spans_per_payload:
                    payloads.append(current)
                    current, size = [], 0
                current.append(chunk)
                size += chunk[0]
        if current:
            payloads.append(current)
        self._send_metrics(lines)          # UDP: fire and forget, never retried
        sends: list[Send] = [partial(self._send_traces, payload(p), len(p)) for p in payloads]
        if self._logs_api is not None:
            sends += [partial(self._send_logs, logs[i:i + _LOGS_PER_REQUEST])
                      for i in range(0, len(logs), _LOGS_PER_REQUEST)]
        return sends

    def _send_traces(self, body: bytes, n_traces: int) -> None:
        headers = {**self._trace_headers, "X-Datadog-Trace-Count": str(n_traces)}
        send(self.agent_url, body, headers, timeout=self.timeout, method="PUT",
             path=self._traces_path, what="Datadog agent")

    def _send_logs(self, items: list[dict[str, Any]]) -> None:
        from datadog_api_client.exceptions import ApiException
        from datadog_api_client.v2.model.http_log import HTTPLog
        from datadog_api_client.v2.model.http_log_item import HTTPLogItem
        from urllib3.exceptions import HTTPError as Urllib3Error

        body = HTTPLog([HTTPLogItem(**item) for item in items])  # type: ignore[no-untyped-call]
        try:
            self._logs_api.submit_log(body=body)
        except ApiException as exc:
            if exc.status in (408, 429) or (exc.status or 500) >= 500:
                raise TransientExportError(f"Datadog Logs API: HTTP {exc.status}") from exc
            raise ExportError(f"Datadog Logs API refused the logs: HTTP {exc.status} {exc.reason}") from exc
        except (OSError, Urllib3Error) as exc:   # connection refused, timeouts, DNS; anything else is a bug
            raise TransientExportError(f"Datadog Logs API: {exc}") from exc

    def _send_metrics(self, lines: list[str]) -> None:
        sock = self._statsd_sock
        if sock is None or not lines:
            return
        target = self._statsd_target
        if isinstance(target, tuple):     # a UDP host name: resolved once per batch, not per datagram
            try:
                target = socket.getaddrinfo(target[0], target[1], sock.family, socket.SOCK_DGRAM)[0][4]
            except OSError as exc:
                log.debug("datadog: DogStatsD host %s: %s", target[0], exc)
                return
        datagram: list[str] = []
        size = 0
        for line in lines:
            n = len(line.encode()) + 1
            if datagram and size + n > _DATAGRAM_MAX:
                self._send_datagram(sock, target, datagram)
                datagram, size = [], 0
            datagram.append(line)
            size += n
        if datagram:
            self._send_datagram(sock, target, datagram)

    @staticmethod
    def _send_datagram(sock: socket.socket, target: Any, lines: list[str]) -> None:
        try:
            sock.sendto("\n".join(lines).encode(), target)
        except OSError as exc:   # nobody listening, buffer full: metrics are best effort
            log.debug("datadog: DogStatsD send failed: %s", exc)

    def close(self) -> None:
        if self._statsd_sock is not None:
            self._statsd_sock.close()
            self._statsd_sock = None
        if self._logs_api is not None:
            try:
                self._logs_api.api_client.close()
            except Exception:  # pragma: no cover
                pass
