"""``PipelineJob``: the seed's reactor-side API, ``PipelineJob(rx, lab, experiment, sample).setup().run()``.

Constructing a PipelineJob creates the job in the service (``CreateJob`` is idempotent by identity), so
``uuid``, ``token``, ``path`` and ``callback`` can be read straight away, before ``setup()``, as the seed
prints them. Every event method sends one event with the job's token (and an idempotency key, so the
client's retries never apply it twice) and returns the job, so calls chain. docs/client.md tells the story.

The service issues tokens for an existing job only to the API key that created it (and admin keys): a
PipelineJob for a job another key created has no token, and its event methods raise ``TokenWithheld``
before sending anything.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import TracebackType
from typing import Any, Self

from pipelinejobs_client.api.v1 import job_pb2, job_service_pb2

from . import reactors
from .client import JobsClient
from .config import ClientConfig, load_config
from .errors import TokenWithheld
from .history import SeedEntry, plain_object, seed_history
from .names import state_name
from .payload import Data, checked_data, to_dict
from .tokens import token_id

Links = str | Iterable[str]


class PipelineJob:
    """One job of the configured pipeline, for lab / experiment / sample, with parameters ``data``.

    ``rx`` is the reactor (its ``settings["pipelines"]`` block configures the client; its ``uid``,
    ``execid`` and ``nickname`` become the job's agent, task and session) or None (``config.yml`` and
    ``secrets.json`` in the working directory are read). ``data`` defaults to the reactor's message.
    Keyword options override what ``rx`` gives: ``pipeline_uuid``, ``session``, ``agent``, ``task``,
    ``config`` (a ``ClientConfig``) and ``client`` (a ``JobsClient`` to share; it is not closed here).
    """

    def __init__(
        self,
        rx: object | None,
        lab: Links,
        experiment: Links,
        sample: Links,
        data: Data | None = None,
        *,
        pipeline_uuid: str | None = None,
        session: str | None = None,
        agent: str | None = None,
        task: str | None = None,
        config: ClientConfig | None = None,
        client: JobsClient | None = None,
    ) -> None:
        # Everything that can be refused locally is checked before a connection is opened.
        self._parameters = checked_data(data) if data is not None else reactors.message(rx)
        self._configure(rx, config)
        self._pipeline_uuid = pipeline_uuid or self._config.required("pipeline_uuid")
        self._links: dict[str, Links] = {"lab": lab, "experiment": experiment, "sample": sample}
        caller = reactors.caller(rx)
        self._caller = reactors.Caller(
            agent=caller.agent if agent is None else agent,
            task=caller.task if task is None else task,
            session=caller.session if session is None else session,
        )
        self._connect(client)
        try:
            self._create()
        except BaseException:
            self.close()
            raise

    def _configure(self, rx: object | None, config: ClientConfig | None) -> None:
        self._config = config if config is not None else load_config(rx)
        # Creating and reading jobs needs an API key: say which setting is missing before any call.
        self._config.required("api_key")

    def _connect(self, client: JobsClient | None) -> None:
        self._owns_client = client is None
        self._client = client if client is not None else self._config.client()
        self._token = ""
        self._withheld = False  # the service gave no token, and this object holds none
        self._callback: str | None = None
        self._job = job_pb2.Job()

    @classmethod
    def attach(
        cls,
        rx: object | None,
        uuid: str,
        token: str,
        *,
        config: ClientConfig | None = None,
        client: JobsClient | None = None,
    ) -> Self:
        """The existing job ``uuid``, to send events with ``token`` from a later execution or another reactor.

        Reads the job (so an unknown uuid fails here, with JobNotFound). ``callback`` is None until
        ``setup()`` asks the service for a fresh token and callback URL.
        """
        job = cls.__new__(cls)
        job._configure(rx, config)
        job._connect(client)
        try:
            record = job._client.get_job(uuid)
        except BaseException:
            job.close()
            raise
        job._token = token
        job._job = record
        job._pipeline_uuid = record.pipeline_uuid
        job._links = {
            "lab": list(record.links.lab),
            "experiment": list(record.links.experiment),
            "sample": list(record.links.sample),
        }
        job._parameters = plain_object(to_dict(record.data))
        job._caller = reactors.caller(rx)
        return job

    def _create(self) -> None:
        reply: job_service_pb2.CreateJobResponse = self._client.create_job(
            self._pipeline_uuid,
            lab=self._links["lab"],
            experiment=self._links["experiment"],
            sample=self._links["sample"],
            data=self._parameters,
            session=self._caller.session,
            agent=self._caller.agent,
            task=self._caller.task,
        )
        self._job = reply.job
        if reply.token_withheld or not reply.token:
            # Another key created the job: keep the token this object already holds (from attach()),
            # if any; the events say what is missing when they need it.
            self._withheld = not self._token
            return
        self._withheld = False
        self._token = reply.token
        self._callback = self._config.callback_url(reply.callback_url)

    # -- lifecycle ------------------------------------------------------------------------------------

    def setup(self, data: Data | None = None) -> Self:
        """Make sure the job exists in the service (state CREATED when new) and get a fresh token.

        The job is the same one the constructor created (or re-created, after ``cancel()``). The service's
        CREATE entry carries no payload, so ``data``, when given, is recorded as an UPDATE right after it.
        """
        payload = checked_data(data)
        self._create()
        if payload:
            self.update(payload)
        return self

    def event(self, name: str, data: Data | None = None) -> Self:
        """Send any event by its seed name (``"run"``, ``"update"`` …) with optional ``data``.

        Raises ``TokenWithheld`` (a ``TokenRequired``) without sending when the service withheld the
        token (the job was created with another API key) and this object holds none.
        """
        payload = checked_data(data)
        if self._withheld:
            raise TokenWithheld(self.uuid)
        reply = self._client.send_event(self.uuid, name, token=self._token, data=payload)
        self._job = reply.job
        return self

    def run(self, data: Data | None = None) -> Self:
        """CREATED or RUNNING → RUNNING."""
        return self.event("run", data)

    def update(self, data: Data | None = None) -> Self:
        """Record data; the state does not change (CREATED, RUNNING, VALIDATING, INDEXING)."""
        return self.event("update", data)

    def resource(self, data: Data | None = None) -> Self:
        """Record a resource the job uses; the state does not change (CREATED, RUNNING)."""
        return self.event("resource", data)

    def finish(self, data: Data | None = None) -> Self:
        """RUNNING → FINISHED."""
        return self.event("finish", data)

    def fail(self, data: Data | None = None) -> Self:
        """CREATED, RUNNING, VALIDATING or INDEXING → FAILED. The job and its history are kept."""
        return self.event("fail", data)

    def index(self, data: Data | None = None) -> Self:
        """FINISHED → INDEXING."""
        return self.event("index", data)

    def indexed(self, data: Data | None = None) -> Self:
        """INDEXING → FINISHED."""
        return self.event("indexed", data)

    def validate(self, data: Data | None = None) -> Self:
        """FINISHED or VALIDATED → VALIDATING."""
        return self.event("validate", data)

    def validated(self, data: Data | None = None) -> Self:
        """VALIDATING → VALIDATED."""
        return self.event("validated", data)

    def reject(self, data: Data | None = None) -> Self:
        """VALIDATING → REJECTED."""
        return self.event("reject", data)

    def finalize(self, data: Data | None = None) -> Self:
        """VALIDATED → FINALIZED."""
        return self.event("finalize", data)

    def retire(self, data: Data | None = None) -> Self:
        """FAILED, FINISHED, VALIDATING, VALIDATED, REJECTED or FINALIZED → RETIRED."""
        return self.event("retire", data)

    def reset(self, data: Data | None = None) -> Self:
        """Any state → RESET. Needs an admin API key (``AdminRequired`` otherwise)."""
        return self.event("reset", data)

    def ready(self, data: Data | None = None) -> Self:
        """RESET → CREATED. Needs an admin API key (``AdminRequired`` otherwise)."""
        return self.event("ready", data)

    def cancel(self) -> None:
        """Delete the job and its history; only while it has never been RUNNING (``CancelNotAllowed``)."""
        if self._withheld:
            raise TokenWithheld(self.uuid)
        self._client.cancel_job(self.uuid, token=self._token)

    # -- properties -----------------------------------------------------------------------------------

    @property
    def uuid(self) -> str:
        """The job's identity: uuid5 of pipeline, links and data (docs/identity.md)."""
        return self._job.uuid

    @property
    def token(self) -> str:
        """The job token this object sends events with. A secret: store it, do not log it.

        "" when the service withheld it: the job was created with another API key.
        """
        return self._token

    @property
    def token_id(self) -> str:
        """The token's non-secret id, what an operator revokes it by (``pipelinejobs jobs revoke-tokens``);
        "" without a token."""
        return token_id(self._token) if self._token else ""

    @property
    def path(self) -> str:
        """Where the job's outputs must be archived; fixed by the service when the job was created."""
        return self._job.archive_path

    @property
    def callback(self) -> str | None:
        """The Agave notification URL (``status=${STATUS}`` left for Agave to fill); None after ``attach``."""
        return self._callback

    @property
    def data(self) -> dict[str, Any]:
        """The job's parameterization (part of its identity)."""
        return plain_object(to_dict(self._job.data))

    @property
    def pipeline_uuid(self) -> str:
        return self._job.pipeline_uuid

    @property
    def record(self) -> job_pb2.Job:
        """The job as the service last returned it to this object (no call is made)."""
        return self._job

    @property
    def status(self) -> str:
        """The job's current state, read from the service: ``"CREATED"``, ``"RUNNING"`` …"""
        self._job = self._client.get_job(self.uuid)
        return state_name(self._job.state)

    @property
    def history(self) -> list[SeedEntry]:
        """The job's history, read from the service, in the seed's shape: ``[{"CREATE": {…}}, …]``."""
        return seed_history(self._client.iter_job_events(self.uuid, page_size=1000))

    def agave_notification(self) -> dict[str, str | bool]:
        """The entry to add to an Agave job's ``notifications`` so its status changes reach this job."""
        if not self._callback:
            raise ValueError(
                "this job has no callback URL: call setup() to get one (none comes when the job was "
                "created with another API key: the URL carries a token, and only that key gets tokens)"
            )
        return {"url": self._callback, "event": "*", "persistent": False}

    # -- resources ------------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection, unless it was passed in as ``client``."""
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        # Never the token: reprs end up in logs.
        return f"PipelineJob(uuid={self.uuid!r}, path={self.path!r})"
