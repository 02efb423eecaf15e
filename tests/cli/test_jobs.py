"""``pipelinejobs jobs create|show|event|cancel`` (cli/jobs.py) against a live server: one job's life, its
token, events with idempotency keys, refusals and the history they leave.

Commands run in-process through ``main(argv, environ=...)`` (fast; the environment is a dict, never the
real one), their ``--json`` output is parsed, and their exit codes and one-line errors are checked."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from pipelinejobs_client import token_id
from pipelinejobs_client.cli import EXIT_SERVICE
from tests.cli.helpers import ISO_MS_UTC, LINKS, Cli, create
from tests.servers import ServerThread, test_settings
from tests.support import ADMIN_KEY, CLIENT_KEY

OTHER_CLIENT_KEY = "test-other-client-key-0123456789"


@pytest.fixture
def server(mongodb_uri: str, database_name: str) -> Iterator[ServerThread]:
    """The test's server, with a second client key: a job is created with one and asked for with the other."""
    settings = test_settings(mongodb_uri, database_name, client_keys=(CLIENT_KEY, OTHER_CLIENT_KEY))
    thread = ServerThread(settings).start()
    yield thread
    thread.stop()


def test_jobs_create_prints_the_token_once_and_show_has_the_identity(cli: Cli, pipeline: str) -> None:
    created = create(cli, pipeline, "--data", '{"n": 2, "inputs": ["a.fcs"]}', "--session", "proven-pig")
    job = created["job"]
    assert created["created"] is True
    assert len(created["token"]) >= 22
    assert ISO_MS_UTC.match(created["token_expire_time"])
    assert f"uuid={job['uuid']}" in created["callback_url"]
    assert created["callback_url"].endswith("status=${STATUS}")
    assert (job["state"], job["seq"], job["last_event"]) == ("CREATED", 1, "create")
    assert job["data"] == {"n": 2, "inputs": ["a.fcs"]}
    assert job["links"] == {"lab": ["UW_BIOFAB"], "experiment": ["Yeast-Gates"], "sample": [LINKS[-1]]}
    assert job["archive_path"].startswith("/products/v1/")
    assert "/proven-pig-" in job["archive_path"]

    shown = cli("jobs", "show", job["uuid"], "--json").json()
    assert shown == job
    assert {"uuid", "state", "seq", "archive_path"} <= shown.keys()

    again = cli("jobs", "create", "--pipeline", pipeline, *LINKS, "--data", '{"inputs": ["a.fcs"], "n": 2}')
    assert again.code == 0
    fields = dict(line.split(None, 1) for line in again.out.splitlines())
    assert fields["outcome"] == "the job existed: a fresh token for it"
    assert fields["uuid"] == job["uuid"]
    assert fields["token"] != created["token"]
    text = cli("jobs", "show", job["uuid"]).out
    assert re.search(rf"^archive_path\s+{re.escape(job['archive_path'])}$", text, re.M)
    assert re.search(r"^state\s+CREATED$", text, re.M)


