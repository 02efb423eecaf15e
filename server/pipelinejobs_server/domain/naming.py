"""Session names and archive paths."""

from __future__ import annotations

import secrets
import string
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from .identity import LINK_KINDS, link_uuid

DEFAULT_ARCHIVE_TEMPLATE = (
    "/products/v1/{lab_uuid}/{experiment_uuid}/{sample_uuid}/{pipeline_uuid}/{session}-{timestamp}"
)
ARCHIVE_FIELDS = (
    "lab_uuid",
    "experiment_uuid",
    "sample_uuid",
    "pipeline_uuid",
    "job_uuid",
    "session",
    "timestamp",
)

_ADJECTIVES = (
    "able", "amber", "bold", "brave", "brisk", "calm", "clever", "cosmic", "crisp", "daring",
    "eager", "fancy", "fierce", "gentle", "glad", "golden", "grand", "happy", "hidden", "jolly",
    "keen", "kind", "lively", "lucky", "merry", "mighty", "nimble", "noble", "proud", "proven",
    "quick", "quiet", "rapid", "rustic", "sharp", "shiny", "silent", "solid", "steady", "swift",
    "tidy", "vivid", "warm", "wise", "witty", "young", "zesty",
)  # fmt: skip
_ANIMALS = (
    "badger", "bat", "bear", "beaver", "bison", "camel", "cat", "crane", "crow", "deer", "dingo",
    "dolphin", "eagle", "falcon", "ferret", "finch", "fox", "gecko", "goat", "hare", "hawk", "heron",
    "ibex", "jackal", "koala", "lemur", "lion", "lynx", "marten", "mole", "moose", "newt", "otter",
    "owl", "panda", "pig", "puffin", "quail", "raven", "seal", "shrew", "snake", "stoat", "swan",
    "tapir", "tiger", "viper", "walrus", "whale", "wolf", "yak", "zebra",
)  # fmt: skip


def session_name() -> str:
    return f"{secrets.choice(_ADJECTIVES)}-{secrets.choice(_ANIMALS)}"


def validate_template(template: str) -> None:
    """Raise ValueError unless ``template`` uses only plain known fields and keeps jobs apart.

    Attribute and index access (``{session.__class__}``) are refused: the template is configuration, but
    it should not be able to reach into objects. A template must contain ``{job_uuid}`` or
    ``{timestamp}``, or two jobs could be given the same directory.
    """
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as error:
        raise ValueError(f"archive path template {template!r}: {error}") from error
    for name in fields:
        if name not in ARCHIVE_FIELDS:
            raise ValueError(
                f"archive path template {template!r}: unknown field {{{name}}}; fields: {ARCHIVE_FIELDS}"
            )
    if "job_uuid" not in fields and "timestamp" not in fields:
        raise ValueError(f"archive path template {template!r} needs {{job_uuid}} or {{timestamp}}")


def archive_path(
    template: str,
    *,
    pipeline_uuid: str,
    job_uuid: str,
    links: Mapping[str, Sequence[str]],
    session: str,
    created: datetime,
) -> str:
    fields = {f"{kind}_uuid": link_uuid(kind, links.get(kind, ())) for kind in LINK_KINDS}
    fields.update(
        pipeline_uuid=pipeline_uuid,
        job_uuid=job_uuid,
        session=session,
        timestamp=created.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ"),
    )
    return template.format(**fields)
