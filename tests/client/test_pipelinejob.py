"""PipelineJob against a real server: creation, every event method, chaining, cancel, attach, errors."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest

from pipelinejobs_client import (
    AdminRequired,
    CancelNotAllowed,
    ClientConfig,
    ConfigurationError,
    InvalidArgument,
    InvalidToken,
    InvalidTransition,
    JobNotFound,
    JobsClient,
    PipelineJob,
    TokenRequired,
    TokenWithheld,
    load_config,
    token_id,
)
from tests.servers import ServerThread, test_settings
from tests.support import ADMIN_KEY, CLIENT_KEY

LINKS = ("UW_BIOFAB", "Yeast-Gates", "sample.uw_biofab.133737/A2")
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
DATE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture
def config(server: ServerThread, client: JobsClient) -> ClientConfig:
    pipeline = client.register_pipeline("fcs-etl", ["fcs-etl@0.4.0u2"]).pipeline.uuid
    return ClientConfig(server=server.address, api_key=CLIENT_KEY, pipeline_uuid=pipeline)


def reactor(**changes: object) -> SimpleNamespace:
    fields: dict[str, object] = {
        "uid": "G46vjoAVzGkkq",
        "execid": "WmW0qDDYJ8Mxe",
        "nickname": "solid-snake",
        "context": {"message_dict": {"inputs": ["agave://data/r1bbq4mr76ngd/3"]}},
    }
    fields.update(changes)
    return SimpleNamespace(**fields)


def names(job: PipelineJob) -> list[str]:
    return [next(iter(entry)) for entry in job.history]


def test_constructing_creates_the_job_with_everything_the_seed_prints(config: ClientConfig) -> None:
    with PipelineJob(reactor(), *LINKS, config=config) as job:
        assert re.fullmatch(UUID, job.uuid)
        assert re.fullmatch(rf"/products/v1/({UUID}/){{4}}solid-snake-\d{{8}}T\d{{6}}Z", job.path)
        assert job.path.split("/")[6] == config.pipeline_uuid
        assert len(job.token) >= 32
        assert str(job.callback).endswith("&status=${STATUS}")
        assert job.data == {"inputs": ["agave://data/r1bbq4mr76ngd/3"]}  # the reactor's message
        assert (job.record.agent, job.record.task, job.record.session) == (
            "G46vjoAVzGkkq",
            "WmW0qDDYJ8Mxe",
            "solid-snake",
        )
        assert job.status == "CREATED"
        assert names(job) == ["CREATE"]


def test_identity_follows_pipeline_links_and_data(config: ClientConfig) -> None:
    first = PipelineJob(None, *LINKS, {"n": 1}, config=config)
    again = PipelineJob(reactor(nickname="other-name"), *LINKS, data={"n": 1.0}, config=config)
    other = PipelineJob(None, *LINKS, {"n": 2}, config=config)
    assert (first.uuid, first.path) == (again.uuid, again.path)  # the path is fixed at creation
    assert other.uuid != first.uuid
    assert first.data == {"n": 1}
    for job in (first, again, other):
        job.close()


def test_setup_keeps_the_job_and_records_its_data_after_create(config: ClientConfig) -> None:
    job = PipelineJob(reactor(), *LINKS, config=config)
    uuid, path, first_token = job.uuid, job.path, job.token
    assert job.setup() is job
    assert (job.uuid, job.path, job.status) == (uuid, path, "CREATED")
    assert job.token != first_token  # a fresh token; the first one stays valid (ADR 002)
    job.setup(data={"key1": "value1"})
    (update,) = job.history[1].values()
    assert names(job) == ["CREATE", "UPDATE"]
    assert update["data"] == {"key1": "value1"}
    PipelineJob.attach(None, uuid, first_token, config=config).run()
    assert job.status == "RUNNING"


def test_chained_events_and_history_in_the_seed_shape(config: ClientConfig) -> None:
    job = PipelineJob(reactor(), *LINKS, config=config)
    assert job.setup().run().run({"key1": "value1"}).run(data={"key1": "value1"}) is job
    job.update({"roadrunner": "meep-meep!"}).resource({"cpus": 4})
    assert job.status == "RUNNING"
    history = job.history
    assert names(job) == ["CREATE", "RUN", "RUN", "RUN", "UPDATE", "RESOURCE"]
    assert (history[0]["CREATE"]["data"], history[1]["RUN"]["data"]) == (None, None)
    assert history[2]["RUN"]["data"] == {"key1": "value1"}
    assert history[4]["UPDATE"]["data"] == {"roadrunner": "meep-meep!"}
    assert history[5]["RESOURCE"]["data"] == {"cpus": 4}  # an int again, not 4.0
    dates = [next(iter(entry.values()))["date"] for entry in history]
    assert all(DATE.match(date) for date in dates)
    assert dates == sorted(dates)


def test_every_event_carries_an_idempotency_key(config: ClientConfig, client: JobsClient) -> None:
    job = PipelineJob(None, *LINKS, config=config).run().update({"a": 1}).fail()
    keys = [event.idempotency_key for event in client.iter_job_events(job.uuid)]
    assert keys[0] == ""  # the create entry is written by the service itself
    assert len(set(keys[1:]) - {""}) == 3


@pytest.mark.parametrize(
    ("steps", "final"),
    [
        (["run", "finish", "index", "indexed", "validate", "validated", "finalize", "retire"], "RETIRED"),
        (["run", "finish", "validate", "reject"], "REJECTED"),
        (["run", "finish", "validate", "update", "fail", "retire"], "RETIRED"),
    ],
    ids=["happy-path", "rejected", "failed-in-validation"],
)
def test_every_event_method(config: ClientConfig, steps: list[str], final: str) -> None:
    job = PipelineJob(None, *LINKS, config=config)
    for step in steps:
        assert getattr(job, step)({"step": step}) is job
    assert job.status == final
    assert names(job) == ["CREATE", *(step.upper() for step in steps)]


def test_reset_and_ready_need_an_admin_key(server: ServerThread, config: ClientConfig) -> None:
    job = PipelineJob(None, *LINKS, config=config).run()
    with pytest.raises(AdminRequired):
        job.reset()
    admin = ClientConfig(server=server.address, api_key=ADMIN_KEY, pipeline_uuid=config.pipeline_uuid)
    as_admin = PipelineJob.attach(None, job.uuid, job.token, config=admin)
    assert as_admin.reset({"why": "rerun"}).status == "RESET"
    assert as_admin.ready().status == "CREATED"
    with pytest.raises(AdminRequired):
        job.reset()


def test_refused_transition_names_state_and_event(config: ClientConfig) -> None:
    job = PipelineJob(None, *LINKS, config=config)
    with pytest.raises(InvalidTransition) as raised:
        job.finish()
    assert (raised.value.state, raised.value.event) == ("CREATED", "finish")
    assert job.status == "CREATED"


def test_cancel_deletes_a_job_that_never_ran_and_setup_recreates_it(config: ClientConfig) -> None:
    job = PipelineJob(None, *LINKS, config=config).setup()
    uuid = job.uuid
    job.cancel()
    with pytest.raises(JobNotFound):
        _ = job.status
    job.setup()
    assert (job.uuid, job.status, names(job)) == (uuid, "CREATED", ["CREATE"])


def test_cancel_is_refused_once_the_job_has_run(config: ClientConfig) -> None:
    job = PipelineJob(None, *LINKS, config=config).setup().run()
    with pytest.raises(CancelNotAllowed):
        job.cancel()
    assert job.fail({"reason": "cancelled by the operator"}).status == "FAILED"
    assert names(job) == ["CREATE", "RUN", "FAIL"]  # fail records; it never deletes


def test_attach_from_another_execution(config: ClientConfig) -> None:
    job = PipelineJob(reactor(), *LINKS, config=config).setup().run()
    later = PipelineJob.attach(reactor(execid="another"), job.uuid, job.token, config=config)
    assert (later.uuid, later.path, later.data) == (job.uuid, job.path, job.data)
    assert later.callback is None
    with pytest.raises(ValueError, match="setup"):
        later.agave_notification()
    later.update({"key4": "value4"})
    assert job.history[-1]["UPDATE"]["data"] == {"key4": "value4"}
    assert later.setup().callback is not None
    assert later.uuid == job.uuid
    with pytest.raises(JobNotFound):
        PipelineJob.attach(None, "0badc0de-0000-5000-8000-00000000abcd", job.token, config=config)
    with pytest.raises(InvalidToken):
        PipelineJob.attach(None, job.uuid, "not-the-token", config=config).update({"x": 1})


def test_agave_notification_carries_the_callback_and_the_nonce(config: ClientConfig) -> None:
    with_nonce = ClientConfig(**{**config.__dict__, "updates_nonce": "SD2E_XqsfKLFd3nrN"})
    job = PipelineJob(None, *LINKS, config=with_nonce)
    notification = job.agave_notification()
    assert notification == {"url": job.callback, "event": "*", "persistent": False}
    url = str(notification["url"])
    assert "?x-nonce=SD2E_XqsfKLFd3nrN&" in url
    assert url.endswith("&status=${STATUS}")
    query = parse_qs(urlsplit(url).query)
    assert (query["uuid"], query["token"]) == ([job.uuid], [job.token])
    plain = PipelineJob(None, *LINKS, config=config)
    assert "x-nonce" not in str(plain.agave_notification()["url"])


def test_data_must_be_a_json_object(config: ClientConfig) -> None:
    job = PipelineJob(None, *LINKS, config=config)
    with pytest.raises(TypeError, match="must be a dict"):
        job.update("{key2': 'value2'")  # type: ignore[arg-type]  # the seed's typo, as a string
    with pytest.raises(TypeError, match="must be JSON"):
        job.update({"when": object()})
    with pytest.raises(TypeError, match="must be a dict"):
        PipelineJob(None, *LINKS, ["not", "a", "dict"], config=config)  # type: ignore[arg-type]
    deep: dict[str, object] = {"leaf": 1}
    for _ in range(40):
        deep = {"a": deep}
    with pytest.raises(InvalidArgument) as too_deep:
        job.update(deep)
    assert too_deep.value.field == "data"
    assert names(job) == ["CREATE"]


def test_configuration_from_config_yml_and_missing_settings(server: ServerThread, tmp_path: Path) -> None:
    with JobsClient(server.address, api_key=CLIENT_KEY) as jobs:
        pipeline = jobs.register_pipeline("fcs-etl", ["fcs-etl@0.4.0u2"]).pipeline.uuid
    (tmp_path / "config.yml").write_text(
        f"pipelines:\n  pipeline_uuid: {pipeline}\n  authn: ~\n  job_manager_id: {server.address}\n"
    )
    with pytest.raises(ConfigurationError, match="no API key") as raised:
        PipelineJob(None, *LINKS, config=load_config(None, environ={}, workdir=tmp_path))
    assert raised.value.key == "api_key"
    config = load_config(None, environ={"_REACTOR_PIPELINES_AUTHN": CLIENT_KEY}, workdir=tmp_path)
    assert PipelineJob(None, *LINKS, config=config).status == "CREATED"
    with pytest.raises(ConfigurationError, match="no pipeline UUID"):
        PipelineJob(None, *LINKS, config=ClientConfig(server=server.address, api_key=CLIENT_KEY))


def test_repr_does_not_show_the_token(config: ClientConfig) -> None:
    job = PipelineJob(None, *LINKS, config=config)
    assert job.uuid in repr(job)
    assert job.token not in repr(job)


OTHER_CLIENT_KEY = "test-other-client-key-0123456789"


@pytest.fixture
def two_keys(mongodb_uri: str, database_name: str) -> Iterator[tuple[ClientConfig, ClientConfig]]:
    """Configs for two reactors with client keys of their own, on a server that knows both."""
    settings = test_settings(mongodb_uri, database_name, client_keys=(CLIENT_KEY, OTHER_CLIENT_KEY))
    server = ServerThread(settings).start()
    try:
        with JobsClient(server.address, api_key=CLIENT_KEY) as client:
            pipeline = client.register_pipeline("fcs-etl", ["fcs-etl@0.4.0u2"]).pipeline.uuid
        yield (
            ClientConfig(server=server.address, api_key=CLIENT_KEY, pipeline_uuid=pipeline),
            ClientConfig(server=server.address, api_key=OTHER_CLIENT_KEY, pipeline_uuid=pipeline),
        )
    finally:
        server.stop()


def test_a_job_another_key_created_comes_without_a_token(two_keys: tuple[ClientConfig, ClientConfig]) -> None:
    mine, theirs = two_keys
    with PipelineJob(None, *LINKS, config=mine) as job, PipelineJob(None, *LINKS, config=theirs) as other:
        assert (other.uuid, other.path) == (job.uuid, job.path)
        assert (other.token, other.token_id, other.callback) == ("", "", None)
        # Every event says why before anything is sent, and is caught as the service's TokenRequired.
        for attempt in (other.run, other.setup().update, other.cancel):
            with pytest.raises(TokenWithheld, match="created with another API key") as raised:
                attempt()
            assert isinstance(raised.value, TokenRequired)
        with pytest.raises(ValueError, match="another API key"):
            other.agave_notification()
        assert job.status == "CREATED"
        assert names(job) == ["CREATE"]
        # With the token its creator shares, the other reactor can report; setup() keeps that token.
        shared = PipelineJob.attach(None, job.uuid, job.token, config=theirs)
        assert shared.setup().token == job.token
        assert shared.token_id == token_id(job.token)
        shared.run()
        assert job.status == "RUNNING"