def test_a_job_lives_through_events_and_its_history_exports(cli: Cli, pipeline: str) -> None:
    created = create(cli, pipeline)
    uuid, token = created["job"]["uuid"], created["token"]
    ran = cli("jobs", "event", uuid, "run", "--token", token, "--data", '{"key1": "value1"}', "--json").json()
    assert ran["replayed"] is False
    assert (ran["job"]["state"], ran["event"]["seq"], ran["event"]["from_state"]) == ("RUNNING", 2, "CREATED")
    # The token may come from the environment instead; event names in any case.
    updated = cli(
        "jobs",
        "event",
        uuid,
        "UPDATE",
        "--data",
        '{"roadrunner": "meep-meep!"}',
        PIPELINEJOBS_JOB_TOKEN=token,
    )
    assert updated.code == 0
    assert re.search(r"^transition\s+RUNNING -> RUNNING$", updated.out, re.M)

    history = cli("jobs", "history", uuid, "--json").json()
    assert [(e["seq"], e["event"], e["to_state"]) for e in history] == [
        (1, "create", "CREATED"),
        (2, "run", "RUNNING"),
        (3, "update", "RUNNING"),
    ]
    assert history[0]["from_state"] is None
    assert history[0]["prev_hash"] == ""
    assert history[2]["prev_hash"] == history[1]["hash"]
    assert history[1]["source"] == "grpc"
    assert cli("jobs", "history", uuid, "--format", "json").json() == history

    seed = cli("jobs", "history", uuid, "--format", "seed").json()
    assert [list(entry) for entry in seed["history"]] == [["CREATE"], ["RUN"], ["UPDATE"]]
    assert seed["history"][0]["CREATE"]["data"] is None
    assert seed["history"][1]["RUN"]["data"] == {"key1": "value1"}
    assert seed["history"][2]["UPDATE"] == {
        "date": history[2]["timestamp"],
        "data": {"roadrunner": "meep-meep!"},
    }
    assert all(ISO_MS_UTC.match(next(iter(entry.values()))["date"]) for entry in seed["history"])

    table = cli("jobs", "history", uuid).out.splitlines()
    assert table[0].split() == ["SEQ", "EVENT", "FROM", "TO", "TIME", "SOURCE", "DATA"]
    assert table[3].split()[:4] == ["3", "update", "RUNNING", "RUNNING"]
    assert table[3].endswith('{"roadrunner":"meep-meep!"}')

    failed = cli("jobs", "event", uuid, "fail", "--token", token, "--json").json()
    assert failed["job"]["state"] == "FAILED"
    assert cli("jobs", "show", uuid, "--json").json()["seq"] == 4


def test_an_idempotency_key_replays_and_a_reused_one_conflicts(cli: Cli, pipeline: str) -> None:
    created = create(cli, pipeline)
    argv = (
        "jobs",
        "event",
        created["job"]["uuid"],
        "run",
        "--token",
        created["token"],
        "--idempotency-key",
        "k1",
    )
    first = cli(*argv, "--data", '{"a": 1}', "--json").json()
    again = cli(*argv, "--data", '{"a": 1}', "--json").json()
    assert (first["replayed"], again["replayed"]) == (False, True)
    assert again["event"] == first["event"]
    conflict = cli(*argv, "--data", '{"a": 2}')
    assert conflict.code == EXIT_SERVICE
    assert conflict.error_line().startswith("error: IDEMPOTENCY_CONFLICT: ")


def test_a_refused_event_is_exit_1_and_listed_as_rejected(cli: Cli, pipeline: str) -> None:
    created = create(cli, pipeline)
    uuid = created["job"]["uuid"]
    refused = cli("jobs", "event", uuid, "validate", "--token", created["token"])
    assert refused.code == EXIT_SERVICE
    line = refused.error_line()
    assert line.startswith("error: INVALID_TRANSITION: ")
    assert "'validate'" in line
    assert "CREATED" in line

    records = cli("jobs", "rejected", uuid, "--json").json()
    assert [(r["event"], r["state"], r["reason"]) for r in records] == [
        ("validate", "CREATED", "INVALID_TRANSITION")
    ]
    assert ISO_MS_UTC.match(records[0]["timestamp"])
    table = cli("jobs", "rejected", uuid).out.splitlines()
    assert table[0].split()[:4] == ["TIME", "JOB", "EVENT", "STATE"]
    assert uuid in table[1]

    every_job = cli("jobs", "rejected")
    assert every_job.code == EXIT_SERVICE
    assert every_job.error_line().startswith("error: ADMIN_REQUIRED: ")
    assert cli("jobs", "rejected", "--json", key=ADMIN_KEY).json() == records


