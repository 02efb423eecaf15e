"""The operator commands of ``pipelinejobs`` (pipelines, jobs, fsm) against a live server.

Commands run in-process through ``main(argv, environ=...)`` (fast; the environment is a dict, never the
real one), their ``--json`` output is parsed, and their exit codes and one-line errors are checked. One
test runs the installed console script end to end in a subprocess.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from pymongo.database import Database

from pipelinejobs_client import cli as cli_package
from pipelinejobs_client.cli import EXIT_SERVICE, EXIT_UNAVAILABLE, EXIT_USAGE, main
from pipelinejobs_client.cli.common import option
from pipelinejobs_server.settings import Limits
from tests.servers import ServerThread, test_settings
from tests.support import ADMIN_KEY, CLIENT_KEY, ROOT

ISO_MS_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
LINKS = ("--lab", "UW_BIOFAB", "--experiment", "Yeast-Gates", "--sample", "sample.uw_biofab.133737/A2")
UNKNOWN_JOB = "00000000-0000-4000-8000-000000000000"


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        assert self.code == 0, self.err
        return json.loads(self.out)

    def error_line(self) -> str:
        """The failure's stderr, which must be exactly one ``error: ...`` line."""
        lines = self.err.splitlines()
        assert len(lines) == 1, self.err
        assert lines[0].startswith("error: "), self.err
        return lines[0]


class Cli:
    """Runs ``pipelinejobs`` in-process and keeps everything it printed, for the secrets check."""

    def __init__(self, capsys: pytest.CaptureFixture[str], address: str) -> None:
        self._capsys = capsys
        self.address = address
        self.runs: list[tuple[tuple[str, ...], Run]] = []

    def __call__(self, *argv: str, key: str | None = CLIENT_KEY, **environ: str) -> Run:
        env = {"PIPELINEJOBS_SERVER": self.address, **environ}
        if key:
            env["PIPELINEJOBS_API_KEY"] = key
        self._capsys.readouterr()
        code = main(list(argv), environ=env)
        captured = self._capsys.readouterr()
        run = Run(code, captured.out, captured.err)
        self.runs.append((argv, run))
        return run


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], server: ServerThread) -> Cli:
    return Cli(capsys, server.address)


@pytest.fixture
def offline(capsys: pytest.CaptureFixture[str], closed_port: int) -> Cli:
    """Pointed at a port nobody listens on: a command that sent anything would exit 3, not 2."""
    return Cli(capsys, f"127.0.0.1:{closed_port}")


@pytest.fixture
def pipeline(cli: Cli) -> str:
    registered = cli("pipelines", "register", "--name", "fcs-etl", "--component", "fcs-etl@0.4.0", "--json")
    return str(registered.json()["pipeline"]["uuid"])


def create(cli: Cli, pipeline: str, *extra: str) -> dict[str, Any]:
    created: dict[str, Any] = cli("jobs", "create", "--pipeline", pipeline, *LINKS, *extra, "--json").json()
    return created


# -- pipelines ---------------------------------------------------------------------------------------------


