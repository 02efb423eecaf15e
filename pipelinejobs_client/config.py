"""Where a reactor's PipelineJob finds its server, API key and pipeline: the seed's ``pipelines`` block.

Sources, lowest precedence first:

1. the ``pipelines`` block of the reactor's ``settings`` (``rx.settings``), or of ``config.yml`` in the
   working directory when there is no reactor;
2. ``_REACTOR_PIPELINES_<KEY>`` in ``secrets.json`` in the working directory;
3. ``_REACTOR_PIPELINES_<KEY>`` in the environment (how Abaco hands secrets to a deployed reactor);
4. for what is still missing: ``PIPELINEJOBS_SERVER`` and ``PIPELINEJOBS_API_KEY`` in the environment.

The server address is ``job_manager_id`` (or else ``pipeline_manager_id``) when it looks like a gRPC
target (``host:port``); in the seed those keys hold Abaco actor ids, which are not addresses.
The environment and the working directory are parameters, so tests pass them instead of patching.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import quote

import yaml

from .client import DEFAULT_TIMEOUT_S, JobsClient
from .errors import PipelineJobsError
from .retry import RetryPolicy

CONFIG_FILE: Final = "config.yml"
SECRETS_FILE: Final = "secrets.json"
KEYS: Final = ("pipeline_uuid", "updates_nonce", "authn", "pipeline_manager_id", "job_manager_id", "tls")
SERVER_ENV: Final = "PIPELINEJOBS_SERVER"
API_KEY_ENV: Final = "PIPELINEJOBS_API_KEY"
TLS_ENV: Final = "PIPELINEJOBS_TLS"

# host:port, [v6]:port, or an explicit gRPC name-resolver scheme (dns:, unix:, ...). Abaco actor ids
# such as G56vjoAVzGkkq have no colon, so they never match.
_TARGET = re.compile(
    r"(?:dns|ipv4|ipv6|unix|unix-abstract|xds):\S+|\[[0-9A-Fa-f:.]+\]:\d{1,5}|[A-Za-z0-9][A-Za-z0-9.-]*:\d{1,5}"
)
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})

Required = Literal["server", "api_key", "pipeline_uuid"]


class ConfigurationError(PipelineJobsError):
    """A setting is missing or unusable; ``key`` names it and the message says where to set it."""

    def __init__(self, message: str, *, key: str = "") -> None:
        super().__init__(message, reason="CONFIGURATION", metadata={"key": key} if key else None)
        self.key = key


def secret_name(key: str) -> str:
    """The secrets.json / environment name that overrides ``pipelines.<key>``."""
    return f"_REACTOR_PIPELINES_{key.upper()}"


def _where(key: str) -> str:
    return (
        f"pipelines.{key} in {CONFIG_FILE} (or the reactor's settings), "
        f"or {secret_name(key)} in {SECRETS_FILE} or the environment"
    )


_HINTS: Final[dict[Required, str]] = {
    "server": f"no server address: set {_where('job_manager_id')} to host:port, or {SERVER_ENV}",
    "api_key": f"no API key: set {_where('authn')}, or {API_KEY_ENV} in the environment",
    "pipeline_uuid": f"no pipeline UUID: set {_where('pipeline_uuid')}",
}


def looks_like_target(value: str | None) -> bool:
    """True for a gRPC address such as ``127.0.0.1:50051`` or ``dns:///jobs.example.org:443``."""
    return value is not None and _TARGET.fullmatch(value) is not None


@dataclass(frozen=True)
class ClientConfig:
    """The client's resolved settings. ``origins`` says where each value came from (never the value)."""

    server: str | None = None
    api_key: str | None = field(default=None, repr=False)
    pipeline_uuid: str | None = None
    updates_nonce: str | None = field(default=None, repr=False)
    pipeline_manager_id: str | None = None
    job_manager_id: str | None = None
    tls: bool = False
    timeout: float = DEFAULT_TIMEOUT_S
    origins: Mapping[str, str] = field(default_factory=dict)

    def required(self, name: Required) -> str:
        """The setting's value, or a ConfigurationError naming it and where it may be set."""
        value: str | None = getattr(self, name)
        if not value:
            raise ConfigurationError(_HINTS[name], key=name)
        return value

    def callback_url(self, url: str) -> str:
        """A callback URL from the service with the seed's ``x-nonce`` first, when ``updates_nonce`` is set.

        The server does not know the nonce (the callback shim checks it), so the client adds it.
        """
        if not url or not self.updates_nonce or "x-nonce=" in url:
            return url
        base, _, query = url.partition("?")
        return f"{base}?x-nonce={quote(self.updates_nonce, safe='')}" + (f"&{query}" if query else "")

    def client(self, *, retry: RetryPolicy | None = None) -> JobsClient:
        """A JobsClient for the configured server and API key (the caller closes it)."""
        return JobsClient(
            self.required("server"), api_key=self.api_key, tls=self.tls, timeout=self.timeout, retry=retry
        )


