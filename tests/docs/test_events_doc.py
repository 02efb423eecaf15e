"""docs/events.md's consumer, as written, against a real server: stopped and started again, it hands
on every finished or failed job exactly once and nothing else."""

from __future__ import annotations

import contextlib
import re
import threading
from pathlib import Path
from typing import Any

from pipelinejobs_client import JobsClient
from tests.servers import ServerThread
from tests.support import CLIENT_KEY, ROOT

DOC = ROOT / "docs" / "events.md"


class Enough(Exception):
    """Stops the consumer, as a restart of its program would."""


def consumer() -> Any:
    text = DOC.read_text()
    block = re.search(
        r"<!-- consumer:start -->\s*```python\n(.*?)```\s*<!-- consumer:end -->", text, re.DOTALL
    )
    assert block is not None, "docs/events.md lost its consumer block"
    namespace: dict[str, Any] = {}
    exec(compile(block.group(1), str(DOC), "exec"), namespace)  # noqa: S102 - the doc's own code
    return namespace["consume"]


def test_the_consumer_resumes_where_it_stopped(server: ServerThread, tmp_path: Path) -> None:
    consume = consumer()
    cursor_file = tmp_path / "last.cursor"
    handled: list[str] = []

    pipeline = ""  # the feed holds every job of the server, other tests' too: this test counts its own

    def handle_until(count: int) -> Any:
        def handle(entry: Any) -> None:
            if entry.pipeline_uuid != pipeline:
                return
            if len(handled) >= count:
                raise Enough  # before handling it: the next run starts with this entry
            handled.append(entry.job_uuid)

        return handle

    with JobsClient(server.address, api_key=CLIENT_KEY) as client:
        pipeline = client.register_pipeline("consumer", ["consumer@1"]).pipeline.uuid
        jobs = [client.create_job(pipeline, sample=f"s{n}") for n in range(4)]
        for n, job in enumerate(jobs):
            client.send_event(job.job.uuid, "run", token=job.token)
            client.send_event(job.job.uuid, "finish" if n % 2 else "fail", token=job.token)
        for count in (1, 3):  # stop after the first, start again and stop after the third
            with contextlib.suppress(Enough):
                consume(client, cursor_file, handle_until(count))
        later = client.create_job(pipeline, sample="later")
        client.send_event(later.job.uuid, "run", token=later.token)

        def finish() -> None:
            client.send_event(later.job.uuid, "finish", token=later.token)

        def handle_to_the_end(entry: Any) -> None:
            if entry.pipeline_uuid != pipeline:
                return
            handled.append(entry.job_uuid)
            if entry.job_uuid == later.job.uuid:
                raise Enough  # the entry fed while the consumer was waiting: the test is over

        threading.Timer(0.5, finish).start()
        with contextlib.suppress(Enough):
            consume(client, cursor_file, handle_to_the_end)
    # Exactly once each; the feed orders entries per job, not across jobs (one relay round may carry
    # several jobs' entries in the log's index order), so only the later job is known to come last.
    assert len(handled) == len(set(handled)) == len(jobs) + 1
    assert set(handled[:-1]) == {job.job.uuid for job in jobs}
    assert handled[-1] == later.job.uuid
