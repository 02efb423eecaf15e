"""ListEvents and WatchEvents through real gRPC: order, cursors, filters, cancels, refusals and errors."""

from __future__ import annotations

import time
import uuid

import grpc
import pytest
from pymongo.database import Database

from pipelinejobs_client.api.v1 import feed_pb2, job_pb2, job_service_pb2
from tests.api.feed_support import fed, keys, list_all, watch
from tests.servers import ServerThread, test_settings
from tests.support import (
    ADMIN,
    CLIENT,
    Stubs,
    create_job,
    error_info,
    event_enum,
    register_pipeline,
    send,
    stubs,
)

EVENT, CANCELLED = feed_pb2.FEED_ENTRY_KIND_EVENT, feed_pb2.FEED_ENTRY_KIND_CANCELLED


def test_every_accepted_event_is_in_the_feed_once_in_seq_order_per_job(api: Stubs) -> None:
    pipeline = register_pipeline(api)
    jobs = [create_job(api, pipeline, {"n": n}) for n in range(3)]
    for job in jobs:
        send(api, job.job.uuid, "run", token=job.token)
        send(api, job.job.uuid, "update", token=job.token, data={"step": 1})
    entries = fed(api, 9)
    assert sorted(keys(entries)) == sorted((job.job.uuid, seq, EVENT) for job in jobs for seq in (1, 2, 3))
    for job in jobs:
        assert [e.seq for e in entries if e.job_uuid == job.job.uuid] == [1, 2, 3]
    update = next(e for e in entries if e.seq == 3)
    assert dict(update.data) == {"step": 1}
    assert update.pipeline_uuid == pipeline
    assert list(update.links.lab) == ["UW_BIOFAB"]
    assert update.event == event_enum("update")
    assert update.hash
    assert update.uuid
    assert update.cursor


def test_resuming_from_every_cursor_reads_exactly_what_follows(api: Stubs) -> None:
    pipeline = register_pipeline(api)
    job = create_job(api, pipeline, {"resume": True})
    for n in range(6):
        send(api, job.job.uuid, "update", token=job.token, data={"n": n})
    entries = fed(api, 7)
    for index, entry in enumerate(entries):
        rest, _ = list_all(api, after=entry.cursor, page_size=2)
        assert keys(rest) == keys(entries[index + 1 :])


def test_a_refused_event_is_not_in_the_feed(api: Stubs) -> None:
    job = create_job(api, register_pipeline(api))
    with pytest.raises(grpc.RpcError) as refused:
        send(api, job.job.uuid, "finish", token=job.token)  # CREATED --finish--> is not a transition
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    send(api, job.job.uuid, "run", token=job.token)
    entries = fed(api, 2)
    time.sleep(0.3)  # a few relay rounds: nothing else comes
    assert [(e.seq, e.event) for e in list_all(api)[0]] == [(1, event_enum("create")), (2, event_enum("run"))]
    assert len(entries) == 2


def test_a_cancelled_job_leaves_its_entries_and_one_cancelled_entry(api: Stubs, db: Database) -> None:  # type: ignore[type-arg]
    job = create_job(api, register_pipeline(api))
    send(api, job.job.uuid, "update", token=job.token)
    api.jobs.CancelJob(job_service_pb2.CancelJobRequest(uuid=job.job.uuid, token=job.token), metadata=CLIENT)
    entries = fed(api, 3)
    assert keys(entries) == [(job.job.uuid, 1, EVENT), (job.job.uuid, 2, EVENT), (job.job.uuid, 2, CANCELLED)]
    assert entries[-1].from_state == job_pb2.JOB_STATE_CREATED
    assert db.job_events.count_documents({"job_uuid": job.job.uuid}) == 0  # the history itself is gone


def test_filters_select_by_the_entries_own_fields(api: Stubs) -> None:
    pipeline, other = register_pipeline(api), register_pipeline(api, "other")
    first = create_job(api, pipeline, {"n": 1}, lab=["Lab-A"])
    second = create_job(api, other, {"n": 2}, lab=["Lab-B"])
    send(api, first.job.uuid, "run", token=first.token)
    send(api, second.job.uuid, "run", token=second.token)
    send(api, second.job.uuid, "fail", token=second.token)
    third = create_job(api, pipeline, {"n": 3}, lab=["Lab-A"])
    api.jobs.CancelJob(
        job_service_pb2.CancelJobRequest(uuid=third.job.uuid, token=third.token), metadata=CLIENT
    )
    fed(api, 7)

    def selected(**fields: object) -> list[tuple[str, int, int]]:
        return keys(list_all(api, feed_filter=feed_pb2.FeedFilter(**fields))[0])  # type: ignore[arg-type]

    assert {k[0] for k in selected(pipeline_uuids=[other])} == {second.job.uuid}
    assert selected(events=[event_enum("fail")]) == [(second.job.uuid, 3, EVENT)]
    assert set(selected(to_states=[job_pb2.JOB_STATE_RUNNING])) == {
        (first.job.uuid, 2, EVENT),
        (second.job.uuid, 2, EVENT),
    }
    assert selected(job_uuids=[first.job.uuid]) == [(first.job.uuid, 1, EVENT), (first.job.uuid, 2, EVENT)]
    assert {k[0] for k in selected(links=job_pb2.JobLinks(lab=["Lab-B"]))} == {second.job.uuid}
    # Across jobs the feed's order is the order they were fed in, not their wall-clock order.
    assert set(selected(events=[event_enum("fail")], include_cancelled=True)) == {
        (second.job.uuid, 3, EVENT),
        (third.job.uuid, 1, CANCELLED),
    }
    assert selected(sources=[job_pb2.EVENT_SOURCE_ADMIN]) == []


