"""Raw events -> Trace: the span tree, built once per trace.

One pass over the event log: automatic (``enter``/``exit``) and manual
(``span-enter``/``span-exit``) spans share one stack; allocations, logs and
metrics go into the innermost open span.  A closed span shorter than the
minimum duration is dropped unless it is a root or an error, and what it held
(allocations, logs, metrics, kept children) moves up to its parent, so that
nothing but the span itself is lost.  Spans still open when the guest trapped
or exited, or when the trace finished, are closed then and marked as errors.

Manual spans need not nest inside functions: guests open and close them from
helper functions (``custom_span_enter(name)``), and instrumenting compilers wrap
the Observe imports themselves in functions of their own.  So:

- ``exit(f)`` with manual spans opened inside ``f`` still open above it ends
  ``f``'s span there; those manual spans stay open, one level up (their parent
  is now ``f``'s parent).  Function spans still open above ``f`` are faults:
  they are closed as errors.
- ``span-exit`` with function spans opened after the innermost manual span
  still open above it ends that manual span; those function spans stay open,
  one level up.  A ``span-exit`` with no manual span open is a fault.
"""
from __future__ import annotations

import os
from array import array
from collections.abc import Callable, Iterator
from itertools import chain
from typing import Any

from .abi import EventKind
from .gcpause import gc_paused
from .host.recorder import EventLog
from .trace import Allocation, Log, Metric, Span, Trace, new_trace_id

K_ENTER = int(EventKind.ENTER)
K_EXIT = int(EventKind.EXIT)
K_GROW = int(EventKind.GROW)
K_SPAN_ENTER = int(EventKind.SPAN_ENTER)
K_SPAN_EXIT = int(EventKind.SPAN_EXIT)
K_TAGS = int(EventKind.TAGS)
K_METRIC = int(EventKind.METRIC)
K_LOG = int(EventKind.LOG)
K_ERROR = int(EventKind.ERROR)
K_END = int(EventKind.END)

# A frame is an open span: [function index (negative: a manual span), start_ns, events, tags, manual name,
# the frame under it, the frame over it (stale while it is the innermost), its span id].  The open frames
# form a doubly linked stack, so a span can end under others that stay open without moving them.  The id
# is drawn when the frame opens, so a span closing names its parent at once (the frame under it then).
_IDX, _START, _EVENTS, _TAGS, _NAME, _BELOW, _ABOVE, _ID = range(8)


def assemble(
    log: EventLog,
    names: Callable[[int], tuple[str, str]],
    *,
    min_span_duration_ns: int = 20_000,
    trace_id: bytes | None = None,
    metadata: dict[str, Any] | None = None,
) -> Trace:
    """Build a :class:`Trace` from ``log``; ``names(index)`` gives (display, raw) names."""
    with gc_paused():
        return _assemble(log, names, min_span_duration_ns, trace_id, metadata)


