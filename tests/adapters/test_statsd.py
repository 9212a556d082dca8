"""The StatsD/DogStatsD line parser shared by the OpenTelemetry and Datadog adapters."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from observe_sdk.adapters.statsd import StatsdError, StatsdMetric, parse_line, parse_lines, sanitize_tag


def test_dogstatsd_line() -> None:
    m = parse_line("page.views:1:2.5|c|@0.5|#env:prod,canary|c:abc123|T1700000000")
    assert m == StatsdMetric("page.views", "c", (1.0, 2.5), 0.5, (("env", "prod"), ("canary", "")),
                             False, 1700000000)
    assert m.kind == "counter" and m.tag_dict == {"env": "prod", "canary": ""}


@pytest.mark.parametrize("line,kind,values,delta", [
    ("vowels.count:1|c", "counter", (1.0,), False),
    ("queue:-3|g", "gauge", (-3.0,), True),
    ("queue:+3|g", "gauge", (3.0,), True),
    ("queue:3|g", "gauge", (3.0,), False),
    ("req:12.5|ms", "timer", (12.5,), False),
    ("size:100|h", "histogram", (100.0,), False),
    ("size:100|d", "distribution", (100.0,), False),
    ("users:alice|s", "set", ("alice",), False),
])
def test_types(line, kind, values, delta) -> None:
    m = parse_line(line)
    assert (m.kind, m.values, m.delta) == (kind, values, delta)


@pytest.mark.parametrize("line,why", [
    ("", "empty"),
    ("no-value|c", "expected"),
    ("x:1", "missing"),
    ("x:1|q", "unknown metric type"),
    ("x:abc|c", "not a number"),
    ("x:nan|c", "not finite"),
    ("x:1|c|@2", "sample rate"),
    ("x:1|c|@zero", "bad sample rate"),
    (":1|c", "bad metric name"),
    ("x:1|c|#:v", "no key"),
])
def test_errors_name_the_line_and_problem(line, why) -> None:
    with pytest.raises(StatsdError, match=why):
        parse_line(line)


def test_several_lines() -> None:
    assert [m.name for m in parse_lines("a:1|c\n\nb:2|g\n")] == ["a", "b"]


def test_format_adds_tags_once() -> None:
    m = parse_line("a:1|c|@0.25|#x:1")
    assert m.format([("x", "1"), ("env", "prod")]) == "a:1|c|@0.25|#x:1,env:prod"
    assert parse_line("g:-2|g").format() == "g:-2|g"
    assert parse_line("g:+2|g").format() == "g:+2|g"
    assert sanitize_tag("a|b,c:d", "v|1") == ("a_b_c_d", "v_1")


names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz._-0123456789", min_size=1, max_size=20)
tag_text = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_-./0123456789", min_size=1, max_size=10)


@given(name=names, mtype=st.sampled_from(["c", "g", "ms", "h", "d"]),
       values=st.lists(st.integers(min_value=0, max_value=10**9) | st.floats(0, 1e9, allow_nan=False),
                       min_size=1, max_size=4),
       rate=st.sampled_from([1.0, 0.5, 0.125]),
       tags=st.lists(st.tuples(tag_text, st.just("") | tag_text), max_size=4, unique_by=lambda t: t[0]))
def test_format_then_parse_round_trips(name, mtype, values, rate, tags) -> None:
    m = StatsdMetric(name, mtype, tuple(float(v) for v in values), rate, tuple(tags))
    assert parse_line(m.format()) == m