@pytest.mark.parametrize(
    ("request_fields", "field"),
    [
        ({"after_cursor": "not-a-cursor"}, "after_cursor"),
        ({"filter": feed_pb2.FeedFilter(pipeline_uuids=["nope"])}, "filter.pipeline_uuids"),
        ({"filter": feed_pb2.FeedFilter(job_uuids=["nope"])}, "filter.job_uuids"),
        ({"filter": feed_pb2.FeedFilter(events=[job_pb2.JobEvent.ValueType(0)])}, "filter.events"),
        ({"filter": feed_pb2.FeedFilter(events=[job_pb2.JobEvent.ValueType(999)])}, "filter.events"),
        ({"filter": feed_pb2.FeedFilter(to_states=[job_pb2.JobState.ValueType(999)])}, "filter.to_states"),
        ({"filter": feed_pb2.FeedFilter(sources=[job_pb2.EventSource.ValueType(0)])}, "filter.sources"),
        ({"filter": feed_pb2.FeedFilter(links=job_pb2.JobLinks(lab=[""]))}, "filter.links.lab"),
        ({"view": 7}, "view"),
        ({"page_size": -1}, "page_size"),
    ],
)
def test_bad_requests_get_invalid_argument_naming_the_field(
    api: Stubs, request_fields: dict[str, object], field: str
) -> None:
    with pytest.raises(grpc.RpcError) as error:
        api.jobs.ListEvents(feed_pb2.ListEventsRequest(**request_fields), metadata=CLIENT)  # type: ignore[arg-type]
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(error.value).metadata["field"] == field


def test_a_cursor_of_another_feed_is_unknown(api: Stubs, mongodb_uri: str) -> None:
    create_job(api, register_pipeline(api))
    cursor = fed(api, 1)[0].cursor
    other = ServerThread(test_settings(mongodb_uri, f"test_{uuid.uuid4().hex[:12]}")).start()
    try:
        with stubs(other.address) as second:
            pipeline = register_pipeline(second)
            for n in range(3):
                create_job(second, pipeline, {"n": n})
            fed(second, 3)  # the other feed has a position 1 too: only its epoch tells them apart
            with pytest.raises(grpc.RpcError) as error:
                second.jobs.ListEvents(feed_pb2.ListEventsRequest(after_cursor=cursor), metadata=CLIENT)
        assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert error_info(error.value).reason == "CURSOR_UNKNOWN"
    finally:
        other.stop()


def test_a_cursor_ahead_of_the_feed_is_unknown(api: Stubs, db: Database) -> None:  # type: ignore[type-arg]
    create_job(api, register_pipeline(api))
    cursor = fed(api, 1)[0].cursor
    # As a database restored from a backup older than the cursor: no feed yet, and its head at 0.
    db.feed.delete_many({})
    db.feed_meta.update_one({"_id": "head"}, {"$set": {"p": 0}})
    with pytest.raises(grpc.RpcError) as error:
        api.jobs.ListEvents(feed_pb2.ListEventsRequest(after_cursor=cursor), metadata=CLIENT)
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_info(error.value).reason == "CURSOR_UNKNOWN"


def test_a_cursor_past_the_retention_has_expired_and_names_the_oldest(api: Stubs, db: Database) -> None:  # type: ignore[type-arg]
    job = create_job(api, register_pipeline(api))
    for _ in range(3):
        send(api, job.job.uuid, "update", token=job.token)
    entries = fed(api, 4)
    # What the relay's prune does past the retention: the horizon first, then the entries.
    through = 2
    db.feed_meta.update_one({"_id": "horizon"}, {"$max": {"through": through}}, upsert=True)
    db.feed.delete_many({"p": {"$lte": through}})
    with pytest.raises(grpc.RpcError) as error:
        api.jobs.ListEvents(feed_pb2.ListEventsRequest(after_cursor=entries[0].cursor), metadata=CLIENT)
    assert error.value.code() == grpc.StatusCode.OUT_OF_RANGE
    info = error_info(error.value)
    assert info.reason == "CURSOR_EXPIRED"
    assert info.metadata["oldest_cursor"] == entries[1].cursor
    rest, _ = list_all(api, after=info.metadata["oldest_cursor"])
    assert keys(rest) == keys(entries[2:])
    assert keys(list_all(api)[0]) == keys(entries[2:])  # no cursor: from the oldest kept


