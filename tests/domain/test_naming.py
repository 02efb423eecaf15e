"""Session names and archive paths (domain/naming.py); the path example is the one in docs/identity.md."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone

import pytest

from pipelinejobs_server.domain import naming
from pipelinejobs_server.domain.identity import link_uuid
from tests.support import ROOT

DOC = ROOT / "docs" / "identity.md"

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
PIPELINE = "f0f417f2-ba8b-5ac4-b421-255b69553391"
JOB = "dcb51aec-e1ff-5201-9234-c249f79a79b7"
SEED_LINKS = {"lab": ["UW_BIOFAB"], "experiment": ["Yeast-Gates"], "sample": ["sample.uw_biofab.133737/A2"]}
CREATED = datetime(2018, 9, 13, 16, 28, 43, 987000, tzinfo=UTC)
SEED_PATH = (
    "/products/v1/5b3b7a55-7aa8-569f-9b5c-b034654dba48/c15c23b3-fa23-5179-8095-87e98095860f/"
    "8d4b6f5e-b938-5f9a-a913-13db7ea5b3bd/f0f417f2-ba8b-5ac4-b421-255b69553391/solid-snake-20180913T162843Z"
)


def _default_path(
    links: Mapping[str, Sequence[str]] = SEED_LINKS, created: datetime = CREATED, session: str = "solid-snake"
) -> str:
    return naming.archive_path(
        naming.DEFAULT_ARCHIVE_TEMPLATE,
        pipeline_uuid=PIPELINE,
        job_uuid=JOB,
        links=links,
        session=session,
        created=created,
    )


def test_session_name_shape() -> None:
    for _ in range(200):
        assert re.fullmatch(r"[a-z]+-[a-z]+", naming.session_name())


def test_session_names_vary() -> None:
    # Enough combinations that two jobs created in the same second rarely share a path.
    assert len({naming.session_name() for _ in range(200)}) > 100


def test_default_template_shape() -> None:
    path = _default_path()
    pattern = rf"/products/v1/{UUID}/{UUID}/{UUID}/{re.escape(PIPELINE)}/solid-snake-\d{{8}}T\d{{6}}Z"
    assert re.fullmatch(pattern, path)


def test_default_template_example_from_docs() -> None:
    assert _default_path() == SEED_PATH
    assert SEED_PATH in DOC.read_text(encoding="utf-8")


def test_path_segments_are_link_uuids() -> None:
    segments = _default_path().split("/")
    assert segments[3:6] == [link_uuid(kind, SEED_LINKS[kind]) for kind in ("lab", "experiment", "sample")]


def test_missing_link_kind_uses_the_empty_list_uuid() -> None:
    path = _default_path(links={"lab": ["UW_BIOFAB"]})
    assert path.split("/")[4] == link_uuid("experiment", [])
    assert path.split("/")[5] == link_uuid("sample", [])


def test_timestamp_is_utc_to_the_second() -> None:
    plus_two = timezone(timedelta(hours=2))
    path = _default_path(created=datetime(2018, 9, 13, 18, 28, 43, 999999, tzinfo=plus_two))
    assert path.endswith("-20180913T162843Z")


def test_custom_template_with_every_field() -> None:
    template = "/{pipeline_uuid}/{job_uuid}/{lab_uuid}/{experiment_uuid}/{sample_uuid}/{session}/{timestamp}"
    naming.validate_template(template)
    path = naming.archive_path(
        template, pipeline_uuid=PIPELINE, job_uuid=JOB, links=SEED_LINKS, session="s", created=CREATED
    )
    assert path.startswith(f"/{PIPELINE}/{JOB}/")
    assert path.endswith("/s/20180913T162843Z")


def test_validate_template_accepts_the_default() -> None:
    naming.validate_template(naming.DEFAULT_ARCHIVE_TEMPLATE)


@pytest.mark.parametrize(
    "template",
    [
        "/products/{lab}/{session}",  # unknown field
        "/products/{LAB_UUID}/{session}",  # fields are case-sensitive
        "/products/{}/{session}",  # positional
        "/products/{0}",  # positional by index
        "/products/{session:d}",  # a format spec the value cannot take
        "/products/{session",  # unbalanced brace
    ],
)
def test_validate_template_rejects_bad_templates(template: str) -> None:
    with pytest.raises(ValueError, match="archive path template"):
        naming.validate_template(template)


def test_validate_template_names_the_known_fields() -> None:
    with pytest.raises(ValueError, match="lab_uuid") as raised:
        naming.validate_template("/{nope}")
    assert "nope" in str(raised.value)
