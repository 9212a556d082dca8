"""The assembler's pairing of enters, exits, span-enters and span-exits, against a plain model
written the obvious way (random sequences of events)."""
from __future__ import annotations

from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from observe_sdk.trace import Span, Trace


def reference_pairing(ops: list[tuple[str, int]]) -> tuple[list[Any], list[str]]:
    """The pairing rules, written the obvious way (a scan of the stack for every exit and span-exit)."""
    roots: list[Any] = []
    stack: list[tuple[int, list[Any]]] = []
    errors: list[str] = []

    def close(error: bool, depth: int | None = None) -> None:
        """Close the span at ``depth`` (default: the innermost) into the one below it."""
        depth = len(stack) - 1 if depth is None else depth
        idx, children = stack.pop(depth)
        (stack[depth - 1][1] if depth else roots).append((idx, error, children))

    for op, idx in ops:
        if op == "enter":
            stack.append((idx, []))
        elif op == "span-enter":
            stack.append((-1, []))
        elif op == "exit":
            depths = [d for d, (i, _) in enumerate(stack) if i == idx]
            if not depths:
                errors.append("exit")
                continue
            # function spans above it are faults; manual spans above it outlive it
            for d in range(len(stack) - 1, depths[-1], -1):
                if stack[d][0] >= 0:
                    errors.append("exit")
                    close(True, d)
            close(False, depths[-1])
        elif op == "span-exit":
            manual = [d for d, (i, _) in enumerate(stack) if i < 0]
            if manual:  # function spans above it outlive it
                close(False, manual[-1])
            else:
                errors.append("span-exit")
        elif op == "end":
            while stack:
                close(True)
            errors.append("trap")
    if stack:
        errors.append("open")
        while stack:
            close(True)
    return roots, errors


def pairing_of(trace: Trace) -> tuple[list[Any], list[str]]:
    def conv(e: Span) -> Any:
        return (-1 if e.manual else e.function_index, e.error is not None, [conv(c) for c in e.children])
    kinds = []
    for message in trace.errors:
        kinds.append("exit" if message.startswith("exit:") else "span-exit" if message.startswith("span-exit")
                     else "trap" if message.startswith("trap") else "open")
    return [conv(r) for r in trace.root_spans], kinds


PAIRING_OP = st.one_of(
    st.tuples(st.sampled_from(["enter", "exit"]), st.integers(0, 4)),
    st.tuples(st.sampled_from(["span-enter", "span-exit", "end"]), st.just(0)),
)


@settings(max_examples=400, deadline=None)
@given(ops=st.lists(PAIRING_OP, max_size=60))
def test_assembler_pairs_like_the_plain_model(ops: list[tuple[str, int]]) -> None:
    from observe_sdk.abi import EventKind
    from observe_sdk.assemble import assemble
    from observe_sdk.host.recorder import EventLog
    from observe_sdk.names import FunctionNames

    log = EventLog(10_000)
    kinds = {"enter": EventKind.ENTER, "exit": EventKind.EXIT, "span-enter": EventKind.SPAN_ENTER,
             "span-exit": EventKind.SPAN_EXIT, "end": EventKind.END}
    for t, (op, idx) in enumerate(ops):
        payload = {"span-enter": "m", "end": ("trap: x", True)}.get(op)
        if payload is None:
            log.events += (int(kinds[op]), idx, t)
        else:
            log.add(int(kinds[op]), payload, t)
    trace = assemble(log, FunctionNames({}), min_span_duration_ns=0)
    assert pairing_of(trace) == reference_pairing(ops)


@settings(max_examples=300, deadline=None)
@given(ops=st.lists(PAIRING_OP, max_size=60), steps=st.lists(st.integers(0, 3), min_size=60, max_size=60),
       min_ns=st.integers(0, 4))
# function 2 still open when function 1 returns is closed as an error and kept; 1 is too short and goes
@example(ops=[("enter", 0), ("enter", 1), ("enter", 2), ("exit", 1), ("exit", 0)], steps=[0] * 60, min_ns=1)
def test_every_span_names_the_span_that_holds_it_as_its_parent(ops: list[tuple[str, int]], steps: list[int],
                                                              min_ns: int) -> None:
    """Spans too short to keep go and their children move up, spans end under others that stay open:
    whatever happens, a span's parent_id is the id of the span whose events hold it (0 for a root)."""
    from observe_sdk.abi import EventKind
    from observe_sdk.assemble import assemble
    from observe_sdk.host.recorder import EventLog
    from observe_sdk.names import FunctionNames

    log = EventLog(10_000)
    kinds = {"enter": EventKind.ENTER, "exit": EventKind.EXIT, "span-enter": EventKind.SPAN_ENTER,
             "span-exit": EventKind.SPAN_EXIT, "end": EventKind.END}
    t = 0
    for (op, idx), step in zip(ops, steps, strict=False):
        t += step
        payload = {"span-enter": "m", "end": ("trap: x", True)}.get(op)
        if payload is None:
            log.events += (int(kinds[op]), idx, t)
        else:
            log.add(int(kinds[op]), payload, t)
    trace = assemble(log, FunctionNames({}), min_span_duration_ns=min_ns)
    ids = []
    holders: list[tuple[int, list[Any]]] = [(0, trace.roots)]
    while holders:
        parent_id, events = holders.pop()
        for e in events:
            if isinstance(e, Span):
                assert e.parent_id == parent_id
                ids.append(e.span_id)
                holders.append((e.span_id, e.events))
    assert 0 not in ids and len(set(ids)) == len(ids)
