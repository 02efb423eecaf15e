"""The seed's story, run as written against a live server (issue 3's "done when").

``tests/docs/seed.rst`` is a verbatim copy of ``seed/000_8271b23e1f122aa9.txt``. Each Python block of it
runs here with only these changes, each one asserted to still apply (so the test fails if the seed moves):

- the import line: ``datacatalog.pipelinejobs`` becomes ``pipelinejobs_client``;
- configuration: the seed's own ``config.yml`` and ``secrets.json`` blocks are written to the working
  directory with the registered pipeline's UUID, the live server's address as ``job_manager_id`` and the
  test's API key as ``_REACTOR_PIPELINES_AUTHN``; the deferred-update message gets the live job's uuid
  and token instead of the seed's examples;
- two typos the seed's Python would not even compile with: ``update('{key2': 'value2'})`` (a quote in the
  wrong place) and a missing comma in ``event_msg``.

``Reactor`` is a stand-in for the Reactors SDK object (settings from ./config.yml, ids, a message, and a
``send_message`` that plays the pipeline-jobs-manager by applying the event through the client library).
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import textwrap
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from pipelinejobs_client import CancelNotAllowed, JobNotFound, JobsClient, PipelineJob
from pipelinejobs_client.config import KEYS, secret_name
from tests.servers import ServerThread
from tests.support import CLIENT_KEY, ROOT

SEED = Path(__file__).resolve().parent / "seed.rst"
GUIDE = ROOT / "docs" / "client.md"
SEED_PIPELINE = "f0f417f2-ba8b-5ac4-b421-255b69553391"
SEED_JOB, SEED_TOKEN = "58fa9ec7-6c25-5525-94f3-e853335e2f17", "940a5adc78720505"
# Link UUIDs of the seed's lab, experiment and sample (docs/identity.md, "Links").
LINK_UUIDS = [
    "5b3b7a55-7aa8-569f-9b5c-b034654dba48",
    "c15c23b3-fa23-5179-8095-87e98095860f",
    "8d4b6f5e-b938-5f9a-a913-13db7ea5b3bd",
]
UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_BLOCK = re.compile(r"^\.\. code-block:: (\w+)\n\n((?:(?:[ ]+.*)?\n)+)", re.MULTILINE)


def blocks(language: str) -> list[str]:
    """The seed's code blocks in one language, dedented, in document order."""
    found = _BLOCK.findall(SEED.read_text())
    return [textwrap.dedent(body).strip() + "\n" for lang, body in found if lang == language]


def adapted(code: str, *replacements: tuple[str, str]) -> str:
    for old, new in replacements:
        assert old in code, f"the seed changed: {old!r} is gone"
        code = code.replace(old, new)
    return code


class Reactor:
    """Stand-in for the Reactors SDK's ``Reactor``: what a PipelineJob and the seed's snippets use of it."""

    sent: ClassVar[list[tuple[str, dict[str, Any]]]] = []  # what any instance sent, for assertions

    def __init__(self) -> None:
        self.settings = yaml.safe_load(Path("config.yml").read_text())  # as the SDK loads it
        self.uid, self.execid, self.nickname = "G46vjoAVzGkkq", "WmW0qDDYJ8Mxe", "solid-snake"
        self.context = {"message_dict": {"inputData": "agave://data-sd2e-community/r1bbq4mr76ngd/3"}}

    def send_message(self, actor_id: str, message: dict[str, Any]) -> None:
        # Abaco would deliver this to pipeline-jobs-manager; the HTTP shim's /v1/events will take that
        # role. Until then, do what the manager does: validate the PipelineJobEvent and apply it.
        if not {"uuid", "event", "token"} <= set(message) <= {"uuid", "event", "data", "token"}:
            raise ValueError(f"not a PipelineJobEvent: {sorted(message)}")
        Reactor.sent.append((actor_id, message))
        with PipelineJob.attach(self, message["uuid"], message["token"]) as job:
            job.event(message["event"], message.get("data"))