def _assemble(
    log: EventLog,
    names: Callable[[int], tuple[str, str]],
    min_span_duration_ns: int,
    trace_id: bytes | None,
    metadata: dict[str, Any] | None,
) -> Trace:
    ev = log.events
    payloads = log.payloads
    roots: list[Any] = []
    errors: list[str] = []
    bottom: list[Any] = [None, 0, roots, [], None, None, None, 0]  # under the roots: its events are the roots
    top = bottom
    # The open frames of each kind, innermost last, so that an exit finds what it ends without
    # looking past the frames of the other kind (a guest can pile up any number of those).
    functions: list[list[Any]] = []
    manuals: list[list[Any]] = []
    open_functions, open_manuals = _OpenFrames(), _OpenFrames()
    cur = roots
    min_ns = min_span_duration_ns
    next_id = span_ids().__next__
    named: dict[int, tuple[str, str]] = {}  # names(), looked up once per function
    frame: list[Any]

    def close(frame: list[Any], end: int, error: str | None) -> None:
        """Close ``frame``, already off the stack, into the frame that was under it."""
        below = frame[_BELOW]
        frame[_BELOW] = None  # no cycle with the frame under it, whose _ABOVE may still name this one
        events = frame[_EVENTS]
        idx = frame[_IDX]
        if below is not bottom and error is None and end - frame[_START] < min_ns:
            _drop(frame, below)
            return
        if idx < 0:
            name = raw = frame[_NAME]
            span = Span(name, raw, 0, frame[_START], end, True, events, frame[_TAGS], error, frame[_ID], below[_ID])
        else:
            name, raw = names(idx)
            span = Span(name, raw, idx, frame[_START], end, False, events, frame[_TAGS], error, frame[_ID],
                        below[_ID])
        below[_EVENTS].append(span)

    def unlink(frame: list[Any]) -> None:
        """Take ``frame`` off the stack; the frames over it stay open, one level down."""
        nonlocal top
        below = frame[_BELOW]
        if frame is top:
            top = below
        else:
            above = frame[_ABOVE]
            above[_BELOW] = below
            below[_ABOVE] = above

    def fault(frame: list[Any], idx: int, t: int) -> None:
        """``frame``, still open over the frame of ``idx`` when ``exit(idx)`` arrives, closes as an error."""
        what = f"manual span {frame[_NAME]!r}" if frame[_IDX] < 0 else f"function {frame[_IDX]}"
        errors.append(f"exit: {what} was still open when function {idx} returned; closed")
        unlink(frame)
        close(frame, t, "not closed before its caller returned")

    def end_function(idx: int, t: int) -> None:
        """``exit(idx)`` for a frame under the innermost one (see the module docstring)."""
        if idx >= 0:  # manual spans over it outlive it: only the function frames over it are visited
            while functions[-1][_IDX] != idx:
                fault(functions.pop(), idx, t)
            frame = functions.pop()
        else:  # a malformed guest's negative index: everything over it is a fault
            while top[_IDX] != idx:
                fault((functions if top[_IDX] >= 0 else manuals).pop(), idx, t)
            frame = manuals.pop()
        unlink(frame)
        close(frame, t, None)

    def close_all(t: int, error: str | None) -> None:
        """Close every open frame, the innermost first (a trap, an exit, the end of the trace)."""
        nonlocal top
        while top is not bottom:
            frame = top
            top = frame[_BELOW]
            close(frame, t, error)
        functions.clear()
        manuals.clear()

    t = ev[-1] if ev else 0
    it = iter(ev)
    for k, a, t in zip(it, it, it, strict=False):  # the log holds whole (kind, arg, t_ns) triples
        if k == K_ENTER:
            if a >= 0:
                frame = [a, t, [], [], None, top, None, next_id()]
                functions.append(frame)
            else:  # a malformed guest: a negative index cannot be a function, show it as func[<unsigned>]
                frame = [a, t, [], [], f"func[{a & 0xFFFFFFFF}]", top, None, next_id()]
                manuals.append(frame)
            top[_ABOVE] = frame
            top = frame
            cur = frame[_EVENTS]
        elif k == K_EXIT:
            if top[_IDX] == a and a >= 0:  # the innermost function returns: close() inlined, the common case
                frame = top
                top = below = frame[_BELOW]
                frame[_BELOW] = None
                functions.pop()
                start = frame[_START]
                if t - start >= min_ns or below is bottom:
                    name_raw = named.get(a)
                    if name_raw is None:
                        name_raw = named[a] = names(a)
                    below[_EVENTS].append(Span(name_raw[0], name_raw[1], a, start, t, False, frame[_EVENTS],
                                               frame[_TAGS], None, frame[_ID], below[_ID]))
                elif frame[_EVENTS] or frame[_TAGS]:
                    _drop(frame, below)
            elif top[_IDX] == a:
                frame = manuals.pop()
                top = frame[_BELOW]
                close(frame, t, None)
            elif open_functions.has(functions, a) if a >= 0 else open_manuals.has(manuals, a):
                end_function(a, t)
            else:
                errors.append(f"exit: function {a} has no open span; ignored")
            cur = top[_EVENTS]
        elif k == K_GROW:
            cur.append(Allocation(a, t))
        elif k == K_SPAN_ENTER:
            frame = [-1, t, [], [], payloads[a], top, None, next_id()]
            manuals.append(frame)
            top[_ABOVE] = frame
            top = frame
            cur = frame[_EVENTS]
        elif k == K_SPAN_EXIT:
            if manuals:
                # the innermost manual span ends; function spans opened after it stay open, one level down
                frame = manuals.pop()
                unlink(frame)
                close(frame, t, None)
                cur = top[_EVENTS]
            elif top is not bottom:
                errors.append("span-exit: no manual span is open; ignored")
            else:
                errors.append("span-exit: no span is open; ignored")
        elif k == K_TAGS:
            text = payloads[a]
            if top is not bottom:
                top[_TAGS].extend(tag.strip() for tag in text.split(",") if tag.strip())
            else:
                errors.append(f"span-tags: no span is open for tags {text!r}; ignored")
        elif k == K_LOG:
            level, text = payloads[a]
            cur.append(Log(level, text, t))
        elif k == K_METRIC:
            fmt, text = payloads[a]
            cur.append(Metric(fmt, text, t))
        elif k == K_ERROR:
            errors.append(payloads[a])
        elif k == K_END:
            reason, is_error = payloads[a]
            close_all(t, reason if is_error else None)
            cur = roots
            if is_error:
                errors.append(reason)
        else:
            errors.append(f"internal: unknown raw event kind {k}; ignored")

    if top is not bottom:
        errors.append(f"{len(functions) + len(manuals)} span(s) still open when the trace finished; closed as errors")
        close_all(t, "span still open when the trace finished")

    if log.dropped:
        errors.append(f"event cap reached: {log.dropped} event(s) dropped")
    return Trace(
        trace_id=trace_id or new_trace_id(),
        roots=roots,
        metadata=dict(metadata or {}),
        errors=errors,
        dropped_events=log.dropped,
        start_ns=ev[2] if ev else 0,
        end_ns=t,
    )


