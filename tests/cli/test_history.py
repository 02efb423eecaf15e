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