def test_cancel_deletes_a_job_that_never_ran_and_refuses_one_that_did(cli: Cli, pipeline: str) -> None:
    waiting = create(cli, pipeline, "--data", '{"n": 1}')
    uuid = waiting["job"]["uuid"]
    assert cli("jobs", "cancel", uuid, "--token", waiting["token"], "--json").json() == {
        "uuid": uuid,
        "cancelled": True,
    }
    gone = cli("jobs", "show", uuid)
    assert gone.code == EXIT_SERVICE
    assert gone.error_line() == f"error: JOB_NOT_FOUND: job {uuid} not found"

    running = create(cli, pipeline, "--data", '{"n": 2}')
    assert (
        cli("jobs", "event", running["job"]["uuid"], "run", PIPELINEJOBS_JOB_TOKEN=running["token"]).code == 0
    )
    refused = cli("jobs", "cancel", running["job"]["uuid"], PIPELINEJOBS_JOB_TOKEN=running["token"])
    assert refused.code == EXIT_SERVICE
    assert refused.error_line().startswith("error: CANCEL_NOT_ALLOWED: ")


def test_an_admin_key_sends_reset_and_ready_without_a_token(cli: Cli, pipeline: str) -> None:
    uuid = create(cli, pipeline)["job"]["uuid"]
    without = cli("jobs", "event", uuid, "reset")
    assert without.code == EXIT_SERVICE
    without.error_line()
    assert cli("jobs", "event", uuid, "reset", "--json", key=ADMIN_KEY).json()["job"]["state"] == "RESET"
    ready = cli("jobs", "event", uuid, "ready", "--json", key=ADMIN_KEY).json()
    assert (ready["job"]["state"], ready["event"]["source"]) == ("CREATED", "admin")


def test_jobs_create_of_a_job_another_key_created_says_there_is_no_token(cli: Cli, pipeline: str) -> None:
    created = create(cli, pipeline)
    assert created["token_withheld"] is False
    assert created["token_id"] == token_id(created["token"])

    command = ("jobs", "create", "--pipeline", pipeline, *LINKS)
    withheld = cli(*command, "--json", key=OTHER_CLIENT_KEY)
    answer = withheld.json()
    assert answer["job"]["uuid"] == created["job"]["uuid"]
    assert answer["token_withheld"] is True
    assert (answer["token"], answer["token_id"], answer["callback_url"]) == ("", "", "")
    assert answer["token_expire_time"] is None
    assert withheld.err.startswith("note: the job exists and was created with another API key")

    text = cli(*command, key=OTHER_CLIENT_KEY)
    fields = dict(line.split(None, 1) for line in text.out.splitlines())
    assert fields["outcome"] == "the job existed; no token: it was created with another API key"
    assert (fields["token"], fields["callback_url"]) == ("-", "-")


def test_jobs_revoke_tokens_by_id_by_token_or_all_needs_an_admin_key(cli: Cli, pipeline: str) -> None:
    first = create(cli, pipeline)
    uuid = first["job"]["uuid"]
    second, third = create(cli, pipeline), create(cli, pipeline)

    refused = cli("jobs", "revoke-tokens", uuid, "--all")
    assert refused.code == 1
    assert refused.error_line().startswith("error: ADMIN_REQUIRED:")
    usage = cli("jobs", "revoke-tokens", uuid, key=ADMIN_KEY)
    assert usage.code == 2, "one of --all, --id and --token is required"

    by_id = cli("jobs", "revoke-tokens", uuid, "--id", second["token_id"], "--json", key=ADMIN_KEY).json()
    assert by_id == {"uuid": uuid, "revoked": 1}
    # The token itself names it too; only its id leaves the machine.
    by_token = cli("jobs", "revoke-tokens", uuid, "--token", third["token"], key=ADMIN_KEY)
    assert by_token.out == f"revoked 1 token of {uuid}\n"
    gone = cli("jobs", "event", uuid, "run", "--token", third["token"])
    assert gone.error_line().startswith("error: INVALID_TOKEN:")
    assert cli("jobs", "event", uuid, "run", "--token", first["token"]).code == 0

    everything = cli("jobs", "revoke-tokens", uuid, "--all", key=ADMIN_KEY)
    assert everything.out == f"revoked 1 token of {uuid}\n"
    assert cli("jobs", "event", uuid, "update", "--token", first["token"]).code == EXIT_SERVICE