def test_watch_sends_the_backlog_then_live_entries_and_bookmarks(api: Stubs) -> None:
    job = create_job(api, register_pipeline(api))
    fed(api, 1)
    stream = watch(api, feed_pb2.WatchEventsRequest())
    first = next(stream)
    assert first.entry.seq == 1
    send(api, job.job.uuid, "run", token=job.token)
    second = next(stream)
    assert (second.entry.seq, second.entry.event) == (2, event_enum("run"))
    bookmark = next(stream)  # nothing more happens: a bookmark comes within bookmark_s (1 s in tests)
    assert bookmark.WhichOneof("item") == "bookmark"
    assert bookmark.bookmark.cursor == second.entry.cursor


def test_watch_from_now_and_to_an_end_cursor(api: Stubs) -> None:
    job = create_job(api, register_pipeline(api))
    fed(api, 1)
    stream = watch(api, feed_pb2.WatchEventsRequest(from_now=True))
    now = next(stream)  # first, where "now" is: a client that reconnects before any entry resumes there
    assert now.bookmark.cursor == fed(api, 1)[0].cursor
    send(api, job.job.uuid, "run", token=job.token)
    assert next(stream).entry.seq == 2
    send(api, job.job.uuid, "update", token=job.token)
    entries = fed(api, 3)
    ended = list(watch(api, feed_pb2.WatchEventsRequest(end_cursor=entries[1].cursor)))
    assert [reply.entry.seq for reply in ended] == [1, 2]


def test_watch_refuses_a_cursor_and_from_now_together(api: Stubs) -> None:
    create_job(api, register_pipeline(api))
    cursor = fed(api, 1)[0].cursor
    with pytest.raises(grpc.RpcError) as error:
        list(watch(api, feed_pb2.WatchEventsRequest(after_cursor=cursor, from_now=True)))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_admin_events_carry_their_source(api: Stubs) -> None:
    job = create_job(api, register_pipeline(api))
    api.jobs.SendEvent(
        job_service_pb2.SendEventRequest(uuid=job.job.uuid, event=event_enum("run")), metadata=ADMIN
    )
    fed(api, 2)
    admin = list_all(api, feed_filter=feed_pb2.FeedFilter(sources=[job_pb2.EVENT_SOURCE_ADMIN]))[0]
    assert [(e.seq, e.source) for e in admin] == [(2, job_pb2.EVENT_SOURCE_ADMIN)]


def test_a_watch_the_server_ends_says_where_to_resume_and_the_client_goes_on(mongodb_uri: str) -> None:
    from dataclasses import replace

    from pipelinejobs_client import JobsClient
    from pipelinejobs_server.settings import Streams
    from tests.support import CLIENT_KEY, eventually

    settings = test_settings(mongodb_uri, f"test_{uuid.uuid4().hex[:12]}")
    short = ServerThread(replace(settings, streams=replace(Streams(), max_watch_s=1.0))).start()
    try:
        with stubs(short.address) as api:
            job = create_job(api, register_pipeline(api))
            cursor = fed(api, 1)[0].cursor
            with pytest.raises(grpc.RpcError) as ended:
                list(watch(api, feed_pb2.WatchEventsRequest(after_cursor=cursor)))
            assert ended.value.code() == grpc.StatusCode.UNAVAILABLE
            info = error_info(ended.value)
            assert info.reason == "WATCH_RESUME"
            assert info.metadata["after_cursor"] == cursor
            running = short.running
            assert running is not None
            assert running.events is not None
            limits = running.events._limits  # the server's count of open watches: is the client's over?
            with JobsClient(short.address, api_key=CLIENT_KEY) as client:
                watching = client.watch_events(timeout=30)
                seen: list[feed_pb2.FeedEntry] = []

                def take() -> None:
                    entry = next(watching)
                    assert isinstance(entry, feed_pb2.FeedEntry)  # no bookmarks unless asked for
                    seen.append(entry)

                take()
                # The server ends the watch (its maximum duration) while the client holds entry 1, and
                # entry 2 is fed before the client asks for more: only a resume from entry 1's cursor
                # sees entry 2, and sees it once (from the start it repeats 1, from now it misses 2).
                eventually(lambda: limits.open() == 0, what="the server to end the watch")
                send(api, job.job.uuid, "run", token=job.token)
                fed(api, 2)
                take()
            assert [entry.seq for entry in seen] == [1, 2]
            assert len({entry.uuid for entry in seen}) == 2
    finally:
        short.stop()