def test_pipelines_register_list_and_show(cli: Cli) -> None:
    argv = ["pipelines", "register", "--name", "fcs-etl", "--description", "FCS to CSV"]
    argv += ["--component", "fcs-etl@0.4.0u2", "--component", "tidy"]
    argv += ["--option", "threads=4", "--option", "mode=fast", "--option", 'levels=[1, "b"]']
    first = cli(*argv, "--json").json()
    again = cli(*argv, "--json").json()
    assert (first["created"], again["created"]) == (True, False)
    pipeline = first["pipeline"]
    assert again["pipeline"] == pipeline
    assert pipeline["options"] == {"threads": 4, "mode": "fast", "levels": [1, "b"]}
    assert {part["id"]: part["version"] for part in pipeline["components"]} == {
        "fcs-etl": "0.4.0u2",
        "tidy": "",
    }
    assert ISO_MS_UTC.match(pipeline["create_time"])

    assert cli("pipelines", "show", pipeline["uuid"], "--json").json() == pipeline
    assert cli("pipelines", "list", "--json").json() == [pipeline]

    table = cli("pipelines", "list")
    assert table.code == 0
    header, row = table.out.splitlines()
    assert header.split() == ["UUID", "NAME", "CREATED", "COMPONENTS"]
    assert row.startswith(pipeline["uuid"])
    assert row.endswith("fcs-etl@0.4.0u2, tidy")
    shown = dict(line.split(None, 1) for line in cli("pipelines", "show", pipeline["uuid"]).out.splitlines())
    assert json.loads(shown["options"]) == pipeline["options"]
    assert shown["components"] == "fcs-etl@0.4.0u2, tidy"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("threads=4", ("threads", 4)),
        ("ratio=0.5", ("ratio", 0.5)),
        ("debug=true", ("debug", True)),
        ("mode=fast", ("mode", "fast")),
        ('version="4"', ("version", "4")),
        ("empty=", ("empty", "")),
        ("url=a=b", ("url", "a=b")),
        ('params={"a": 1}', ("params", {"a": 1})),
    ],
)
def test_option_values_are_json_when_they_parse(text: str, expected: tuple[str, Any]) -> None:
    assert option(text) == expected


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(("pipelines", "register", "--name", "x"), id="no component"),
        pytest.param(("pipelines", "register", "--name", "x", "--component", "@1"), id="no component id"),
        pytest.param(
            ("pipelines", "register", "--name", "x", "--component", "a", "--option", "k"), id="no ="
        ),
        pytest.param(
            (
                "pipelines",
                "register",
                "--name",
                "x",
                "--component",
                "a",
                "--option",
                "k=1",
                "--option",
                "k=2",
            ),
            id="option twice",
        ),
        pytest.param(("jobs", "create", "--pipeline", "p", "--data", "{not json"), id="data not json"),
        pytest.param(("jobs", "create", "--pipeline", "p", "--data", "[1]"), id="data not an object"),
        pytest.param(("jobs", "event", UNKNOWN_JOB, "explode"), id="unknown event"),
        pytest.param(("jobs", "event", UNKNOWN_JOB, "unspecified"), id="zero event"),
        pytest.param(("jobs", "history", UNKNOWN_JOB, "--format", "xml"), id="unknown format"),
        pytest.param(("jobs", "history", UNKNOWN_JOB, "--format", "seed", "--json"), id="two formats"),
        pytest.param(("jobs", "show", UNKNOWN_JOB, "--timeout", "0"), id="zero timeout"),
        pytest.param(("jobs", "show", UNKNOWN_JOB, "--api-key", "a", "--api-key-file", "k"), id="two keys"),
        pytest.param(("jobs", "show", UNKNOWN_JOB, "--api-key-file", "/nonexistent/key"), id="no key file"),
        pytest.param(("fsm", "--json", "--mermaid"), id="two shapes"),
        pytest.param(("jobs", "list", "--state", "SLEEPING"), id="unknown state"),
        pytest.param(("jobs", "list", "--created-after", "yesterday"), id="not a time"),
        pytest.param(("jobs", "list", "--limit", "-1"), id="negative limit"),
        pytest.param(("jobs", "event", UNKNOWN_JOB, "run", "--token"), id="token without value"),
        pytest.param(("jobs",), id="no action"),
        pytest.param(("jobz", "list"), id="unknown command"),
        pytest.param((), id="nothing"),
    ],
)
def test_usage_errors_exit_2_with_one_line(offline: Cli, argv: tuple[str, ...]) -> None:
    run = offline(*argv)
    assert run.code == EXIT_USAGE
    assert run.out == ""
    run.error_line()


@pytest.mark.parametrize("option", ["--token", "--api-key", "--idempotency-key"])
def test_a_secret_may_begin_with_a_dash(offline: Cli, option: str) -> None:
    # Tokens and keys are URL-safe base64, so one in 64 begins with "-": it must not read as an option.
    run = offline("jobs", "event", UNKNOWN_JOB, "run", option, "-Xy_secret")
    assert run.code == EXIT_UNAVAILABLE, run.err
    assert "-Xy_secret" not in run.err


# -- jobs --------------------------------------------------------------------------------------------------


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


