"""gc_paused: the collector off while a trace is built, the trace not rescanned afterwards, a host's
own frozen objects left frozen."""
from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from observe_sdk.gcpause import gc_paused


@pytest.fixture(autouse=True)
def collector_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    gc.unfreeze()
    if not was:
        gc.disable()


def test_the_collector_is_off_inside_and_on_again_after() -> None:
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():  # nested: the inner one leaves it off
            pass
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_collector_the_host_turned_off_stays_off() -> None:
    gc.disable()
    with gc_paused():
        pass
    assert not gc.isenabled()


def test_what_was_built_inside_is_not_young_afterwards() -> None:
    gc.collect()
    with gc_paused():
        built = [[i] for i in range(50_000)]
    young, middle, _ = gc.get_count()
    assert young < 700 and middle <= 1, gc.get_count()  # no pass is due for them: they are in the oldest generation
    assert gc.is_tracked(built[0]) and len(built) == 50_000


def test_a_hosts_frozen_objects_stay_frozen() -> None:
    gc.freeze()  # what a pre-fork server does
    frozen = gc.get_freeze_count()
    with gc_paused():
        _ = [[i] for i in range(1000)]
    assert gc.get_freeze_count() > frozen // 2  # not unfrozen (some of them may have been freed meanwhile)
