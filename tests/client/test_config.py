"""Client configuration: the seed's pipelines block, secrets.json and the environment, in that order.

Pure: no server. The environment and the working directory are passed in, never patched.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from pipelinejobs_client import ClientConfig, ConfigurationError, PipelineJobsError, load_config
from pipelinejobs_client.config import looks_like_target, secret_name
from pipelinejobs_client.reactors import caller, message

SEED_PIPELINE = "f0f417f2-ba8b-5ac4-b421-255b69553391"
# The seed's config.yml, verbatim: the manager ids are Abaco actor ids, not addresses.
SEED_CONFIG = """\
pipelines:
  pipeline_uuid: f0f417f2-ba8b-5ac4-b421-255b69553391
  updates_nonce: ~
  authn: ~
  pipeline_manager_id: G1p783PxpalBB
  job_manager_id: G56vjoAVzGkkq
"""
SEED_SECRETS = {
    "_REACTOR_PIPELINES_AUTHN": "bW9uZ29kYjovL2NlgqbVdolMjUl",
    "_REACTOR_PIPELINES_UPDATES_NONCE": "SD2E_XqsfKLFd3nrN",
}


def write(directory: Path, config: str | None = None, secrets: dict[str, Any] | None = None) -> Path:
    if config is not None:
        (directory / "config.yml").write_text(config)
    if secrets is not None:
        (directory / "secrets.json").write_text(json.dumps(secrets))
    return directory


def test_seed_config_and_secrets(tmp_path: Path) -> None:
    write(tmp_path, SEED_CONFIG, SEED_SECRETS)
    config = load_config(None, environ={"PIPELINEJOBS_SERVER": "jobs.example.org:443"}, workdir=tmp_path)
    assert config.pipeline_uuid == SEED_PIPELINE
    assert config.api_key == SEED_SECRETS["_REACTOR_PIPELINES_AUTHN"]
    assert config.updates_nonce == "SD2E_XqsfKLFd3nrN"
    assert config.job_manager_id == "G56vjoAVzGkkq"
    # An actor id is not an address, so the server comes from the environment.
    assert config.server == "jobs.example.org:443"
    assert config.origins["api_key"] == f"_REACTOR_PIPELINES_AUTHN in {tmp_path / 'secrets.json'}"
    assert config.origins["server"] == "PIPELINEJOBS_SERVER in the environment"


def test_manager_id_holding_an_address_is_the_server(tmp_path: Path) -> None:
    write(tmp_path, SEED_CONFIG.replace("G56vjoAVzGkkq", "127.0.0.1:50051"))
    config = load_config(None, environ={"PIPELINEJOBS_SERVER": "elsewhere:1"}, workdir=tmp_path)
    assert config.server == "127.0.0.1:50051"
    write(tmp_path, SEED_CONFIG.replace("G1p783PxpalBB", "pipelines.example.org:7000"))
    assert load_config(None, environ={}, workdir=tmp_path).server == "pipelines.example.org:7000"


def test_precedence_config_then_secrets_then_environment(tmp_path: Path) -> None:
    write(
        tmp_path,
        SEED_CONFIG.replace("authn: ~", "authn: from-config"),
        {secret_name("authn"): "from-secrets"},
    )
    environ = {"PIPELINEJOBS_SERVER": "h:1"}
    assert load_config(None, environ=environ, workdir=tmp_path).api_key == "from-secrets"
    environ[secret_name("authn")] = "from-environment"
    environ["PIPELINEJOBS_API_KEY"] = "generic"  # only a fallback: the pipelines block has a key
    assert load_config(None, environ=environ, workdir=tmp_path).api_key == "from-environment"
    # Any key of the block can be overridden the same way, the server address too.
    environ[secret_name("job_manager_id")] = "override.example.org:50051"
    assert load_config(None, environ=environ, workdir=tmp_path).server == "override.example.org:50051"


def test_plain_environment_variables_without_any_file(tmp_path: Path) -> None:
    environ = {
        "PIPELINEJOBS_SERVER": "127.0.0.1:50051",
        "PIPELINEJOBS_API_KEY": "k",
        "PIPELINEJOBS_TLS": "yes",
    }
    config = load_config(None, environ=environ, workdir=tmp_path)
    assert (config.server, config.api_key, config.tls) == ("127.0.0.1:50051", "k", True)
    assert config.pipeline_uuid is None


def test_reactor_settings_are_used_instead_of_config_yml(tmp_path: Path) -> None:
    write(tmp_path, "pipelines:\n  pipeline_uuid: not-this-one\n", SEED_SECRETS)
    rx = SimpleNamespace(
        settings={"pipelines": {"pipeline_uuid": SEED_PIPELINE, "job_manager_id": "localhost:50051"}}
    )
    config = load_config(rx, environ={}, workdir=tmp_path)
    assert config.pipeline_uuid == SEED_PIPELINE
    assert config.server == "localhost:50051"
    assert config.api_key == SEED_SECRETS["_REACTOR_PIPELINES_AUTHN"]  # secrets.json still overrides
    assert config.origins["pipeline_uuid"] == "pipelines.pipeline_uuid in the reactor's settings"


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("server", "pipelines.job_manager_id"),
        ("server", "PIPELINEJOBS_SERVER"),
        ("api_key", "pipelines.authn"),
        ("api_key", "_REACTOR_PIPELINES_AUTHN in secrets.json"),
        ("api_key", "PIPELINEJOBS_API_KEY"),
        ("pipeline_uuid", "pipelines.pipeline_uuid in config.yml"),
    ],
)
def test_missing_settings_name_the_key_and_where_to_set_it(tmp_path: Path, name: Any, needle: str) -> None:
    write(tmp_path, SEED_CONFIG.replace(SEED_PIPELINE, "~"))
    config = load_config(None, environ={}, workdir=tmp_path)
    with pytest.raises(ConfigurationError) as raised:
        config.required(name)
    assert raised.value.key == name
    assert needle in str(raised.value)
    assert isinstance(raised.value, PipelineJobsError)


def test_no_files_at_all_is_an_empty_configuration(tmp_path: Path) -> None:
    config = load_config(None, environ={}, workdir=tmp_path)
    assert config == ClientConfig(timeout=config.timeout)
    with pytest.raises(ConfigurationError, match="no server address"):
        config.client()


@pytest.mark.parametrize(
    ("files", "match"),
    [
        ({"config.yml": "pipelines: [1, 2"}, "not valid YAML"),
        ({"config.yml": "- a list\n"}, "mapping at the top level"),
        ({"config.yml": "pipelines: just-text\n"}, "pipelines block .* must be a mapping"),
        ({"config.yml": "pipelines:\n  authn: [a, b]\n"}, "pipelines.authn .* single value"),
        ({"secrets.json": "{not json"}, "not valid JSON"),
        ({"secrets.json": "[]"}, "must hold a JSON object"),
        ({"config.yml": "pipelines:\n  tls: maybe\n"}, "must be true or false"),
    ],
)
def test_unusable_files_are_refused_clearly(tmp_path: Path, files: dict[str, str], match: str) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(ConfigurationError, match=match):
        load_config(None, environ={}, workdir=tmp_path)


def test_secrets_never_appear_in_repr(tmp_path: Path) -> None:
    write(tmp_path, SEED_CONFIG, SEED_SECRETS)
    text = repr(load_config(None, environ={}, workdir=tmp_path))
    for secret in SEED_SECRETS.values():
        assert secret not in text


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1:50051", True),
        ("localhost:50051", True),
        ("jobs.example.org:443", True),
        ("[::1]:50051", True),
        ("dns:///jobs.example.org:443", True),
        ("unix:/tmp/jobs.sock", True),
        ("G56vjoAVzGkkq", False),
        ("localhost", False),
        ("http://jobs.example.org:443", False),
        ("host:port", False),
        (None, False),
    ],
)
def test_what_counts_as_a_server_address(value: str | None, expected: bool) -> None:
    assert looks_like_target(value) is expected


def test_reactor_identity_and_message() -> None:
    rx = SimpleNamespace(
        uid="G46vjoAVzGkkq",
        execid="WmW0qDDYJ8Mxe",
        nickname="solid-snake",
        context={"message_dict": {"sample": "A2"}, "raw_message": '{"ignored": true}'},
    )
    assert caller(rx) == caller(rx).__class__("G46vjoAVzGkkq", "WmW0qDDYJ8Mxe", "solid-snake")
    assert message(rx) == {"sample": "A2"}
    attributes = SimpleNamespace(message_dict={}, raw_message='{"a": 1}')
    assert message(SimpleNamespace(context=attributes)) == {"a": 1}
    assert message(SimpleNamespace(context={"raw_message": "plain text"})) == {}
    assert message(SimpleNamespace(context={"raw_message": "[1, 2]"})) == {}
    assert message(None) == {}
    assert caller(None) == caller(SimpleNamespace())