def test_jobs_list_filters_orders_and_limits(cli: Cli, pipeline: str) -> None:
    other = cli("pipelines", "register", "--name", "other", "--component", "other", "--json").json()
    jobs = [
        create(cli, pipeline, "--sample", "s1", "--data", '{"n": 1}'),
        create(cli, pipeline, "--sample", "s2", "--data", '{"n": 2}'),
        create(cli, other["pipeline"]["uuid"], "--sample", "s3"),
    ]
    uuids = [created["job"]["uuid"] for created in jobs]
    cli("jobs", "event", uuids[1], "run", "--token", jobs[1]["token"])

    newest_first = cli("jobs", "list", "--json").json()
    assert [job["uuid"] for job in newest_first] == uuids[::-1]
    assert newest_first[1] == cli("jobs", "show", uuids[1], "--json").json()
    assert [job["uuid"] for job in cli("jobs", "list", "--order", "+created", "--json").json()] == uuids
    assert [job["uuid"] for job in cli("jobs", "list", "--state", "running", "--json").json()] == [uuids[1]]
    by_state = cli("jobs", "list", "--state", "RUNNING", "--state", "CREATED", "--json").json()
    assert len(by_state) == 3
    by_sample = cli("jobs", "list", "--sample", "s1", "--sample", "s3", "--json").json()
    assert {job["uuid"] for job in by_sample} == {uuids[0], uuids[2]}
    by_pipeline = cli("jobs", "list", "--pipeline", pipeline, "--state", "CREATED", "--json").json()
    assert [job["uuid"] for job in by_pipeline] == [uuids[0]]
    assert cli("jobs", "list", "--created-after", "2999-01-01T00:00:00Z", "--json").json() == []
    assert len(cli("jobs", "list", "--created-before", "2999-01-01", "--json").json()) == 3

    cut = cli("jobs", "list", "--limit", "2", "--json")
    assert [job["uuid"] for job in cut.json()] == uuids[:0:-1]
    assert cut.err.startswith("note: more jobs match")
    assert cli("jobs", "list", "--limit", "3", "--json").err == ""
    assert len(cli("jobs", "list", "--limit", "0", "--json").json()) == 3

    table = cli("jobs", "list", "--state", "RUNNING").out.splitlines()
    assert table[0].split() == ["UUID", "STATE", "SEQ", "UPDATED", "PIPELINE", "SAMPLE"]
    assert table[1].split()[:3] == [uuids[1], "RUNNING", "2"]
    assert table[1].endswith("s2, sample.uw_biofab.133737/A2")


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


@pytest.fixture
def small_pages(mongodb_uri: str, database_name: str) -> Iterator[ServerThread]:
    settings = test_settings(mongodb_uri, database_name)
    thread = ServerThread(
        replace(settings, limits=replace(Limits(), default_page_size=2, max_page_size=2))
    ).start()
    yield thread
    thread.stop()


def test_listings_follow_every_page(capsys: pytest.CaptureFixture[str], small_pages: ServerThread) -> None:
    cli = Cli(capsys, small_pages.address)
    names = [f"p{index}" for index in range(5)]
    for name in names:
        cli("pipelines", "register", "--name", name, "--component", name)
    assert [p["name"] for p in cli("pipelines", "list", "--json").json()] == names

    created = create(cli, cli("pipelines", "list", "--json").json()[0]["uuid"])
    uuid, token = created["job"]["uuid"], created["token"]
    for index in range(4):
        cli("jobs", "event", uuid, "update", "--token", token, "--data", json.dumps({"i": index}))
        cli("jobs", "event", uuid, "finish", "--token", token)
    assert [e["seq"] for e in cli("jobs", "history", uuid, "--json").json()] == [1, 2, 3, 4, 5]
    assert len(cli("jobs", "history", uuid, "--format", "seed").json()["history"]) == 5
    assert len(cli("jobs", "rejected", uuid, "--json").json()) == 4

    pipeline = cli("pipelines", "list", "--json").json()[1]["uuid"]
    others = [create(cli, pipeline, "--data", json.dumps({"n": n}))["job"]["uuid"] for n in range(4)]
    assert [job["uuid"] for job in cli("jobs", "list", "--limit", "0", "--json").json()] == [
        *others[::-1],
        uuid,
    ]
    assert len(cli("jobs", "list", "--limit", "3", "--json").json()) == 3


# -- fsm ---------------------------------------------------------------------------------------------------


