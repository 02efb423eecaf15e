"""``pipelinejobs events list|watch``: the feed with filters, one JSON object a line, and the cursor to
resume from printed last."""

from __future__ import annotations

import json
import threading
import time

from pipelinejobs_client import JobsClient
from tests.cli.helpers import Cli
from tests.servers import ServerThread
from tests.support import CLIENT_KEY, eventually


def _lines(out: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def _cursor(err: str) -> str:
    return next(line.removeprefix("cursor: ") for line in err.splitlines() if line.startswith("cursor: "))


def test_events_list_prints_the_feed_and_the_cursor_to_resume_from(cli: Cli, server: ServerThread) -> None:
    with JobsClient(server.address, api_key=CLIENT_KEY) as client:
        pipeline = client.register_pipeline("events", ["events@1"]).pipeline.uuid
        job = client.create_job(pipeline, lab="UW_BIOFAB")
        client.send_event(job.job.uuid, "run", token=job.token)
        eventually(lambda: len(list(client.iter_events())) == 2, what="the feed")
        listed = cli("events", "list", "--json", "--data")
        lines = _lines(listed.out)
        assert [(line["event"], line["seq"]) for line in lines[:-1]] == [("create", 1), ("run", 2)]
        assert lines[-1] == {"next_cursor": _cursor(listed.err)}
        assert cli("events", "list", "--json", "--after", _cursor(listed.err)).out.count("\n") == 1
        client.send_event(job.job.uuid, "finish", token=job.token)
        eventually(lambda: len(list(client.iter_events())) == 3, what="the feed")
        resumed = _lines(cli("events", "list", "--json", "--after", _cursor(listed.err)).out)
        assert [line["event"] for line in resumed[:-1]] == ["finish"]
        finishes = _lines(cli("events", "list", "--json", "--event", "finish", "--lab", "UW_BIOFAB").out)
        assert [line["event"] for line in finishes[:-1]] == ["finish"]
        assert cli("events", "list", "--json", "--lab", "nobody").out.count("\n") == 1


def test_events_watch_prints_live_entries_and_bookmarks_as_json_lines(cli: Cli, server: ServerThread) -> None:
    with JobsClient(server.address, api_key=CLIENT_KEY) as client:
        pipeline = client.register_pipeline("events", ["events@1"]).pipeline.uuid
        job = client.create_job(pipeline, lab="UW_BIOFAB")

        def later() -> None:
            time.sleep(0.5)
            client.send_event(job.job.uuid, "run", token=job.token)

        sender = threading.Thread(target=later)
        sender.start()
        watched = cli("events", "watch", "--json", "--for", "3")
        sender.join(timeout=30)
    lines = _lines(watched.out)
    entries = [line for line in lines if "event" in line]
    assert [(line["event"], line["seq"]) for line in entries] == [("create", 1), ("run", 2)]
    assert any("bookmark" in line for line in lines), "no bookmark in 3 s (every second in tests)"
    assert _cursor(watched.err) == lines[-1].get("bookmark", lines[-1].get("cursor"))
