"""What a PipelineJob reads off a reactor: who is running (agent, task, session) and the message it got.

A "reactor" is anything shaped like the Reactors SDK's ``Reactor`` object; nothing here imports that SDK.
The attributes read are ``uid`` (the Abaco actor id), ``execid`` (the execution id), ``nickname`` (an
adjective-animal name for the execution) and ``context.message_dict`` / ``context.raw_message``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Caller:
    """The job's ``agent``, ``task`` and ``session`` as CreateJob takes them ("" when unknown)."""

    agent: str = ""
    task: str = ""
    session: str = ""


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _field(container: object, name: str) -> object:
    # The SDK's context is an attribute dict; a plain dict or an object works as well.
    if isinstance(container, Mapping):
        return container.get(name)
    return getattr(container, name, None)


def caller(rx: object | None) -> Caller:
    """The reactor's actor id, execution id and nickname as agent, task and session."""
    if rx is None:
        return Caller()
    return Caller(
        agent=_text(getattr(rx, "uid", None)),
        task=_text(getattr(rx, "execid", None)),
        session=_text(getattr(rx, "nickname", None)),
    )


def message(rx: object | None) -> dict[str, Any]:
    """The message the reactor was sent, when it is a JSON object; else ``{}``.

    The seed makes it a job's default ``data``: the parameterization a reactor was invoked with.
    """
    context = getattr(rx, "context", None) if rx is not None else None
    if context is None:
        return {}
    parsed = _field(context, "message_dict")
    if not parsed:
        raw = _field(context, "raw_message")
        if isinstance(raw, str) and raw.strip():
            try:
                parsed = json.loads(raw)
            except ValueError:
                return {}  # a plain-text message is not a parameterization
    return dict(parsed) if isinstance(parsed, Mapping) else {}
