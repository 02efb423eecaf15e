"""The OpenAPI 3.1 description of the shim, served at ``GET /openapi.json``.

Built from the same objects the shim checks requests with (the status tables, the PipelineJobEvent
schema, the error reasons), so the description cannot drift from the behaviour; the fuzz test
(tests/system/test_shim_fuzz.py) generates requests from it.
"""

from __future__ import annotations

from typing import Any

from .messages import EVENT_SCHEMA, UUID_PATTERN
from .statuses import AGAVE, TAPIS


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _answers(*errors: tuple[int, str]) -> dict[str, Any]:
    outcome = {"$ref": "#/components/schemas/Outcome"}
    error = {"$ref": "#/components/schemas/Error"}
    answers: dict[str, Any] = {
        "200": {
            "description": "applied, replayed, refused by the state machine, or unmapped",
            "content": _json(outcome),
        }
    }
    for code, why in errors:
        answers[str(code)] = {"description": why, "content": _json(error)}
    answers["503"] = {
        "description": "the server or its database is unavailable; retry",
        "content": _json(error),
    }
    return answers


_CALLBACK_ERRORS = (
    (400, "malformed: missing or bad uuid/status, unresolved ${STATUS}, unusable body"),
    (401, "missing or invalid job token"),
    (403, "missing or wrong x-nonce (when one is configured)"),
    (404, "unknown job"),
    (413, "body over the limit"),
)


def _query(name: str, description: str, schema: dict[str, Any], required: bool = True) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "description": description, "schema": schema}


_JOB = [
    _query("uuid", "the job's uuid", {"type": "string", "pattern": UUID_PATTERN}),
    _query("token", "the job's token (never logged)", {"type": "string", "minLength": 1}),
    _query("x-nonce", "shared secret, when the shim is configured with one", {"type": "string"}, False),
]
_AGAVE_STATUS = _query(
    "status", "the Agave job status (Agave substitutes ${STATUS})", {"type": "string", "enum": list(AGAVE)}
)
_AGAVE_BODY = {
    "required": False,
    "description": "the Agave job JSON; any other body is kept as text (docs/callbacks.md)",
    "content": {
        "application/json": {"schema": {"type": "object"}},
        "text/plain": {"schema": {"type": "string"}},
    },
}


def document() -> dict[str, Any]:
    agave = {
        "summary": "Agave v2 job notification",
        "parameters": [*_JOB, _AGAVE_STATUS],
        "responses": _answers(*_CALLBACK_ERRORS),
    }
    tapis_type = {"type": "string", "enum": [f"jobs.JOB_NEW_STATUS.{status}" for status in TAPIS]}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "PipelineJobs callback shim",
            "version": "1",
            "description": "Executor callbacks and event messages, relayed to the PipelineJobs gRPC server.",
        },
        "paths": {
            "/v1/callbacks/agave": {
                "get": {**agave, "operationId": "agaveCallbackGet"},
                "post": {**agave, "operationId": "agaveCallbackPost", "requestBody": _AGAVE_BODY},
            },
            "/v1/callbacks/tapis": {
                "post": {
                    "operationId": "tapisCallback",
                    "summary": "Tapis v3 job notification (CloudEvents-shaped)",
                    "parameters": _JOB,
                    "requestBody": {
                        "required": True,
                        "content": _json(
                            {"type": "object", "required": ["type"], "properties": {"type": tapis_type}}
                        ),
                    },
                    "responses": _answers(*_CALLBACK_ERRORS),
                }
            },
            "/v1/events": {
                "post": {
                    "operationId": "sendEvent",
                    "summary": "the seed's PipelineJobEvent message",
                    "requestBody": {
                        "required": True,
                        "content": _json({"$ref": "#/components/schemas/PipelineJobEvent"}),
                    },
                    "responses": _answers(*_CALLBACK_ERRORS[:2], *_CALLBACK_ERRORS[3:]),
                }
            },
            "/v1/feed/events": {
                "get": {
                    "operationId": "feedEvents",
                    "summary": "the event feed of every job as Server-Sent Events (docs/events.md): "
                    "one message per entry, its id the entry's cursor; Last-Event-ID or ?after= resumes "
                    "after it. Needs 'Authorization: Bearer <client key>'; repeatable filters pipeline, "
                    "job, event, to_state, source, lab, experiment, sample",
                    "parameters": [
                        {"name": "after", "in": "query", "required": False, "schema": {"type": "string"}},
                        *[
                            {"name": name, "in": "query", "required": False, "schema": {"type": "string"}}
                            for name in (
                                "pipeline",
                                "job",
                                "event",
                                "to_state",
                                "source",
                                "lab",
                                "experiment",
                            )
                        ],
                    ],
                    "responses": {
                        "200": {"description": "the stream", "content": {"text/event-stream": {}}},
                        "400": {"description": "a bad cursor or filter"},
                        "401": {"description": "no valid client key"},
                        "409": {"description": "CURSOR_UNKNOWN: a cursor of another feed"},
                        "410": {"description": "CURSOR_EXPIRED: past the retention"},
                    },
                }
            },
            "/actors/v2/{manager_id}/messages": {
                "post": {
                    "operationId": "abacoMessage",
                    "summary": "drop-in for the seed's Abaco URL: an Agave callback (status in the query) "
                    'or a PipelineJobEvent body (bare, or as {"message": …})',
                    "parameters": [
                        {"name": "manager_id", "in": "path", "required": True, "schema": {"type": "string"}},
                        *[{**parameter, "required": False} for parameter in _JOB],
                        {**_AGAVE_STATUS, "required": False},
                    ],
                    "requestBody": {"required": False, "content": _json({"type": "object"})},
                    "responses": _answers(*_CALLBACK_ERRORS),
                }
            },
            "/healthz": {
                "get": {
                    "operationId": "health",
                    "summary": "ready when the gRPC server answers its health check with SERVING",
                    "responses": {
                        "200": {"description": "ready", "content": _json({"type": "object"})},
                        "503": {"description": "not ready", "content": _json({"type": "object"})},
                    },
                }
            },
            "/metrics": {
                "get": {
                    "operationId": "metrics",
                    "summary": "Prometheus metrics",
                    "responses": {
                        "200": {
                            "description": "text exposition format",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
        },
        "components": {
            "schemas": {
                "PipelineJobEvent": EVENT_SCHEMA,
                "Outcome": {
                    "type": "object",
                    "required": ["uuid", "event", "applied", "state", "reason"],
                    "properties": {
                        "uuid": {"type": "string"},
                        "event": {
                            "type": ["string", "null"],
                            "description": "the event sent; null if unmapped",
                        },
                        "status": {
                            "type": ["string", "null"],
                            "description": "the executor's status, for callbacks",
                        },
                        "applied": {"type": "boolean", "description": "this request added a history entry"},
                        "replayed": {"type": "boolean"},
                        "outcome": {"type": "string", "enum": ["applied", "replayed", "refused", "unmapped"]},
                        "state": {"type": "string", "description": "the job's state afterwards"},
                        "seq": {"type": ["integer", "null"]},
                        "reason": {
                            "type": ["string", "null"],
                            "description": "DUPLICATE, INVALID_TRANSITION, UNMAPPED_STATUS, …",
                        },
                        "message": {"type": ["string", "null"]},
                    },
                },
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["status", "reason", "message"],
                            "properties": {
                                "status": {"type": "integer"},
                                "reason": {"type": "string"},
                                "message": {"type": "string"},
                                "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
                            },
                        }
                    },
                },
            }
        },
    }
