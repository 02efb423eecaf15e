"""Stable identities: pipeline and job UUIDs, and the link UUIDs used in archive paths.

All are ``uuid5`` values over canonical JSON (see canonical.py), so any language can reproduce them.
docs/identity.md specifies the encodings and lists test vectors checked by tests/domain/test_identity.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from .canonical import canonical_json
from .errors import InvalidArgument

# Fixed project namespaces. Changing any of them changes every identity: never do it.
NAMESPACE: Final = uuid.uuid5(uuid.NAMESPACE_URL, "https://pipelinejobs.dev/ns/v1")
PIPELINE_NAMESPACE: Final = uuid.uuid5(NAMESPACE, "pipeline")
JOB_NAMESPACE: Final = uuid.uuid5(NAMESPACE, "job")
LINK_NAMESPACE: Final = uuid.uuid5(NAMESPACE, "link")

JOB_IDENTITY_VERSION: Final = 1
LINK_KINDS: Final = ("lab", "experiment", "sample")


def normalize_links(links: Mapping[str, Iterable[str]]) -> dict[str, list[str]]:
    """Every link kind present, each list sorted and de-duplicated; empty strings dropped."""
    unknown = set(links) - set(LINK_KINDS)
    if unknown:
        raise ValueError(f"unknown link kinds: {sorted(unknown)}")
    if any(isinstance(values, str) for values in links.values()):
        # A bare string is an iterable of characters: refuse it rather than hash its letters.
        raise ValueError("each link kind takes a list of strings, not a string")
    return {kind: sorted({value for value in links.get(kind, ()) if value}) for kind in LINK_KINDS}


def normalize_components(components: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    return sorted(set(components))


def pipeline_uuid(components: Iterable[tuple[str, str]], options: Mapping[str, Any]) -> str:
    encoded = canonical_json(
        {
            "components": [
                {"id": cid, "version": version} for cid, version in normalize_components(components)
            ],
            "options": dict(options),
        }
    )
    return str(uuid.uuid5(PIPELINE_NAMESPACE, encoded))


def job_identity_document(pipeline: str, links: Mapping[str, Iterable[str]], data: Mapping[str, Any]) -> str:
    """The versioned canonical JSON a job UUID is computed over."""
    return canonical_json(
        {
            "v": JOB_IDENTITY_VERSION,
            "pipeline_uuid": pipeline,
            "links": normalize_links(links),
            "data": dict(data),
        }
    )


def job_uuid(pipeline: str, links: Mapping[str, Iterable[str]], data: Mapping[str, Any]) -> str:
    return str(uuid.uuid5(JOB_NAMESPACE, job_identity_document(pipeline, links, data)))


def link_uuid(kind: str, values: Sequence[str]) -> str:
    """The UUID of one kind of link (several values are one sorted, de-duplicated list)."""
    if isinstance(values, str):
        raise ValueError("link values are a list of strings, not a string")
    normalized = sorted({value for value in values if value})
    return str(uuid.uuid5(LINK_NAMESPACE, canonical_json({"kind": kind, "values": normalized})))


def is_uuid(text: str) -> bool:
    try:
        return str(uuid.UUID(text)) == text
    except ValueError:
        return False


def checked_uuid(value: str, field: str) -> str:
    """``value`` if it is a UUID in the form the service writes; INVALID_ARGUMENT naming ``field`` if not.

    Every edge that takes a job or pipeline uuid (gRPC requests, the dashboard's paths) checks it so.
    """
    if not value:
        raise InvalidArgument(f"{field} is required", field=field)
    if not is_uuid(value):
        raise InvalidArgument(
            f"{field} must be a lower-case hyphenated UUID, got {value[:64]!r}", field=field
        )
    return value
