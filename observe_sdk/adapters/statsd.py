"""StatsD and DogStatsD metric lines: parse what guests report, format what we send.

A guest reports metrics in format 1 of the Observe ABI: one StatsD line, e.g.
``vowels.count:1|c``.  We accept the DogStatsD dialect, which is a superset::

    <name>:<value>[:<value>...]|<type>[|@<sample rate>][|#<tag>[,<tag>...]][|T<unix seconds>]

Types: ``c`` counter, ``g`` gauge (``+N``/``-N`` is a change, not a value),
``ms`` timer, ``h`` histogram, ``d`` distribution, ``s`` set (values are
arbitrary strings).  Tags are ``key:value`` or bare ``key``.  Unknown
``|``-fields (e.g. DogStatsD's ``|c:<container id>``) are ignored.

Several lines may be given at once, separated by newlines.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass

from ..abi import MetricFormat
from ..errors import StatsdError as StatsdError
from ..trace import Metric

log = logging.getLogger("observe_sdk.adapters")

KINDS = {
    "c": "counter",
    "g": "gauge",
    "ms": "timer",
    "h": "histogram",
    "d": "distribution",
    "s": "set",
}

_FORBIDDEN_IN_NAME = set(":|@#\n\r")
_FORBIDDEN_IN_TAG = set("|,\n\r")


@dataclass(frozen=True, slots=True)
class StatsdMetric:
    name: str
    type: str                                   # "c", "g", "ms", "h", "d" or "s"
    values: tuple[float | str, ...]             # str only for sets
    sample_rate: float = 1.0
    tags: tuple[tuple[str, str], ...] = ()      # bare tags have an empty value
    delta: bool = False                         # a gauge given as +N or -N
    timestamp: int | None = None                # unix seconds (DogStatsD ``|T``)

    @property
    def kind(self) -> str:
        return KINDS[self.type]

    @property
    def tag_dict(self) -> dict[str, str]:
        return dict(self.tags)

    def format(self, extra_tags: Iterable[tuple[str, str]] = ()) -> str:
        """The line in the DogStatsD dialect, with ``extra_tags`` appended."""
        values = ":".join(_format_value(v, self.delta and self.type == "g") for v in self.values)
        parts = [f"{self.name}:{values}|{self.type}"]
        if self.sample_rate != 1.0:
            parts.append(f"@{self.sample_rate:g}")
        tags = list(self.tags) + [t for t in extra_tags if t not in self.tags]
        if tags:
            parts.append("#" + ",".join(f"{k}:{v}" if v else k for k, v in tags))
        if self.timestamp is not None:
            parts.append(f"T{self.timestamp}")
        return "|".join(parts)


def _format_value(value: float | str, signed: bool) -> str:
    if isinstance(value, str):
        return value
    text = str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else repr(float(value))
    if signed and value >= 0:
        text = "+" + text
    return text


def parse_line(line: str) -> StatsdMetric:
    """Parse one StatsD/DogStatsD line; raise :class:`StatsdError` when it is not one."""
    text = line.strip()
    if not text:
        raise StatsdError("empty statsd line")
    fields = text.split("|")
    head = fields[0]
    name, sep, raw_values = head.partition(":")
    name = name.strip()
    if not sep or not raw_values:
        raise StatsdError(f"statsd line {line!r}: expected '<name>:<value>|<type>'")
    if not name or _FORBIDDEN_IN_NAME & set(name):
        raise StatsdError(f"statsd line {line!r}: bad metric name {name!r}")
    if len(fields) < 2:
        raise StatsdError(f"statsd line {line!r}: missing '|<type>'")
    mtype = fields[1].strip()
    if mtype not in KINDS:
        raise StatsdError(f"statsd line {line!r}: unknown metric type {mtype!r} "
                          f"(expected one of {', '.join(KINDS)})")

    values: list[float | str] = []
    delta = False
    for raw in raw_values.split(":"):
        raw = raw.strip()
        if not raw:
            raise StatsdError(f"statsd line {line!r}: empty value")
        if mtype == "s":
            values.append(raw)
            continue
        try:
            number = float(raw)
        except ValueError:
            raise StatsdError(f"statsd line {line!r}: value {raw!r} is not a number") from None
        if not math.isfinite(number):
            raise StatsdError(f"statsd line {line!r}: value {raw!r} is not finite")
        if mtype == "g" and raw[0] in "+-":
            delta = True
        values.append(number)

    sample_rate = 1.0
    tags: list[tuple[str, str]] = []
    timestamp: int | None = None
    for extra in fields[2:]:
        extra = extra.strip()
        if extra.startswith("@"):
            try:
                sample_rate = float(extra[1:])
            except ValueError:
                raise StatsdError(f"statsd line {line!r}: bad sample rate {extra!r}") from None
            if not 0.0 < sample_rate <= 1.0:
                raise StatsdError(f"statsd line {line!r}: sample rate must be in (0, 1], got {extra[1:]}")
        elif extra.startswith("#"):
            for tag in extra[1:].split(","):
                tag = tag.strip()
                if not tag:
                    continue
                key, _, value = tag.partition(":")
                if not key.strip():
                    raise StatsdError(f"statsd line {line!r}: tag {tag!r} has no key")
                tags.append((key.strip(), value.strip()))
        elif extra.startswith("T") and extra[1:].isdigit():
            timestamp = int(extra[1:])
        # other fields (container id, future extensions) are ignored
    return StatsdMetric(name, mtype, tuple(values), sample_rate, tuple(tags), delta, timestamp)


def parse_lines(text: str) -> list[StatsdMetric]:
    """Parse newline-separated lines (blank lines skipped); the first bad line raises."""
    return [parse_line(line) for line in text.splitlines() if line.strip()]


def parse_metric(metric: Metric) -> list[StatsdMetric]:
    """The StatsD lines of a guest metric; :class:`StatsdError` when it is not StatsD or not valid."""
    if metric.format != MetricFormat.STATSD:
        raise StatsdError(f"unsupported metric format {metric.format}")
    return parse_lines(metric.value)


class IgnoredMetrics:
    """Counts guest metrics an adapter could not use; logs the first and every 100th."""

    def __init__(self, who: str) -> None:
        self.who = who
        self.count = 0

    def add(self, why: str) -> None:
        self.count += 1
        if self.count == 1 or self.count % 100 == 0:
            log.warning("%s: guest metric ignored (%d so far): %s", self.who, self.count, why)


def sanitize_tag(key: str, value: str = "") -> tuple[str, str]:
    """A tag made safe for the wire: separators replaced by ``_``."""
    def clean(text: str) -> str:
        return "".join("_" if ch in _FORBIDDEN_IN_TAG else ch for ch in text)
    return clean(key).replace(":", "_"), clean(value)