def _drop(frame: list[Any], below: list[Any]) -> None:
    """A span too short to keep goes; what it held (events, tags, kept child spans) moves to ``below``."""
    events = frame[_EVENTS]
    if events:
        parent_id = below[_ID]
        for e in events:
            if type(e) is Span:
                e.parent_id = parent_id
        below[_EVENTS].extend(events)
    if frame[_TAGS]:
        below[_TAGS].extend(frame[_TAGS])


def span_ids(batch: int = 4096) -> Iterator[int]:
    """Random non-zero 64-bit span ids, drawn from the OS a batch at a time (a call per id costs more
    than the rest of opening a span)."""
    return chain.from_iterable(_span_id_batches(batch))


def _span_id_batches(batch: int) -> Iterator[array[int]]:
    while True:
        ids = array("Q", os.urandom(8 * batch))
        while 0 in ids:
            ids[ids.index(0)] = 1
        yield ids


class _OpenFrames:
    """Whether an index has an open frame, for the exits that do not match the innermost one.

    A scan of the open frames for each would let a guest that repeats such exits
    under a deep stack cost depth x exits.  Instead this counts the open frames
    per index, brought up to date lazily at each question, so that the common
    path (an exit that matches) pays nothing.  ``stack`` is the list of open
    frames of one kind (it grows and shrinks only at its end) and ``frames`` is
    that list as it was at the last question; frames are never reused, so where
    ``frames[d]`` is still ``stack[d]`` the list below ``d`` is unchanged too:
    that prefix is found by bisection and only the rest is counted again (each
    frame is counted in once and out once).
    """

    __slots__ = ("frames", "counts")

    def __init__(self) -> None:
        self.frames: list[list[Any]] = []
        self.counts: dict[int, int] = {}

    def has(self, stack: list[list[Any]], idx: int) -> bool:
        frames, counts = self.frames, self.counts
        lo, hi = 0, min(len(frames), len(stack))
        while lo < hi:  # the longest prefix still in place
            mid = (lo + hi + 1) // 2
            if frames[mid - 1] is stack[mid - 1]:
                lo = mid
            else:
                hi = mid - 1
        for frame in frames[lo:]:
            counts[frame[_IDX]] -= 1
        del frames[lo:]
        for frame in stack[lo:]:
            counts[frame[_IDX]] = counts.get(frame[_IDX], 0) + 1
        frames.extend(stack[lo:])
        return counts.get(idx, 0) > 0