def _scalar(value: Any, origin: str) -> str | None:
    """A setting as text: YAML's ``~`` and empty strings are "not set"; lists and maps are mistakes."""
    if value is None or value == "":
        return None
    if isinstance(value, Mapping | list):
        raise ConfigurationError(f"{origin} must be a single value, not {type(value).__name__}")
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _flag(value: str | None, origin: str) -> bool:
    text = (value or "").strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigurationError(f"{origin} must be true or false, got {value!r}", key="tls")


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ConfigurationError(f"{path} is not valid YAML: {error}") from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ConfigurationError(f"{path} must hold a mapping at the top level")
    return document


def _read_secrets(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise ConfigurationError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(document, dict):
        raise ConfigurationError(f"{path} must hold a JSON object")
    return document


def pipelines_block(rx: object | None, workdir: Path) -> tuple[Any, str]:
    """The raw ``pipelines`` block and where it came from."""
    settings = getattr(rx, "settings", None) if rx is not None else None
    if settings is not None:
        if not isinstance(settings, Mapping):
            raise ConfigurationError("the reactor's settings must be a mapping (rx.settings)")
        return settings.get("pipelines"), "the reactor's settings"
    path = workdir / CONFIG_FILE
    if not path.is_file():
        return None, str(path)
    return _read_yaml(path).get("pipelines"), str(path)


def load_config(
    rx: object | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    workdir: str | os.PathLike[str] | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> ClientConfig:
    """Resolve the client's settings for reactor ``rx`` (or ``config.yml`` when ``rx`` is None).

    ``environ`` defaults to ``os.environ`` and ``workdir`` to the current directory.
    """
    env = os.environ if environ is None else environ
    directory = Path.cwd() if workdir is None else Path(workdir)
    block, block_origin = pipelines_block(rx, directory)
    if block is not None and not isinstance(block, Mapping):
        raise ConfigurationError(f"the pipelines block in {block_origin} must be a mapping")
    secrets_path = directory / SECRETS_FILE
    secrets = _read_secrets(secrets_path)

    values: dict[str, str | None] = {}
    origins: dict[str, str] = {}
    for key in KEYS:
        candidates = (
            ((block or {}).get(key), f"pipelines.{key} in {block_origin}"),
            (secrets.get(secret_name(key)), f"{secret_name(key)} in {secrets_path}"),
            (env.get(secret_name(key)), f"{secret_name(key)} in the environment"),
        )
        values[key] = None
        for raw, origin in candidates:
            value = _scalar(raw, origin)
            if value is not None:  # later sources override earlier ones
                values[key], origins[key] = value, origin

    server = None
    for key in ("job_manager_id", "pipeline_manager_id"):
        if looks_like_target(values[key]):
            server, origins["server"] = values[key], origins[key]
            break
    if server is None and env.get(SERVER_ENV):
        server, origins["server"] = env[SERVER_ENV], f"{SERVER_ENV} in the environment"
    api_key = values["authn"]
    if api_key is not None:
        origins["api_key"] = origins["authn"]
    elif env.get(API_KEY_ENV):
        api_key, origins["api_key"] = env[API_KEY_ENV], f"{API_KEY_ENV} in the environment"
    tls_origin = origins.get("tls", f"{TLS_ENV} in the environment")
    tls = _flag(values["tls"] if values["tls"] is not None else env.get(TLS_ENV), tls_origin)

    return ClientConfig(
        server=server,
        api_key=api_key,
        pipeline_uuid=values["pipeline_uuid"],
        updates_nonce=values["updates_nonce"],
        pipeline_manager_id=values["pipeline_manager_id"],
        job_manager_id=values["job_manager_id"],
        tls=tls,
        timeout=timeout,
        origins=origins,
    )
