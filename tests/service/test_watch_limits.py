"""The caps on open watches (service/watch_limits.py): per key, per process, slots given back however a
watch ends, and refusals that name the cap."""

from __future__ import annotations

import contextlib

import pytest

from pipelinejobs_server.codes import codes_for
from pipelinejobs_server.domain.errors import TooManyWatches, TooManyWatchesForKey, TooManyWatchesOnServer
from pipelinejobs_server.service.credentials import Principal, Role
from pipelinejobs_server.service.watch_limits import WatchLimits

ALICE = Principal(Role.CLIENT, "key:aaaaaaaa")
BOB = Principal(Role.CLIENT, "key:bbbbbbbb")
ADMIN = Principal(Role.ADMIN, "key:cccccccc")


def test_a_key_gets_its_cap_and_no_more_while_others_still_get_theirs() -> None:
    limits = WatchLimits(per_key=2, total=10)
    with contextlib.ExitStack() as held:
        held.enter_context(limits.slot(ALICE))
        held.enter_context(limits.slot(ALICE))
        with pytest.raises(TooManyWatchesForKey) as refused:
            held.enter_context(limits.slot(ALICE))
        held.enter_context(limits.slot(BOB))
        held.enter_context(limits.slot(ADMIN))  # an admin key is a key like any other here
        assert (limits.open(ALICE), limits.open(BOB), limits.open()) == (2, 1, 4)
    assert refused.value.reason == "TOO_MANY_WATCHES_FOR_KEY"
    assert refused.value.metadata == {"limit": "2"}
    assert limits.open() == 0


def test_the_process_cap_counts_every_key() -> None:
    limits = WatchLimits(per_key=5, total=3)
    with contextlib.ExitStack() as held:
        for principal in (ALICE, ALICE, BOB):
            held.enter_context(limits.slot(principal))
        for principal in (ALICE, BOB, ADMIN):
            with pytest.raises(TooManyWatchesOnServer) as refused:
                held.enter_context(limits.slot(principal))
            assert refused.value.metadata == {"limit": "3"}
    assert limits.open() == 0


def test_the_key_cap_is_named_when_both_are_reached() -> None:
    # The caller can act on its own cap (end one of its watches); the server's it can only wait out.
    limits = WatchLimits(per_key=1, total=1)
    with limits.slot(ALICE), pytest.raises(TooManyWatchesForKey):
        limits.slot(ALICE).__enter__()


def test_a_slot_is_given_back_when_the_watch_fails_or_is_cancelled() -> None:
    limits = WatchLimits(per_key=1, total=1)

    def watch_ending_with(ending: BaseException) -> None:
        with limits.slot(ALICE):
            assert limits.open(ALICE) == 1
            raise ending

    for ending in (RuntimeError("the database went away"), GeneratorExit()):
        with pytest.raises(type(ending)):
            watch_ending_with(ending)
        assert limits.open() == 0
    with limits.slot(ALICE):  # and taken again
        assert limits.open(ALICE) == 1


def test_a_refused_watch_takes_no_slot() -> None:
    limits = WatchLimits(per_key=1, total=5)
    with limits.slot(ALICE):
        for _ in range(3):
            with pytest.raises(TooManyWatches):
                limits.slot(ALICE).__enter__()
        assert limits.open() == 1
    assert limits.open() == 0


def test_refusals_are_resource_exhausted_on_both_sides() -> None:
    for error in (TooManyWatchesForKey("x", limit=1), TooManyWatchesOnServer("x", limit=1)):
        codes = codes_for(error)
        assert (codes.grpc.name, codes.http) == ("RESOURCE_EXHAUSTED", 429)


@pytest.mark.parametrize(("per_key", "total"), [(0, 1), (1, 0), (-1, 5)])
def test_caps_below_one_are_refused(per_key: int, total: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        WatchLimits(per_key=per_key, total=total)
