"""``GET /v1/feed/events``: the event feed as Server-Sent Events, with the caller's client key, an ``id``
per entry that ``Last-Event-ID`` resumes after, and precise errors before the stream starts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx

from pipelinejobs_client import JobsClient
from tests.servers import ShimThread
from tests.support import CLIENT_KEY, eventually

AUTH = {"authorization": f"Bearer {CLIENT_KEY}"}


def messages(shim: ShimThread, headers: dict[str, str], params: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Each SSE message of the stream as {id, event, data}."""
    with httpx.stream(
        "GET", f"{shim.url}/v1/feed/events", headers=headers, params=params, timeout=30
    ) as answer:
        assert answer.status_code == 200, answer.read()
        assert answer.headers["content-type"].startswith("text/event-stream")
        fields: dict[str, Any] = {}
        for line in answer.iter_lines():
            if not line:
                if "data" in fields:
                    yield {**fields, "data": json.loads(fields["data"])}
                fields = {}
            elif not line.startswith(":"):
                name, _, value = line.partition(": ")
                fields[name] = value


def entries(
    shim: ShimThread, count: int, headers: dict[str, str], params: dict[str, Any]
) -> list[dict[str, Any]]:
    found = []
    for message in messages(shim, headers, params):
        if message["event"] == "entry":
            found.append(message)
            if len(found) == count:
                return found
    raise AssertionError("the stream ended early")


def test_the_feed_streams_with_cursor_ids_and_resumes_after_last_event_id(
    shim: ShimThread, shim_jobs: JobsClient, shim_pipeline: str
) -> None:
    job = shim_jobs.create_job(shim_pipeline, sample="feed-sse", data={"sse": True})
    shim_jobs.send_event(job.job.uuid, "run", token=job.token)
    shim_jobs.send_event(job.job.uuid, "update", token=job.token)
    eventually(lambda: len(list(shim_jobs.iter_events(jobs=job.job.uuid))) == 3, what="the feed")
    first = next(iter(shim_jobs.iter_events(jobs=job.job.uuid))).cursor
    params = {"job": job.job.uuid}
    two = entries(shim, 2, AUTH, {**params, "after": first})
    assert [(m["data"]["seq"], m["data"]["event"]) for m in two] == [(2, "run"), (3, "update")]
    assert two[0]["id"] == two[0]["data"]["cursor"]
    # The browser's reconnection: Last-Event-ID wins over ?after=, and the stream goes on after it.
    shim_jobs.send_event(job.job.uuid, "finish", token=job.token)
    rest = entries(shim, 1, {**AUTH, "last-event-id": two[-1]["id"]}, {**params, "after": first})
    assert [(m["data"]["seq"], m["data"]["event"]) for m in rest] == [(4, "finish")]


def test_the_feed_needs_a_key_and_refuses_a_bad_cursor_before_streaming(shim: ShimThread) -> None:
    refused = httpx.get(f"{shim.url}/v1/feed/events", timeout=10)
    assert refused.status_code == 401
    assert refused.json()["error"]["reason"] == "API_KEY_REQUIRED"
    wrong = httpx.get(f"{shim.url}/v1/feed/events", headers={"authorization": "Bearer nope"}, timeout=10)
    assert wrong.status_code == 401
    bad = httpx.get(f"{shim.url}/v1/feed/events", headers=AUTH, params={"after": "not-a-cursor"}, timeout=10)
    assert bad.status_code == 400
    assert bad.json()["error"]["metadata"]["field"] == "after_cursor"
    unknown = httpx.get(f"{shim.url}/v1/feed/events", headers=AUTH, params={"event": "explode"}, timeout=10)
    assert unknown.status_code == 400
