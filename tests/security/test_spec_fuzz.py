"""Any value in any field of a spec is either a Job or a SpecError naming the field: never
another exception (which the API would answer with a 500)."""
from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cod_reference.models import SpecError, load_job_text, parse_job, spec_to_dict, wasm_job

MODULE = b"\0asm\1\0\0\0"

# every field path of a full spec, and a few that are not fields
PATHS: list[tuple[Any, ...]] = [
    (), ("Name",), ("Namespace",), ("Type",), ("Priority",), ("Count",), ("Constraints",), ("Constraints", 0),
    ("Constraints", 0, "Values"), ("Labels",), ("Meta",), ("Tasks",), ("Tasks", 0), ("Tasks", 0, "Name"),
    ("Tasks", 0, "Engine"), ("Tasks", 0, "Engine", "Params"), ("Tasks", 0, "Engine", "Params", "Parameters"),
    ("Tasks", 0, "Engine", "Params", "EntryModule"), ("Tasks", 0, "InputSources"), ("Tasks", 0, "InputSources", 0),
    ("Tasks", 0, "InputSources", 0, "Source"), ("Tasks", 0, "InputSources", 0, "Source", "Params"),
    ("Tasks", 0, "InputSources", 0, "Source", "Params", "URL"), ("Tasks", 0, "InputSources", 0, "Target"),
    ("Tasks", 0, "ResultPaths"), ("Tasks", 0, "ResultPaths", 0, "Name"), ("Tasks", 0, "Env"),
    ("Tasks", 0, "Resources"), ("Tasks", 0, "Resources", "Memory"), ("Tasks", 0, "Resources", "CPU"),
    ("Tasks", 0, "Timeouts"), ("Tasks", 0, "Timeouts", "ExecutionTimeout"), ("Tasks", 0, "Publisher"),
    ("Tasks", 0, "Network"), ("Job",), ("Tasks", 0, "Unknown"),
]

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20),
                    st.sampled_from(["0", "-1", "1e400", "nan", "10Mi", "500m", "/", "..", "\0", "data:,x",
                                     "http://h/f", "batch", "ops", "local", "inline", "urlDownload"]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                        st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                      max_leaves=12)


def full_spec() -> dict[str, Any]:
    doc = wasm_job(MODULE, name="fuzz", env={"A": "1"}, args=["x"])
    doc.update(Constraints=[{"Key": "k", "Operator": "=", "Values": ["v"]}], Labels={"a": "b"}, Meta={"m": "n"})
    task = doc["Tasks"][0]
    task.update(ResultPaths=[{"Name": "out", "Path": "/out"}], Resources={"CPU": "1", "Memory": "1Mi"},
                Timeouts={"ExecutionTimeout": 5}, Publisher={"Type": "noop"}, Network={"Type": "None"})
    return doc


def put(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    *head, last = path
    target = doc
    for key in head:
        target = target[key]
    target[last] = value
    return doc


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(PATHS), values)
def test_any_value_anywhere_is_a_job_or_a_named_error(path: tuple[Any, ...], value: Any) -> None:
    doc = put(full_spec(), path, value)
    try:
        job = parse_job(doc)
    except SpecError as exc:
        assert exc.problems and len(str(exc)) < 4000
        return
    json.dumps(spec_to_dict(job))  # what is stored and sent is JSON
    assert parse_job(spec_to_dict(job)) == job


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_any_text_is_a_job_or_a_spec_error(text: str) -> None:
    try:
        load_job_text(text)
    except SpecError:
        pass
