"""Group commit in the event path (service/events.py, DESIGN §6a), on the real embedded database.

Jobs are made and read through a real gRPC server; the batches are sent to an ``Events`` service of this
test's own on the same database, with every call started before the first is written, so that the whole
list is one batch (the queue takes what arrived while nothing was being written: all of it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import pytest
from pymongo.database import Database

from pipelinejobs_server.domain.clock import SystemClock
from pipelinejobs_server.domain.errors import (
    EventQueueFull,
    IdempotencyConflict,
    InvalidToken,
    InvalidTransition,
    JobNotFound,
)
from pipelinejobs_server.service.events import Applied, Event, Events
from pipelinejobs_server.service.settling import RecordSettler
from pipelinejobs_server.storage.database import Database as Store
from pipelinejobs_server.storage.jobs import JobStore
from pipelinejobs_server.storage.rejected import RejectedStore
from tests.api.jobs.helpers import get_job, rejected, verify
from tests.invariants import check_history
from tests.servers import test_settings
from tests.support import Stubs, create_job, history, register_pipeline, send, state_name


@dataclass
class Sent:
    results: list[Applied | BaseException]
    sizes: dict[int, int]
    handed_over: int  # events the batch left to the one-event path


def in_one_batch(uri: str, database: str, events: Sequence[Event], **limits: Any) -> Sent:
    """Send ``events`` concurrently to a service of our own: one batch (``max_event_batch`` permitting)."""

    async def run() -> Sent:
        settings = test_settings(uri, database)
        # One batch in flight, so that the whole list is one batch.
        settings = replace(
            settings, limits=replace(settings.limits, **{"event_batches_in_flight": 1, **limits})
        )
        connection = Store(uri, database)
        try:
            store = JobStore(connection)
            service = Events(
                settings, store, RecordSettler(store), RejectedStore(connection, keep=100), SystemClock()
            )
            results = await asyncio.gather(*(service.send(None, e) for e in events), return_exceptions=True)
            stats = service.batches.stats
            return Sent(list(results), dict(stats.sizes), stats.handed_over)
        finally:
            await connection.close()

    return asyncio.run(run())


@pytest.fixture
def two_jobs(api: Stubs) -> list[tuple[str, str]]:
    pipeline = register_pipeline(api)
    jobs = [create_job(api, pipeline, {"n": n}) for n in range(2)]
    return [(job.job.uuid, job.token) for job in jobs]


def applied(result: Applied | BaseException) -> Applied:
    assert isinstance(result, Applied), f"refused: {result!r}"
    return result


def test_events_of_one_job_chain_in_arrival_order_in_one_write(
    api: Stubs, mongodb_uri: str, database_name: str, two_jobs: list[tuple[str, str]]
) -> None:
    job, token = two_jobs[0]
    # run, then finish: legal only in this order, each decided on the one before it in memory.
    names = ["run", "update", "finish", "update", "indexed", "validate"]
    sent = in_one_batch(
        mongodb_uri,
        database_name,
        [Event(job, name, {"i": i}, token, f"k{i}") for i, name in enumerate(names)],
    )
    assert sent.sizes == {len(names): 1}
    assert sent.handed_over == 0, "every event was decided and written by the batch itself"
    replies = [applied(result) for result in sent.results[:3]]
    assert [reply.event.entry.seq for reply in replies] == [2, 3, 4]
    assert [reply.job.seq for reply in replies] == [2, 3, 4], (
        "each caller sees the record after its own event"
    )
    assert [reply.job.state for reply in replies] == ["RUNNING", "RUNNING", "FINISHED"]
    # update on FINISHED is refused (decided on the record after 'finish', not on the stored CREATED) ...
    assert isinstance(sent.results[3], InvalidTransition)
    # ... and the later events go on from there.
    assert [applied(result).event.entry.seq for result in sent.results[4:]] == [5, 6]
    record = get_job(api, job)
    events = history(api, job)
    check_history(
        record, events, [applied(r).event.entry.uuid for r in sent.results if isinstance(r, Applied)]
    )
    assert [e.idempotency_key for e in events[1:]] == ["k0", "k1", "k2", "k4", "k5"]
    assert state_name(record.state) == "VALIDATING"
    assert verify(api, job).valid


def test_one_callers_refusal_fails_that_caller_only(
    api: Stubs, mongodb_uri: str, database_name: str, two_jobs: list[tuple[str, str]]
) -> None:
    (first, first_token), (second, second_token) = two_jobs
    send(api, first, "update", token=first_token, data={"v": 1}, key="used")
    batch = [
        Event(first, "update", {"n": 1}, first_token, "a1"),
        Event(first, "update", {"n": 2}, "not-the-token", "a2"),  # bad token
        Event(second, "finish", {}, second_token, "b1"),  # CREATED -> finish: refused by the machine
        Event(first, "update", {"v": 2}, first_token, "used"),  # key used with another payload
        Event(second, "run", {}, second_token, "b2"),
        Event("5a6b1f7e-93a4-5d27-8c0b-7c1d9e3f2a10", "update", {}, first_token, "x"),  # no such job
        Event(first, "update", {"n": 3}, first_token, "a3"),
    ]
    sent = in_one_batch(mongodb_uri, database_name, batch)
    assert sent.sizes == {len(batch): 1}
    assert isinstance(sent.results[1], InvalidToken)
    assert isinstance(sent.results[2], InvalidTransition)
    assert isinstance(sent.results[3], IdempotencyConflict)
    assert isinstance(sent.results[5], InvalidToken)  # an anonymous caller learns nothing of other jobs
    good = [applied(sent.results[i]) for i in (0, 4, 6)]
    assert [(r.event.entry.job_uuid, r.event.entry.seq) for r in good] == [
        (first, 3),
        (second, 2),
        (first, 4),
    ]
    first_events, second_events = history(api, first), history(api, second)
    assert [e.idempotency_key for e in first_events[1:]] == ["used", "a1", "a3"]
    assert [e.idempotency_key for e in second_events[1:]] == ["b2"]
    check_history(get_job(api, first), first_events, [good[0].event.entry.uuid, good[2].event.entry.uuid])
    check_history(get_job(api, second), second_events, [good[1].event.entry.uuid])
    assert [record.reason for record in rejected(api, second)] == ["INVALID_TRANSITION"]


def test_the_same_key_twice_in_one_batch_applies_once(
    api: Stubs, mongodb_uri: str, database_name: str, two_jobs: list[tuple[str, str]]
) -> None:
    job, token = two_jobs[0]
    batch = [
        Event(job, "run", {"a": 1}, token, "twice"),
        Event(job, "update", {}, token, "other"),
        Event(job, "run", {"a": 1}, token, "twice"),  # a retry: replays the first
        Event(job, "run", {"a": 2}, token, "twice"),  # same key, another payload: a conflict
    ]
    sent = in_one_batch(mongodb_uri, database_name, batch)
    assert sent.sizes == {len(batch): 1}
    first, retry = applied(sent.results[0]), applied(sent.results[2])
    assert first.replayed is False
    assert retry.replayed is True
    assert retry.event.entry.uuid == first.event.entry.uuid
    assert isinstance(sent.results[3], IdempotencyConflict)
    events = history(api, job)
    assert [e.idempotency_key for e in events[1:]] == ["twice", "other"]
    assert [(r.event, r.reason) for r in rejected(api, job)] == [("run", "DUPLICATE")]


def test_a_job_being_cancelled_fails_its_callers_only(
    api: Stubs,
    mongodb_uri: str,
    database_name: str,
    db: Database[dict[str, Any]],
    two_jobs: list[tuple[str, str]],
) -> None:
    (cancelling, cancelling_token), (kept, kept_token) = two_jobs
    # A CancelJob between its two steps: the record marked, its history not yet deleted.
    db.jobs.update_one({"_id": cancelling}, {"$set": {"cancelled": True}})
    sent = in_one_batch(
        mongodb_uri,
        database_name,
        [Event(cancelling, "run", {}, cancelling_token), Event(kept, "run", {}, kept_token)],
    )
    assert isinstance(sent.results[0], InvalidToken | JobNotFound)
    assert applied(sent.results[1]).event.entry.seq == 2
    assert db.job_events.count_documents({"job_uuid": cancelling, "seq": {"$gt": 1}}) == 0


def test_past_the_queue_bound_events_are_refused_and_nothing_of_theirs_is_written(
    api: Stubs, mongodb_uri: str, database_name: str, two_jobs: list[tuple[str, str]]
) -> None:
    job, token = two_jobs[0]
    batch = [Event(job, "update", {"n": n}, token, f"q{n}") for n in range(6)]
    sent = in_one_batch(mongodb_uri, database_name, batch, max_queued_events=4, max_event_batch=2)
    assert [applied(r).event.entry.seq for r in sent.results[:4]] == [2, 3, 4, 5]
    for refused in sent.results[4:]:
        assert isinstance(refused, EventQueueFull)
        assert refused.metadata == {"limit": "4"}
    assert sent.sizes == {2: 2}
    assert [e.idempotency_key for e in history(api, job)[1:]] == ["q0", "q1", "q2", "q3"]
