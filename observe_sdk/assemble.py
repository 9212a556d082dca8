"""Raw events -> Trace: the span tree, built once per trace.

One pass over the event log: automatic (``enter``/``exit``) and manual
(``span-enter``/``span-exit``) spans share one stack; allocations, logs and
metrics go into the innermost open span.  A closed span shorter than the
minimum duration is dropped unless it is a root or an error, and what it held
(allocations, logs, metrics, kept children) moves up to its parent, so that
nothing but the span itself is lost.  Spans still open when the guest trapped
or exited, or when the trace finished, are closed then and marked as errors.
"""
from __future__ import annotations

from typing import Any, Callable

from .abi import EventKind
from .gcpause import gc_paused
from .host.recorder import EventLog
from .trace import Allocation, Log, Metric, Span, Trace, new_span_id, new_trace_id

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

# A frame is an open span: [function index (-1 when manual), start_ns, events, tags, manual name]
_IDX, _START, _EVENTS, _TAGS, _NAME = range(5)


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
    stack: list[list[Any]] = []
    cur = roots
    min_ns = min_span_duration_ns
    getrandbits = new_span_id
    open_frames = _OpenFrames()

    def close(frame: list[Any], end: int, error: str | None) -> None:
        nonlocal cur
        events = frame[_EVENTS]
        parent = stack[-1][_EVENTS] if stack else roots
        cur = parent
        if stack and error is None and end - frame[_START] < min_ns:
            parent.extend(events)  # the span goes; what it held stays
            return
        idx = frame[_IDX]
        if idx < 0:
            name = raw = frame[_NAME]
            span = Span(name, raw, 0, frame[_START], end, True, events, frame[_TAGS], error)
        else:
            name, raw = names(idx)
            span = Span(name, raw, idx, frame[_START], end, False, events, frame[_TAGS], error)
        sid = span.span_id = getrandbits()
        for e in events:
            if type(e) is Span:
                e.parent_id = sid
        parent.append(span)

    t = ev[-1] if ev else 0
    it = iter(ev)
    for k, a, t in zip(it, it, it):
        if k == K_ENTER:
            # a negative index (a malformed guest) cannot be a function: show it as func[<unsigned>]
            frame = [a, t, [], [], None if a >= 0 else f"func[{a & 0xFFFFFFFF}]"]
            stack.append(frame)
            cur = frame[_EVENTS]
        elif k == K_EXIT:
            idx = a
            if stack and stack[-1][_IDX] == idx:
                close(stack.pop(), t, None)
            elif open_frames.has(stack, idx):
                _unwind_to(stack, idx, t, close, errors)
                cur = stack[-1][_EVENTS] if stack else roots
            else:
                errors.append(f"exit: function {idx} has no open span; ignored")
        elif k == K_GROW:
            cur.append(Allocation(a, t))
        elif k == K_SPAN_ENTER:
            frame = [-1, t, [], [], payloads[a]]
            stack.append(frame)
            cur = frame[_EVENTS]
        elif k == K_SPAN_EXIT:
            if stack and stack[-1][_IDX] < 0:
                close(stack.pop(), t, None)
            elif stack:
                errors.append(f"span-exit: the innermost open span is function "
                              f"{names(stack[-1][_IDX])[0]}, not a manual span; ignored")
            else:
                errors.append("span-exit: no span is open; ignored")
        elif k == K_TAGS:
            text = payloads[a]
            if stack:
                stack[-1][_TAGS].extend(tag.strip() for tag in text.split(",") if tag.strip())
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
            while stack:
                close(stack.pop(), t, reason if is_error else None)
            if is_error:
                errors.append(reason)
        else:
            errors.append(f"internal: unknown raw event kind {k}; ignored")

    if stack:
        errors.append(f"{len(stack)} span(s) still open when the trace finished; closed as errors")
        while stack:
            close(stack.pop(), t, "span still open when the trace finished")

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


class _OpenFrames:
    """Whether a function has an open frame, for the exits that do not match the innermost one.

    A scan of the stack for each would let a guest that repeats such exits
    under a deep stack cost depth x exits.  Instead this counts the open frames
    per index, brought up to date lazily at each question, so that the common
    path (an exit that matches) pays nothing.  ``frames`` is the stack as it was
    at the last question; frames are never reused, so where ``frames[d]`` is
    still ``stack[d]`` the stack below ``d`` is unchanged too: that prefix is
    found by bisection and only the rest is counted again (each frame is
    counted in once and out once).
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


def _unwind_to(stack: list[list[Any]], idx: int, t: int, close: Callable[..., None], errors: list[str]) -> None:
    """``exit(idx)`` that is not the innermost span: close what is above it, or ignore it."""
    for depth in range(len(stack) - 1, -1, -1):
        if stack[depth][_IDX] == idx:
            while len(stack) > depth + 1:
                frame = stack.pop()
                what = f"manual span {frame[_NAME]!r}" if frame[_IDX] < 0 else f"function {frame[_IDX]}"
                errors.append(f"exit: {what} was still open when function {idx} returned; closed")
                close(frame, t, "not closed before its caller returned")
            close(stack.pop(), t, None)
            return
    errors.append(f"exit: function {idx} has no open span; ignored")