def isolate(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the caller's shell out: these names would override the files the test writes."""
    for key in KEYS:
        monkeypatch.delenv(secret_name(key), raising=False)


@pytest.fixture
def story(server: ServerThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A working directory holding the seed's config.yml and secrets.json, adapted to the live server."""
    isolate(monkeypatch)
    with JobsClient(server.address, api_key=CLIENT_KEY) as client:
        pipeline = client.register_pipeline("fcs-etl", ["fcs-etl@0.4.0u2"]).pipeline.uuid
    (config_yml,) = blocks("yaml")
    secrets_json = blocks("json")[0]
    (tmp_path / "config.yml").write_text(
        adapted(config_yml, (SEED_PIPELINE, pipeline), ("G56vjoAVzGkkq", server.address))
    )
    secrets = json.loads(secrets_json)
    secrets["_REACTOR_PIPELINES_AUTHN"] = CLIENT_KEY
    (tmp_path / "secrets.json").write_text(json.dumps(secrets))
    monkeypatch.chdir(tmp_path)
    Reactor.sent.clear()
    return {"Reactor": Reactor, "pipeline": pipeline, "address": server.address}


def run(namespace: dict[str, Any], code: str) -> tuple[list[str], list[str]]:
    """Run one seed block: what it printed, and what the seed says it prints (its ``>>> value`` lines)."""
    source = "\n".join(line for line in code.splitlines() if not line.startswith(">>>"))
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(source, str(SEED), "exec"), namespace)  # noqa: S102 - the seed's own code
    expected = [line.removeprefix(">>> ").strip("'") for line in code.splitlines() if line.startswith(">>>")]
    return printed.getvalue().splitlines(), expected


def expect(namespace: dict[str, Any], code: str, *shown: str) -> None:
    """Run a block and check it prints what the seed shows (``shown`` repeats it, for the reader)."""
    printed, expected = run(namespace, code)
    assert printed == expected == list(shown)


def stub() -> str:
    return adapted(
        blocks("python")[0], ("from datacatalog.pipelinejobs import", "from pipelinejobs_client import")
    )


PYCON = blocks("pycon")
PATH_BLOCK, SETUP, RUN, UPDATE, CHAIN, CANCEL, FAIL = PYCON


def test_the_seed_story_in_order(story: dict[str, Any]) -> None:
    ns = dict(story)
    run(ns, stub())
    (path,), (seed_path,) = run(ns, PATH_BLOCK)
    parts = re.split(f"{UUID}|20180913T162843Z", seed_path)  # keep the seed's path, but for its values
    shape = UUID.join(re.escape(part) for part in parts[:-1]) + r"\d{8}T\d{6}Z"
    assert re.fullmatch(shape, path), path  # the seed's shape, session "solid-snake" included
    assert path.split("/")[3:7] == [*LINK_UUIDS, story["pipeline"]]

    expect(ns, SETUP, "CREATED")
    expect(ns, RUN, "RUNNING")
    expect(ns, UPDATE)
    seed_history = json.loads(blocks("json")[1])["history"]
    history = ns["my_job"].history
    assert [next(iter(e)) for e in history] == ["CREATE", "RUN", "RUN", "RUN", "UPDATE"]
    assert history[0]["CREATE"]["data"] is seed_history[0]["CREATE"]["data"] is None
    assert history[1]["RUN"]["data"] is None
    assert history[-1]["UPDATE"]["data"] == seed_history[-1]["UPDATE"]["data"] == {"roadrunner": "meep-meep!"}
    for entry in history:
        (body,) = entry.values()
        assert set(body) == {"date", "data"}
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", body["date"])
    json.dumps({"history": history})  # the seed's document, one call away

    expect(ns, adapted(CHAIN, ("update('{key2': 'value2'})", "update({'key2': 'value2'})")), "RUNNING")
    # The job has run, so the seed's cancel is refused; the job is still there to fail.
    with pytest.raises(CancelNotAllowed):
        run(ns, CANCEL)
    expect(ns, FAIL, "FAILED")
    names = [next(iter(e)) for e in ns["my_job"].history]
    assert names == ["CREATE", "RUN", "RUN", "RUN", "UPDATE", "UPDATE", "RUN", "UPDATE", "FAIL"]


def test_the_seed_cancel_deletes_a_job_that_never_ran(story: dict[str, Any]) -> None:
    ns = dict(story)
    run(ns, stub())
    expect(ns, SETUP, "CREATED")
    uuid = ns["my_job"].uuid
    expect(ns, CANCEL)
    with JobsClient(story["address"], api_key=CLIENT_KEY) as client, pytest.raises(JobNotFound):
        client.get_job(uuid)


def test_the_seed_chain_on_a_fresh_job(story: dict[str, Any]) -> None:
    ns = dict(story)
    run(ns, stub())
    expect(ns, adapted(CHAIN, ("update('{key2': 'value2'})", "update({'key2': 'value2'})")), "RUNNING")
    assert ns["my_job"].history[1:] == [
        {"UPDATE": {"date": ns["my_job"].history[1]["UPDATE"]["date"], "data": {"key1": "value1"}}},
        {"RUN": {"date": ns["my_job"].history[2]["RUN"]["date"], "data": None}},
        {"UPDATE": {"date": ns["my_job"].history[3]["UPDATE"]["date"], "data": {"key2": "value2"}}},
    ]


def test_the_seed_update_from_another_reactor(story: dict[str, Any]) -> None:
    ns = dict(story)
    run(ns, stub())
    expect(ns, SETUP, "CREATED")
    expect(ns, RUN, "RUNNING")
    job: PipelineJob = ns["my_job"]
    other = adapted(
        blocks("python")[1],
        ("'data': {'key4': 'value4'}\n", "'data': {'key4': 'value4'},\n"),
        (SEED_JOB, job.uuid),
        (SEED_TOKEN, job.token),
    )
    run({"Reactor": Reactor}, other)
    assert Reactor.sent == [
        (
            "G56vjoAVzGkkq",
            {"uuid": job.uuid, "event": "update", "data": {"key4": "value4"}, "token": job.token},
        )
    ]
    assert job.history[-1]["UPDATE"]["data"] == {"key4": "value4"}


def test_the_seed_agave_notification(story: dict[str, Any]) -> None:
    ns = dict(story)
    run(ns, stub())
    expect(ns, SETUP, "CREATED")
    job: PipelineJob = ns["my_job"]
    seed_notification = json.loads(blocks("json")[-1])
    notification = job.agave_notification()
    assert set(notification) == set(seed_notification)
    assert (notification["event"], notification["persistent"]) == ("*", False)
    url = str(notification["url"])
    query = parse_qs(urlsplit(url).query)
    seed_query = parse_qs(urlsplit(seed_notification["url"]).query)
    assert set(query) == set(seed_query) == {"x-nonce", "token", "uuid", "status"}
    assert query["x-nonce"] == seed_query["x-nonce"]  # from secrets.json, as in the seed
    assert (query["uuid"], query["token"]) == ([job.uuid], [job.token])
    assert url.endswith("&status=${STATUS}")
    agave_job = json.loads(blocks("json")[2])
    agave_job["notifications"].append(notification)
    json.dumps(agave_job)
    # What the callback shim does with Agave's POST (the shim is tested on its own): the URL's uuid and
    # token are enough to move the job, with the executor's job JSON as the event's data.
    with JobsClient(story["address"]) as executor:
        for status, event in (("RUNNING", "run"), ("FINISHED", "finish")):
            executor.send_event(
                query["uuid"][0],
                event,
                token=query["token"][0],
                data=agave_job | {"status": status},
                source="callback",
            )
    assert job.status == "FINISHED"


# -- docs/client.md: the same story told for this library; every block runs, outputs are compared ---------

_FENCE = re.compile(r"^```(\w+)[ ]*([^\n]*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def matches(expected: str, printed: str) -> bool:
    """``…`` in the guide's output stands for any text (uuids, dates, generated names)."""
    pattern = ".*?".join(re.escape(part) for part in expected.split("…"))
    return re.fullmatch(pattern, printed, re.DOTALL) is not None


def test_the_guide_runs_as_written(
    server: ServerThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    isolate(monkeypatch)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".pipelinejobs").mkdir()
    (tmp_path / ".pipelinejobs" / "client.key").write_text(CLIENT_KEY + "\n")
    fences = [
        (lang, info.strip(), body.replace("127.0.0.1:50051", server.address))
        for lang, info, body in _FENCE.findall(GUIDE.read_text())
    ]
    namespace: dict[str, Any] = {}
    ran = 0
    for index, (lang, info, body) in enumerate(fences):
        if lang == "yaml" and info == "config.yml":
            pipeline = namespace["pipeline"].uuid  # registered by the guide's first block
            (tmp_path / info).write_text(adapted(body, ("<the pipeline uuid printed above>", pipeline)))
        elif lang == "json" and info == "secrets.json":
            key = ("<the contents of .pipelinejobs/client.key>", CLIENT_KEY)
            (tmp_path / info).write_text(adapted(body, key))
        elif lang == "python":
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed):
                exec(compile(body, f"{GUIDE}, block {index}", "exec"), namespace)  # noqa: S102 - the guide
            ran += 1
            following = fences[index + 1] if index + 1 < len(fences) else None
            if following is not None and following[0] == "text":
                assert matches(following[2], printed.getvalue()), (following[2], printed.getvalue())
    assert ran >= 8
    assert namespace["my_job"].status == "FAILED"
