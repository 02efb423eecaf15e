"""The seed's ``PipelineJobEvent`` JSON message, validated with a JSON Schema.

``{"uuid": …, "event": "update", "data": {…}, "token": …}`` with the seed's lower-case event names.
The schema is also the request body of ``POST /v1/events`` in the OpenAPI description, so the
document and the check are one object. Abaco's message endpoint wraps a message as
``{"message": <object or JSON text>}``; ``unwrap`` accepts that too, for the drop-in endpoint.
"""

from __future__ import annotations

import json
from typing import Any, Final

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from pipelinejobs_server.domain import fsm

from .body import checked
from .failures import MalformedBody
from .relay import Delivery

# Events a job token may send; create is the server's, reset and ready need an admin key.
EVENTS: Final = tuple(event for event in fsm.EVENTS if fsm.permission(event) is fsm.Permission.JOB_TOKEN)
UUID_PATTERN: Final = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
PROPERTIES: Final = ("uuid", "event", "data", "token", "idempotency_key")

EVENT_SCHEMA: Final[dict[str, Any]] = {
    "title": "PipelineJobEvent",
    "description": "A state-change event for a PipelineJob (the seed's message).",
    "type": "object",
    "properties": {
        "uuid": {"description": "the job's uuid", "type": "string", "pattern": UUID_PATTERN},
        "event": {"description": "a lower-case event name", "type": "string", "enum": list(EVENTS)},
        "data": {"description": "stored with the history entry (optional)", "type": "object"},
        "token": {
            "description": "the job's token, issued by CreateJob",
            "type": "string",
            "minLength": 1,
            "maxLength": 1024,
        },
        "idempotency_key": {
            "description": "optional; a key already applied replays instead of applying twice",
            "type": "string",
            "pattern": "^[!-~]{1,200}$",
        },
    },
    # No "token" here: a message without one is unauthenticated (401 from the server), not malformed.
    "required": ["uuid", "event"],
    "additionalProperties": False,
}
_VALIDATOR: Final = Draft202012Validator(EVENT_SCHEMA)


def _explain(error: ValidationError) -> str:
    """A message built from the schema, never from the value: the value may be the token."""
    where = ".".join(str(part) for part in error.absolute_path) or "the message"
    rule: Any = error.validator_value
    if error.validator == "required":
        instance: Any = error.instance
        missing = [name for name in rule if name not in instance]
        return f"{where}: missing {', '.join(missing)}"
    if error.validator == "additionalProperties":
        return f"{where}: unknown properties; allowed are {', '.join(PROPERTIES)}"
    if error.validator == "enum":
        return f"{where}: must be one of {', '.join(map(str, rule))}"
    if error.validator == "type":
        return f"{where}: must be of type {rule}"
    if error.validator == "pattern":
        return f"{where}: must match {rule}"
    return f"{where}: fails {error.validator} {rule}"


def unwrap(message: dict[str, Any]) -> dict[str, Any]:
    """The event inside an Abaco ``{"message": …}`` envelope, or the message itself."""
    if set(message) != {"message"}:
        return message
    inner = message["message"]
    if isinstance(inner, str):
        try:
            inner = json.loads(inner)
        except (ValueError, RecursionError):
            raise MalformedBody("'message' is text but not JSON", field="message") from None
    if not isinstance(inner, dict):
        raise MalformedBody("'message' must be a PipelineJobEvent object", field="message")
    return checked(inner)


def delivery(message: dict[str, Any]) -> Delivery:
    errors = sorted(_VALIDATOR.iter_errors(message), key=lambda error: list(error.absolute_path))
    if errors:
        field = ".".join(str(part) for part in errors[0].absolute_path) or "body"
        explained = "; ".join(_explain(error) for error in errors[:5])
        raise MalformedBody(f"not a valid PipelineJobEvent: {explained}", field=field)
    return Delivery(
        job_uuid=message["uuid"],
        token=message.get("token", ""),
        event=message["event"],
        data=message.get("data", {}),
        idempotency_key=message.get("idempotency_key"),
    )
