"""``pipelinejobs jobs list`` (cli/listing.py): filters, orders and limits; and every listing command
follows every page of a server with two-item pages.

Commands run in-process through ``main(argv, environ=...)`` (fast; the environment is a dict, never the
real one), their ``--json`` output is parsed, and their exit codes and one-line errors are checked."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace

import pytest

from pipelinejobs_server.settings import Limits
from tests.cli.helpers import Cli, create
from tests.servers import ServerThread, test_settings


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
    # Pipelines by name, as the dashboard shows them, with the uuid's start to tell namesakes apart.
    assert f"  fcs-etl ({pipeline[:8]})  " in table[1]
    by_name = cli("jobs", "list", "--sample", "s3").out.splitlines()
    assert f"  other ({other['pipeline']['uuid'][:8]})  " in by_name[1]


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
