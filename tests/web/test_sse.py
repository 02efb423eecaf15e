"""web/sse.py: a watch's items as SSE frames, and how a watch's end and failures reach the browser."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import grpc
import pytest

from pipelinejobs_client import errors as client_errors
from pipelinejobs_server.web import sse


async def frames(watch: AsyncIterator[int]) -> list[str]:
    return [frame async for frame in sse.stream(watch, lambda n: sse.message("n", {"n": n}, n), name="t")]


async def items(*values: int, then: Exception | None = None) -> AsyncIterator[int]:
    for value in values:
        yield value
    if then is not None:
        raise then


def test_each_item_is_one_message_with_its_id_after_the_retry_hint() -> None:
    got = asyncio.run(frames(items(1, 2)))
    assert got == [
        f"retry: {sse.RETRY_MS}\n\n",
        'id: 1\nevent: n\ndata: {"n":1}\n\n',
        'id: 2\nevent: n\ndata: {"n":2}\n\n',
    ]


def test_a_watch_the_server_ends_ends_the_stream_quietly() -> None:
    resume = client_errors.WatchResume("stopping", code=grpc.StatusCode.UNAVAILABLE, reason="WATCH_RESUME")
    assert asyncio.run(frames(items(1, then=resume)))[1:] == ['id: 1\nevent: n\ndata: {"n":1}\n\n']


def test_a_reported_failure_is_a_failure_message_with_its_reason_only() -> None:
    failure = client_errors.PipelineJobsError(
        "job not found", code=grpc.StatusCode.NOT_FOUND, reason="JOB_NOT_FOUND", metadata={"uuid": "x"}
    )
    last = asyncio.run(frames(items(then=failure)))[-1]
    assert last.startswith("event: failure\n")
    assert json.loads(last.split("data: ", 1)[1]) == {"reason": "JOB_NOT_FOUND", "message": "job not found"}


def test_anything_else_raised_ends_the_response_with_it() -> None:
    with pytest.raises(RuntimeError, match="broken"):
        asyncio.run(frames(items(1, then=RuntimeError("broken"))))


def test_a_quiet_watch_gets_heartbeats(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sse, "HEARTBEAT_S", 0.01)

    async def slow() -> AsyncIterator[int]:
        await asyncio.sleep(0.1)
        yield 1

    got = asyncio.run(frames(slow()))
    assert ": still watching\n\n" in got
    assert got[-1] == 'id: 1\nevent: n\ndata: {"n":1}\n\n'
