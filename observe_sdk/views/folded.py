"""Folded stacks (``a;b;c 12``) for flamegraph.pl, inferno and speedscope.

One line per distinct stack of display names: the self time, in whole
microseconds, of every span with that stack, summed over all the traces.
A ``;`` in a name would split the frame, and a line break the line, so both
become spaces.
"""
from __future__ import annotations

from ..trace import Trace
from .flat import flatten


def _frame(name: str) -> str:
    return name.replace(";", " ").replace("\n", " ").replace("\r", " ") or "?"


def folded_stacks(traces: list[Trace]) -> list[tuple[str, int]]:
    """(stack, self time in ns) per distinct stack, in the order stacks first appear."""
    flat = flatten(traces)
    frames = [_frame(i.name) for i in flat.identities]
    stack_ids: dict[tuple[int, int], int] = {}     # (parent's stack, identity) -> stack
    stack_names: list[str] = []
    totals: list[int] = []
    stack_of_row: list[int] = []
    for row in range(len(flat.spans)):
        parent = flat.parent[row]
        key = (stack_of_row[parent] if parent >= 0 else -1, flat.identity[row])
        stack = stack_ids.get(key)
        if stack is None:
            stack = stack_ids[key] = len(stack_names)
            frame = frames[key[1]]
            stack_names.append(frame if key[0] < 0 else f"{stack_names[key[0]]};{frame}")
            totals.append(0)
        stack_of_row.append(stack)
        totals[stack] += flat.self_ns[row]
    merged: dict[str, int] = {}   # two identities may share a display name
    for name, ns in zip(stack_names, totals, strict=True):
        merged[name] = merged.get(name, 0) + ns
    return list(merged.items())


def folded_text(traces: list[Trace]) -> str:
    return "".join(f"{stack} {round(ns / 1000)}\n" for stack, ns in folded_stacks(traces))