def test_fsm_needs_no_key_and_matches_the_readme(cli: Cli) -> None:
    machine = cli("fsm", "--json", key=None).json()
    assert machine["initial_state"] == "CREATED"
    assert len(machine["states"]) == 11
    assert len(machine["events"]) == 15
    cells = {(cell["event"], cell["from"]): cell for cell in machine["transitions"]}
    assert cells[("create", None)]["to"] == "CREATED"
    assert cells[("run", "CREATED")] == {
        "event": "run",
        "from": "CREATED",
        "to": "RUNNING",
        "permission": "job_token",
    }
    assert {state for event, state in cells if event == "reset"} == set(machine["states"])
    assert cells[("ready", "RESET")]["permission"] == "admin"

    readme = (ROOT / "README.md").read_text()
    diagram = re.search(r"<!-- fsm:start.*?```mermaid\n(.*?)```", readme, re.S)
    assert diagram is not None
    assert cli("fsm", "--mermaid", key=None).out == diagram.group(1)

    rows = {line.split()[0]: line for line in cli("fsm", key=None).out.splitlines()[1:]}
    assert list(rows) == machine["events"]
    assert "= (unchanged, recorded)" in rows["update"]
    assert "any state" in rows["reset"]
    assert "(job creation only)" in rows["create"]
    assert "admin key only" in rows["ready"]


# -- errors, credentials, secrets --------------------------------------------------------------------------


def test_service_errors_are_exit_1_and_one_line(cli: Cli) -> None:
    missing = cli("jobs", "show", UNKNOWN_JOB)
    assert missing.code == EXIT_SERVICE
    assert missing.error_line() == f"error: JOB_NOT_FOUND: job {UNKNOWN_JOB} not found"
    assert cli("jobs", "show", "not-a-uuid").error_line().startswith("error: INVALID_ARGUMENT: ")
    assert cli("jobs", "show", UNKNOWN_JOB, key=None).error_line().startswith("error: API_KEY_REQUIRED: ")
    assert cli("jobs", "show", UNKNOWN_JOB, key="wrong").error_line().startswith("error: INVALID_API_KEY: ")
    assert cli("pipelines", "show", UNKNOWN_JOB).error_line().startswith("error: PIPELINE_NOT_FOUND: ")


def test_an_unreachable_server_is_exit_3(offline: Cli) -> None:
    run = offline("fsm", "--timeout", "2")
    address = offline.address
    assert run.code == EXIT_UNAVAILABLE
    line = run.error_line()
    assert line.startswith("error: UNAVAILABLE: ")
    assert line.endswith(f"(server {address})")


def test_flags_win_over_the_environment(cli: Cli, tmp_path: Path, closed_port: int) -> None:
    key_file = tmp_path / "admin.key"
    key_file.write_text(ADMIN_KEY + "\n")
    dead = f"127.0.0.1:{closed_port}"
    run = cli(
        "jobs",
        "rejected",
        "--json",
        "--server",
        cli.address,
        "--api-key-file",
        str(key_file),
        PIPELINEJOBS_SERVER=dead,
    )
    assert run.json() == []
    assert cli("jobs", "rejected", "--api-key", ADMIN_KEY, "--json", key="wrong").json() == []


def test_no_secret_is_printed_except_the_token_by_jobs_create(cli: Cli, pipeline: str) -> None:
    created = create(cli, pipeline)
    uuid, token = created["job"]["uuid"], created["token"]
    keyed = ("--api-key", ADMIN_KEY)
    cli("jobs", "create", "--pipeline", pipeline, *LINKS)  # a second, fresh token, in table form
    cli("jobs", "event", uuid, "run", "--token", token, "--data", '{"a": 1}')
    cli("jobs", "event", uuid, "run", "--token", token, "--json")
    cli("jobs", "event", uuid, "run", "--token", token + "x")  # refused: the error must not echo it
    cli("jobs", "event", uuid, "validate", "--token", token)
    cli("jobs", "cancel", uuid, "--token", token)
    for command in ("show", "history", "verify", "rejected"):
        cli("jobs", command, uuid, *keyed)
        cli("jobs", command, uuid, "--json", *keyed)
    cli("jobs", "history", uuid, "--format", "seed", *keyed)
    cli("jobs", "rejected", *keyed)
    cli("pipelines", "list", *keyed)
    cli("fsm", *keyed)
    cli("jobs", "show", UNKNOWN_JOB, "--api-key", "not-" + CLIENT_KEY)
    creations = [run.out for argv, run in cli.runs if argv[:2] == ("jobs", "create")]
    assert token in creations[0], "jobs create shows the token: the caller needs it"
    secrets = {token, CLIENT_KEY, ADMIN_KEY}
    for argv, run in cli.runs:
        printed = run.out + run.err
        leaked = {secret for secret in secrets if secret in printed}
        if argv[:2] == ("jobs", "create"):
            leaked -= {secret for secret in leaked if secret not in (CLIENT_KEY, ADMIN_KEY)}
        assert not leaked, f"{argv} printed a secret"


