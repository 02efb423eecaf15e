"""Executor callbacks (Agave v2 and Tapis v3) -> deliveries, through the status tables.

Both carry the job's ``uuid`` and ``token`` in the query string (the URL the server hands out with
each job), plus the optional ``x-nonce``. Agave puts the status in the query string too
(``status=${STATUS}``, substituted by Agave) and its job JSON in the body; Tapis posts a
CloudEvents-shaped notification whose ``type`` ends with the new status
(``jobs.JOB_NEW_STATUS.FINISHED``).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any, Final

from starlette.requests import Request

from pipelinejobs_server.domain.errors import InvalidArgument, TokenRequired
from pipelinejobs_server.domain.identity import is_uuid
from pipelinejobs_server.web.body import read_limited

from .body import callback_data, callback_key, json_object
from .failures import InvalidNonce, UnresolvedPlaceholder
from .relay import Delivery, Outcome, Relay
from .statuses import TABLES, is_placeholder

MAX_STATUS = 128  # what the server keeps of an event name it could not map
MAX_TOKEN = 1024
TAPIS_STATUS_EVENT: Final = "JOB_NEW_STATUS"


@dataclass(frozen=True)
class Callback:
    endpoint: str  # a key of statuses.TABLES
    job_uuid: str
    token: str
    status: str
    data: dict[str, Any]
    key: str


def single(request: Request, name: str) -> str:
    """A query parameter given at most once (``uuid=a&uuid=b`` is ambiguous, so it is refused)."""
    values = request.query_params.getlist(name)
    if len(set(values)) > 1:
        raise InvalidArgument(f"query parameter {name!r} is given more than once", field=name)
    return values[0] if values else ""


def check_nonce(request: Request, expected: str) -> None:
    """When a nonce is configured, a callback must carry it; it never replaces the job token."""
    if not expected:
        return  # the seed's URLs carry an x-nonce; without a configured one it is ignored
    presented = single(request, "x-nonce") or request.headers.get("x-nonce", "")
    if not presented:
        raise InvalidNonce("this endpoint needs the x-nonce query parameter (or X-Nonce header)")
    if not hmac.compare_digest(presented.encode(), expected.encode()):
        raise InvalidNonce("the x-nonce is not valid")


def job_credentials(request: Request) -> tuple[str, str]:
    job_uuid = single(request, "uuid")
    if not job_uuid:
        raise InvalidArgument("query parameter 'uuid' (the job's uuid) is required", field="uuid")
    if not is_uuid(job_uuid):
        raise InvalidArgument("query parameter 'uuid' must be a lower-case hyphenated UUID", field="uuid")
    token = single(request, "token")
    if not token:
        raise TokenRequired("query parameter 'token' (the job's token) is required", uuid=job_uuid)
    if len(token) > MAX_TOKEN:
        raise InvalidArgument(f"query parameter 'token' is longer than {MAX_TOKEN} characters", field="token")
    return job_uuid, token


def _status(value: str, field: str) -> str:
    if not value.strip():
        raise InvalidArgument(f"{field} is required", field=field)
    if len(value) > MAX_STATUS:
        raise InvalidArgument(f"{field} is longer than {MAX_STATUS} characters", field=field)
    return value


async def agave(request: Request, nonce: str, limit: int, secret: bytes) -> Callback:
    check_nonce(request, nonce)
    job_uuid, token = job_credentials(request)
    status = _status(single(request, "status"), "status")
    raw = await read_limited(request, limit) if request.method == "POST" else b""
    data = callback_data(raw, status)
    key = callback_key(secret, "agave", job_uuid, status, raw)
    return Callback("agave", job_uuid, token, status, data, key)


async def tapis(request: Request, nonce: str, limit: int, secret: bytes) -> Callback:
    check_nonce(request, nonce)
    job_uuid, token = job_credentials(request)
    raw = await read_limited(request, limit)
    notification = json_object(raw, "a Tapis notification")
    kind = notification.get("type")
    if not isinstance(kind, str):
        raise InvalidArgument(
            "the notification has no string 'type' (e.g. jobs.JOB_NEW_STATUS.RUNNING)", field="type"
        )
    kind = _status(kind, "type")
    # Only a JOB_NEW_STATUS event names a status; any other type is kept whole, and is unmapped.
    *prefix, last = kind.split(".")
    status = last if prefix and prefix[-1] == TAPIS_STATUS_EVENT else kind
    key = callback_key(secret, "tapis", job_uuid, status, raw)
    return Callback("tapis", job_uuid, token, status, notification, key)


async def deliver(relay: Relay, callback: Callback) -> Outcome:
    rule = TABLES[callback.endpoint].get(callback.status)
    delivery = Delivery(
        callback.job_uuid,
        callback.token,
        rule.event if rule is not None else "",
        callback.data,
        status=callback.status,
        idempotency_key=callback.key,
    )
    if rule is not None:
        return await relay.send(delivery)
    if is_placeholder(callback.status):
        message = (
            f"the status is {callback.status!r}: the executor sent the URL's placeholder unsubstituted; "
            "check the notification URL in the job definition"
        )
        if "{" not in callback.status:
            message += " (curl reads ${STATUS} in a URL as $STATUS unless given -g)"
        await relay.reject(delivery, callback.status, UnresolvedPlaceholder.reason, message)
        raise UnresolvedPlaceholder(message, field="status", recorded="true")
    message = f"{callback.endpoint} status {callback.status!r} is not in the shim's table; nothing changed"
    return await relay.reject(delivery, callback.status, "UNMAPPED_STATUS", message)
