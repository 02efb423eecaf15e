"""Pipeline, job and link UUIDs (domain/identity.py) and the test vectors published in docs/identity.md.

The vectors are literals, computed once and pinned: any change to the encoding or the namespaces breaks
them, which is the point — every stored job UUID would change with it. The last test checks that the
same literals are in docs/identity.md, so the document other languages follow cannot go stale.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from pipelinejobs_server.domain import identity
from tests.support import ROOT

DOC = ROOT / "docs" / "identity.md"

SEED_PIPELINE = "f0f417f2-ba8b-5ac4-b421-255b69553391"
SEED_LINKS = {"lab": ["UW_BIOFAB"], "experiment": ["Yeast-Gates"], "sample": ["sample.uw_biofab.133737/A2"]}

NAMESPACES = [
    ("NAMESPACE", identity.NAMESPACE, "33bbbc26-4f0d-5e33-8085-590fd62e3df4"),
    ("PIPELINE_NAMESPACE", identity.PIPELINE_NAMESPACE, "2e173d23-0d39-5243-8f6e-83670e02ac0e"),
    ("JOB_NAMESPACE", identity.JOB_NAMESPACE, "9b5da5e3-0b6e-5749-8c6c-8d80dbb18833"),
    ("LINK_NAMESPACE", identity.LINK_NAMESPACE, "44de3684-9374-52be-a970-4b5e244c35af"),
]

# (links, data, canonical document, job uuid), all with the seed's pipeline.
JOB_VECTORS: list[tuple[dict[str, list[str]], dict[str, Any], str, str]] = [
    (
        SEED_LINKS,
        {},
        '{"data":{},"links":{"experiment":["Yeast-Gates"],"lab":["UW_BIOFAB"],'
        '"sample":["sample.uw_biofab.133737/A2"]},"pipeline_uuid":"f0f417f2-ba8b-5ac4-b421-255b69553391","v":1}',
        "dcb51aec-e1ff-5201-9234-c249f79a79b7",
    ),
    (
        SEED_LINKS,
        {"key1": "value1", "n": 1},
        '{"data":{"key1":"value1","n":1},"links":{"experiment":["Yeast-Gates"],"lab":["UW_BIOFAB"],'
        '"sample":["sample.uw_biofab.133737/A2"]},"pipeline_uuid":"f0f417f2-ba8b-5ac4-b421-255b69553391","v":1}',
        "01e5b44c-53ee-56e2-89a8-b25a987303e3",
    ),
    (
        # Unsorted, duplicated and empty link values; a missing kind; floats, nesting and non-ASCII in data.
        {"lab": ["UW_BIOFAB"], "sample": ["s2", "s1", "s2", ""]},
        {
            "temperature": 30.5,
            "ratio": 2.0,
            "name": "Müller",
            "nested": {"b": [1, 2], "a": None, "flag": True},
        },
        '{"data":{"name":"Müller","nested":{"a":null,"b":[1,2],"flag":true},"ratio":2,"temperature":30.5},'
        '"links":{"experiment":[],"lab":["UW_BIOFAB"],"sample":["s1","s2"]},'
        '"pipeline_uuid":"f0f417f2-ba8b-5ac4-b421-255b69553391","v":1}',
        "5cc11629-bfc2-544c-888d-35395f14e76c",
    ),
]

# (kind, values, canonical document, link uuid)
LINK_VECTORS = [
    ("lab", ["UW_BIOFAB"], '{"kind":"lab","values":["UW_BIOFAB"]}', "5b3b7a55-7aa8-569f-9b5c-b034654dba48"),
    (
        "experiment",
        ["Yeast-Gates"],
        '{"kind":"experiment","values":["Yeast-Gates"]}',
        "c15c23b3-fa23-5179-8095-87e98095860f",
    ),
    (
        "sample",
        ["sample.uw_biofab.133737/A2"],
        '{"kind":"sample","values":["sample.uw_biofab.133737/A2"]}',
        "8d4b6f5e-b938-5f9a-a913-13db7ea5b3bd",
    ),
    ("lab", [], '{"kind":"lab","values":[]}', "058a6c9b-0810-5432-8d79-35236be215f9"),
    (
        "sample",
        ["s2", "s1", "s2"],
        '{"kind":"sample","values":["s1","s2"]}',
        "2fccfe55-0bea-51f2-a601-099756ce370b",
    ),
]

# (components, options, canonical document, pipeline uuid)
PIPELINE_VECTORS: list[tuple[list[tuple[str, str]], dict[str, Any], str, str]] = [
    ([], {}, '{"components":[],"options":{}}', "206e1837-d119-5374-a8f4-d9755fadcf61"),
    (
        [("python3", "3.11"), ("fcs-etl", "0.4.0"), ("python3", "3.11")],
        {"max_cells": 10000, "gate": "FSC-A"},
        '{"components":[{"id":"fcs-etl","version":"0.4.0"},{"id":"python3","version":"3.11"}],'
        '"options":{"gate":"FSC-A","max_cells":10000}}',
        "4c8bf1f8-d796-56d1-afe1-dce213a82733",
    ),
]


@pytest.mark.parametrize(("name", "namespace", "literal"), NAMESPACES, ids=[n[0] for n in NAMESPACES])
def test_namespaces(name: str, namespace: uuid.UUID, literal: str) -> None:
    assert str(namespace) == literal


def test_namespaces_are_derived_from_the_project_url() -> None:
    root = uuid.uuid5(uuid.NAMESPACE_URL, "https://pipelinejobs.dev/ns/v1")
    assert root == identity.NAMESPACE
    assert uuid.uuid5(root, "pipeline") == identity.PIPELINE_NAMESPACE
    assert uuid.uuid5(root, "job") == identity.JOB_NAMESPACE
    assert uuid.uuid5(root, "link") == identity.LINK_NAMESPACE


@pytest.mark.parametrize(("links", "data", "document", "expected"), JOB_VECTORS)
def test_job_vectors(links: dict[str, list[str]], data: dict[str, Any], document: str, expected: str) -> None:
    assert identity.job_identity_document(SEED_PIPELINE, links, data) == document
    assert identity.job_uuid(SEED_PIPELINE, links, data) == expected
    # What another language does: uuid5 over the UTF-8 bytes of the document.
    assert str(uuid.uuid5(identity.JOB_NAMESPACE, document)) == expected


@pytest.mark.parametrize(("kind", "values", "document", "expected"), LINK_VECTORS)
def test_link_vectors(kind: str, values: list[str], document: str, expected: str) -> None:
    assert identity.link_uuid(kind, values) == expected
    assert str(uuid.uuid5(identity.LINK_NAMESPACE, document)) == expected


@pytest.mark.parametrize(("components", "options", "document", "expected"), PIPELINE_VECTORS)
def test_pipeline_vectors(
    components: list[tuple[str, str]], options: dict[str, Any], document: str, expected: str
) -> None:
    assert identity.pipeline_uuid(components, options) == expected
    assert str(uuid.uuid5(identity.PIPELINE_NAMESPACE, document)) == expected


def test_link_order_and_duplicates_do_not_matter() -> None:
    data = {"key1": "value1"}
    reference = identity.job_uuid(SEED_PIPELINE, {"sample": ["a", "b"], "lab": ["L"]}, data)
    shuffled = identity.job_uuid(SEED_PIPELINE, {"lab": ["L", "L"], "sample": ["b", "a", "b"]}, data)
    assert shuffled == reference
    assert identity.link_uuid("sample", ["b", "a", "a"]) == identity.link_uuid("sample", ["a", "b"])


def test_absent_and_empty_link_kinds_are_the_same() -> None:
    data: dict[str, Any] = {}
    assert identity.job_uuid(SEED_PIPELINE, {"lab": ["L"]}, data) == identity.job_uuid(
        SEED_PIPELINE, {"lab": ["L", ""], "experiment": [], "sample": []}, data
    )


def test_int_and_integral_float_in_data_give_the_same_uuid() -> None:
    as_int = identity.job_uuid(SEED_PIPELINE, SEED_LINKS, {"n": 1, "deep": {"m": [2]}})
    as_float = identity.job_uuid(SEED_PIPELINE, SEED_LINKS, {"n": 1.0, "deep": {"m": [2.0]}})
    assert as_int == as_float


def test_data_key_order_does_not_matter() -> None:
    first = identity.job_uuid(SEED_PIPELINE, SEED_LINKS, {"a": 1, "b": 2})
    second = identity.job_uuid(SEED_PIPELINE, SEED_LINKS, {"b": 2, "a": 1})
    assert first == second


@pytest.mark.parametrize(
    "other",
    [
        {"key1": "value2", "n": 1},
        {"key1": "value1", "n": 1.5},
        {"key1": "value1", "n": 1, "extra": None},
        {"key1": "value1"},
        {"key1": "value1", "n": [1]},
    ],
)
def test_different_data_gives_a_different_uuid(other: dict[str, Any]) -> None:
    reference = identity.job_uuid(SEED_PIPELINE, SEED_LINKS, {"key1": "value1", "n": 1})
    assert identity.job_uuid(SEED_PIPELINE, SEED_LINKS, other) != reference


def test_different_pipeline_or_links_give_a_different_uuid() -> None:
    reference = identity.job_uuid(SEED_PIPELINE, SEED_LINKS, {})
    other_pipeline = "4c8bf1f8-d796-56d1-afe1-dce213a82733"
    assert identity.job_uuid(other_pipeline, SEED_LINKS, {}) != reference
    assert identity.job_uuid(SEED_PIPELINE, {**SEED_LINKS, "sample": ["other"]}, {}) != reference
    # The same value under another kind is another link.
    assert identity.link_uuid("lab", ["X"]) != identity.link_uuid("sample", ["X"])


@pytest.mark.parametrize("links", [{"labs": ["L"]}, {"lab": ["L"], "project": ["P"]}, {"": ["x"]}])
def test_unknown_link_kinds_raise(links: dict[str, list[str]]) -> None:
    with pytest.raises(ValueError, match="unknown link kinds"):
        identity.job_uuid(SEED_PIPELINE, links, {})


def test_normalize_links() -> None:
    assert identity.normalize_links({"sample": ["b", "a", "b", ""]}) == {
        "lab": [],
        "experiment": [],
        "sample": ["a", "b"],
    }


def test_pipeline_component_order_and_duplicates_do_not_matter() -> None:
    options = {"x": 1}
    first = identity.pipeline_uuid([("a", "1"), ("b", "2")], options)
    assert identity.pipeline_uuid([("b", "2"), ("a", "1"), ("a", "1")], options) == first
    assert identity.pipeline_uuid([("a", "1"), ("b", "3")], options) != first
    assert identity.pipeline_uuid([("a", "1"), ("b", "2")], {"x": 2}) != first


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("dcb51aec-e1ff-5201-9234-c249f79a79b7", True),
        ("00000000-0000-0000-0000-000000000000", True),
        # Only the canonical form: identities are compared as strings in the store.
        ("DCB51AEC-E1FF-5201-9234-C249F79A79B7", False),
        ("dcb51aece1ff52019234c249f79a79b7", False),
        ("{dcb51aec-e1ff-5201-9234-c249f79a79b7}", False),
        ("urn:uuid:dcb51aec-e1ff-5201-9234-c249f79a79b7", False),
        (" dcb51aec-e1ff-5201-9234-c249f79a79b7", False),
        ("dcb51aec-e1ff-5201-9234-c249f79a79b", False),
        ("not-a-uuid", False),
        ("", False),
    ],
)
def test_is_uuid(text: str, expected: bool) -> None:
    assert identity.is_uuid(text) is expected


def test_vectors_are_published_in_docs() -> None:
    text = DOC.read_text(encoding="utf-8")
    literals = [literal for _, _, literal in NAMESPACES]
    for vectors in (JOB_VECTORS, LINK_VECTORS, PIPELINE_VECTORS):
        for *_, document, expected in vectors:
            literals += [document, expected]
    missing = [literal for literal in literals if literal not in text]
    assert not missing, f"docs/identity.md lacks: {missing}"
