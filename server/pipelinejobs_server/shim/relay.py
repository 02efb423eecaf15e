"""The shim's only way to the server: gRPC calls through the typed AsyncJobsClient.

``Relay`` turns one delivery into one call (``SendEvent``, or ``RejectEvent`` for what cannot be
mapped), with the job's token taken out of the data it carries (body.without), and the answer into
an ``Outcome``: applied, replayed, refused by the state machine, or unmapped. Every other error is
raised as the client's typed exception and answered by failures.py. Nothing is kept between requests:
the server decides everything, from the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from pipelinejobs_client import AsyncJobsClient, RetryPolicy
from pipelinejobs_client import errors as client_errors
from pipelinejobs_client.channels import channel_credentials, channel_options
from pipelinejobs_client.names import state_name
from pipelinejobs_server.domain.errors import InvalidToken
from pipelinejobs_server.web.failures import Misconfigured
from pipelinejobs_server.web.logs import MASK

from .body import without
from .settings import ShimSettings

SOURCE = "callback"  # every event that enters through the HTTP edge is recorded as such

# A callback is retried by its executor anyway; one quick retry covers a replica restarting, and the
# executor gets its 503 within seconds instead of waiting out the client's full backoff.
RETRY = RetryPolicy(attempts=2, initial_backoff_s=0.1, max_backoff_s=0.5)


@dataclass(frozen=True)
class Delivery:
    job_uuid: str
    token: str
    event: str
    data: dict[str, Any] = field(default_factory=dict)
    status: str | None = None  # the executor's status, for callbacks
    idempotency_key: str | None = None


@dataclass(frozen=True)
class Outcome:
    """What happened to one delivery; the 2xx answer's body."""

    uuid: str
    event: str | None
    status: str | None
    outcome: str  # applied | replayed | refused | unmapped
    state: str
    seq: int | None = None
    reason: str | None = None
    message: str | None = None

    @property
    def applied(self) -> bool:
        return self.outcome == "applied"

    def body(self) -> dict[str, Any]:
        return {
            "uuid": self.uuid,
            "event": self.event,
            "status": self.status,
            "applied": self.applied,
            "replayed": self.outcome == "replayed",
            "outcome": self.outcome,
            "state": self.state,
            "seq": self.seq,
            "reason": self.reason,
            "message": self.message,
        }


class KeyGuard:
    """Refuses to relay with an admin API key (or a key the server does not know).

    The server skips the job-token check for admin keys, so a shim holding one would apply any
    callback for any job, whatever its token. Checked once, on first use (the server may be down
    when the shim starts): only an admin may list every job's rejected events.
    """

    def __init__(self, client: AsyncJobsClient, has_key: bool) -> None:
        self._client = client
        self._verified = not has_key

    async def ensure(self) -> None:
        if self._verified:
            return
        try:
            await self._client.list_rejected_events("", page_size=1)
        except client_errors.AdminRequired:
            self._verified = True  # a client key: the job token still decides
            return
        except client_errors.Unauthenticated:
            raise Misconfigured("the shim's API key is not valid on the server") from None
        raise Misconfigured("the shim holds an admin API key; give it a client key or none")


class Relay:
    def __init__(self, settings: ShimSettings) -> None:
        self.client = AsyncJobsClient(
            settings.server,
            api_key=settings.api_key or None,
            tls=settings.tls or False,
            timeout=settings.call_timeout_s,
            retry=RETRY,
        )
        self._guard = KeyGuard(self.client, bool(settings.api_key))
        # The standard health service is not part of the jobs client; a channel of its own, to the same
        # target with the same TLS.
        credentials = channel_credentials(settings.tls or False)
        options = channel_options(settings.tls or False)
        self._health_channel = (
            grpc.aio.secure_channel(settings.server, credentials, options=options)
            if credentials is not None
            else grpc.aio.insecure_channel(settings.server, options=options)
        )
        self._health = health_pb2_grpc.HealthStub(self._health_channel)
        self._health_timeout_s = settings.health_timeout_s

    async def verify_key(self) -> None:
        await self._guard.ensure()

    async def close(self) -> None:
        await self.client.close()
        await self._health_channel.close(grace=None)

    async def send(self, delivery: Delivery) -> Outcome:
        await self._guard.ensure()
        try:
            reply = await self.client.send_event(
                delivery.job_uuid,
                delivery.event,
                token=delivery.token,
                data=without(delivery.data, delivery.token, MASK),
                idempotency_key=delivery.idempotency_key,
                source=SOURCE,
            )
        except client_errors.JobNotFound:
            # Only a shim with an API key hears JOB_NOT_FOUND: its callers have none, so it answers
            # as the server answers them, and an outsider cannot probe which job uuids exist.
            raise InvalidToken.for_job(delivery.job_uuid) from None
        except client_errors.InvalidTransition as refused:
            # Refused, and already kept in the rejected-events log by the server: a 2xx, so the
            # executor stops retrying something that will never apply.
            return Outcome(
                delivery.job_uuid,
                delivery.event,
                delivery.status,
                "refused",
                refused.state,
                reason=refused.reason or "INVALID_TRANSITION",
                message=refused.message,
            )
        replayed = reply.replayed
        return Outcome(
            delivery.job_uuid,
            delivery.event,
            delivery.status,
            "replayed" if replayed else "applied",
            state_name(reply.job.state),
            seq=reply.event.seq,
            reason="DUPLICATE" if replayed else None,
            message=f"already applied at seq {reply.event.seq}" if replayed else None,
        )

    async def reject(self, delivery: Delivery, received: str, reason: str, message: str) -> Outcome:
        """Keep what cannot be mapped in the server's rejected-events log (the job is not touched)."""
        await self._guard.ensure()
        try:
            record = await self.client.reject_event(
                delivery.job_uuid,
                received,
                reason=reason,
                message=message,
                token=delivery.token,
                data=without(delivery.data, delivery.token, MASK),
                source=SOURCE,
            )
        except client_errors.JobNotFound:
            raise InvalidToken.for_job(delivery.job_uuid) from None  # as in send()
        return Outcome(
            delivery.job_uuid,
            None,
            delivery.status,
            "unmapped",
            state_name(record.state),
            None,
            reason,
            message,
        )

    async def serving(self) -> str:
        """The server's overall health status name; raises grpc.RpcError when it does not answer."""
        reply = await self._health.Check(health_pb2.HealthCheckRequest(), timeout=self._health_timeout_s)
        name: str = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        return name
