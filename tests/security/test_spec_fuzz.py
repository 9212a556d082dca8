"""Any value in any field of a spec is either a Job or a SpecError naming the field: never
another exception (which the API would answer with a 500)."""
from __future__ import annotations

import json
from typing import Any

from api_attacks import PATHS, full_spec, put, values
from hypothesis import given, settings
from hypothesis import strategies as st

from cod_reference.models import SpecError, load_job_text, parse_job, spec_to_dict


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
