"""``pipelinejobs jobs verify`` (cli/history.py): an intact history passes, an edited one fails with exit 1.

Commands run in-process through ``main(argv, environ=...)`` (fast; the environment is a dict, never the
real one), their ``--json`` output is parsed, and their exit codes and one-line errors are checked."""

from __future__ import annotations

import json
import re
from typing import Any

from pymongo.database import Database

from pipelinejobs_client.cli import EXIT_SERVICE
from tests.cli.helpers import Cli, create


def test_verify_passes_an_intact_history_and_fails_an_edited_one(
    cli: Cli, pipeline: str, db: Database[dict[str, Any]]
) -> None:
    created = create(cli, pipeline)
    uuid = created["job"]["uuid"]
    cli("jobs", "event", uuid, "run", "--token", created["token"], "--data", '{"a": 1}')
    assert cli("jobs", "verify", uuid, "--json").json() == {
        "uuid": uuid,
        "valid": True,
        "checked": 2,
        "first_bad_seq": 0,
        "reason": "",
    }
    assert re.search(r"^valid\s+yes$", cli("jobs", "verify", uuid).out, re.M)

    edited = db.job_events.update_one({"job_uuid": uuid, "seq": 2}, {"$set": {"data_json": '{"a":2}'}})
    assert edited.modified_count == 1
    broken = cli("jobs", "verify", uuid, "--json")
    assert broken.code == EXIT_SERVICE
    report = json.loads(broken.out)
    assert (report["valid"], report["first_bad_seq"]) == (False, 2)
    assert broken.error_line().startswith(f"error: HISTORY_INVALID: job {uuid}: entry 2 does not match")


def test_watch_prints_what_history_prints(cli: Cli, pipeline: str) -> None:
    created = create(cli, pipeline, "--data", '{"layout": "same"}')
    uuid, token = created["job"]["uuid"], created["token"]
    cli("jobs", "event", uuid, "run", "--token", token, "--data", '{"executor": "stampede2"}')
    cli("jobs", "event", uuid, "finish", "--token", token)
    history = cli("jobs", "history", uuid)
    watch = cli("jobs", "watch", uuid, "--until", "FINISHED")
    assert watch.code == 0, watch.err
    assert watch.out == history.out
    lines = history.out.splitlines()
    assert lines[0].split() == ["SEQ", "EVENT", "FROM", "TO", "TIME", "SOURCE", "DATA"]
    assert all(line == line.rstrip() for line in lines), "no trailing spaces"
    assert lines[2].split()[:4] == ["2", "run", "CREATED", "RUNNING"]
    # --json: the same objects, with their keys in the same order; the watch's are JSON lines.
    entries = json.loads(cli("jobs", "history", uuid, "--json").out)
    streamed = [
        json.loads(line)
        for line in cli("jobs", "watch", uuid, "--until", "FINISHED", "--json").out.splitlines()
    ]
    assert streamed == entries
    assert [list(entry) for entry in streamed] == [list(entry) for entry in entries]


def test_an_upper_case_uuid_is_read_as_lower_case(cli: Cli, pipeline: str) -> None:
    created = create(cli, pipeline.upper(), "--data", '{"case": "upper"}')
    uuid = created["job"]["uuid"]
    assert created["job"]["pipeline_uuid"] == pipeline
    assert cli("jobs", "show", uuid.upper(), "--json").json()["uuid"] == uuid
    assert cli("jobs", "history", f"  {uuid.upper()} ", "--json").json()[0]["event"] == "create"
    assert cli("pipelines", "show", pipeline.upper(), "--json").json()["uuid"] == pipeline
    listed = cli("jobs", "list", "--pipeline", pipeline.upper(), "--json").json()
    assert uuid in [job["uuid"] for job in listed]