# -- the program as a whole --------------------------------------------------------------------------------


def test_help_lists_client_and_server_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"], environ={}) == 0
    listed = capsys.readouterr().out
    for command in ("pipelines", "jobs", "fsm", "up", "serve", "health"):
        assert re.search(rf"^\s+{command}\s", listed, re.M), command
    assert main(["jobs", "event", "--help"], environ={}) == 0
    assert "PIPELINEJOBS_JOB_TOKEN" in capsys.readouterr().out


def test_server_commands_are_handed_to_the_server(
    capsys: pytest.CaptureFixture[str], server: ServerThread
) -> None:
    assert main(["health", "--server", server.address], environ={}) == 0
    assert "SERVING" in capsys.readouterr().out


def test_without_the_server_extra_server_commands_say_what_to_install(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli_package, "_server_main", lambda: (None, "No module named 'pymongo'"))
    assert main(["up"], environ={}) == EXIT_USAGE
    line = Run(EXIT_USAGE, *capsys.readouterr()).error_line()
    assert "pip install 'pipelinejobs[server,embedded]'" in line
    assert main(["--help"], environ={}) == 0
    assert re.search(r"^\s+health\s", capsys.readouterr().out, re.M)


def test_client_commands_never_import_the_server(server: ServerThread) -> None:
    # A client-only install has no pipelinejobs_server: make importing it fail, then run a command.
    program = (
        "import sys; sys.modules['pipelinejobs_server'] = None\n"
        "from pipelinejobs_client.cli import main\n"
        f"raise SystemExit(main(['fsm', '--json', '--server', {server.address!r}], environ={{}}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=False, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["initial_state"] == "CREATED"


def test_the_installed_console_script_end_to_end(server: ServerThread, closed_port: int) -> None:
    script = Path(sys.executable).with_name("pipelinejobs")
    assert script.exists(), f"no console script beside {sys.executable}: install the project (make install)"
    env = {key: value for key, value in os.environ.items() if not key.startswith("PIPELINEJOBS_")}
    env.update(PIPELINEJOBS_SERVER=server.address, PIPELINEJOBS_API_KEY=CLIENT_KEY)

    def run(*argv: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(script), *argv],
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    registered = run("pipelines", "register", "--name", "fcs-etl", "--component", "fcs-etl@0.4.0", "--json")
    assert registered.returncode == 0, registered.stderr
    pipeline = json.loads(registered.stdout)["pipeline"]["uuid"]
    created = run("jobs", "create", "--pipeline", pipeline, *LINKS, "--json")
    job = json.loads(created.stdout)
    uuid = job["job"]["uuid"]
    ran = run("jobs", "event", uuid, "run", PIPELINEJOBS_JOB_TOKEN=job["token"])
    assert ran.returncode == 0, ran.stderr
    assert re.search(r"^state\s+RUNNING$", ran.stdout, re.M)
    seed = json.loads(run("jobs", "history", uuid, "--format", "seed").stdout)
    assert [list(entry) for entry in seed["history"]] == [["CREATE"], ["RUN"]]
    refused = run("jobs", "cancel", uuid, PIPELINEJOBS_JOB_TOKEN=job["token"])
    assert refused.returncode == EXIT_SERVICE
    assert refused.stderr.startswith("error: CANCEL_NOT_ALLOWED: ")
    assert refused.stdout == ""
    assert run("jobs", "frobnicate").returncode == EXIT_USAGE
    assert run("fsm", "--server", f"127.0.0.1:{closed_port}").returncode == EXIT_UNAVAILABLE
