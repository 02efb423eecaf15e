"""``pipelinejobs jobs watch``: prints the history, then events as they are applied elsewhere."""

from __future__ import annotations

import json
import threading
import time

import pytest

from pipelinejobs_client import JobsClient
from pipelinejobs_client.cli import main
from tests.servers import ServerThread
from tests.support import CLIENT_KEY


def test_jobs_watch_prints_backlog_then_live_events_until_a_state(
    server: ServerThread, capsys: pytest.CaptureFixture[str]
) -> None:
    with JobsClient(server.address, api_key=CLIENT_KEY) as client:
        pipeline = client.register_pipeline("watch", ["watch@1"]).pipeline.uuid
        created = client.create_job(pipeline, lab="UW_BIOFAB", data={"test": "cli-watch"})
        uuid, token = created.job.uuid, created.token
        client.send_event(uuid, "run", token=token)

        def later() -> None:
            time.sleep(0.5)  # after the watch has printed its backlog
            client.send_event(uuid, "update", token=token, data={"progress": 50})
            client.send_event(uuid, "finish", token=token)

        sender = threading.Thread(target=later)
        sender.start()
        environ = {"PIPELINEJOBS_SERVER": server.address, "PIPELINEJOBS_API_KEY": CLIENT_KEY}
        code = main(["jobs", "watch", uuid, "--until", "finished", "--json"], environ=environ)
        sender.join(timeout=30)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    entries = [json.loads(line) for line in captured.out.splitlines()]
    assert [(entry["seq"], entry["event"], entry["to_state"]) for entry in entries] == [
        (1, "create", "CREATED"),
        (2, "run", "RUNNING"),
        (3, "update", "RUNNING"),
        (4, "finish", "FINISHED"),
    ]
    assert entries[2]["data"] == {"progress": 50}
    assert token not in captured.out + captured.err
