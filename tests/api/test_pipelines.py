"""PipelineService through the real gRPC API: idempotent registration, reads, paging and errors."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from google.protobuf import json_format

from pipelinejobs_client.api.v1 import pipeline_pb2, pipeline_service_pb2
from pipelinejobs_client.api.v1.pipeline_service_pb2 import (
    GetPipelineRequest,
    ListPipelinesRequest,
    RegisterPipelineRequest,
)
from tests.support import ADMIN, CLIENT, Stubs, auth, error_info

Metadata = tuple[tuple[str, str], ...]


def component(cid: str, version: str = "") -> pipeline_pb2.PipelineComponent:
    return pipeline_pb2.PipelineComponent(id=cid, version=version)


def register(
    s: Stubs,
    components: list[pipeline_pb2.PipelineComponent],
    options: dict[str, Any] | None = None,
    name: str = "fcs-etl",
    metadata: Metadata = CLIENT,
) -> pipeline_service_pb2.RegisterPipelineResponse:
    request = RegisterPipelineRequest(name=name, description="flow cytometry ETL", components=components)
    if options:
        request.options.update(options)
    reply: pipeline_service_pb2.RegisterPipelineResponse = s.pipelines.RegisterPipeline(
        request, metadata=metadata
    )
    return reply


def refused(call: Callable[[], object], code: grpc.StatusCode, reason: str) -> dict[str, str]:
    """Run ``call``, check it fails with ``code`` and ErrorInfo ``reason``; return the error metadata."""
    with pytest.raises(grpc.RpcError) as caught:
        call()
    error: grpc.Call = caught.value  # type: ignore[assignment]
    assert error.code() == code, error.details()
    info = error_info(caught.value)
    assert info.reason == reason
    return dict(info.metadata)


def token_of(document: object) -> str:
    raw = json.dumps(document, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


ETL = [component("fcs-etl-reactor", "0.4.0"), component("fcs-etl-app", "1.2.0")]


def test_register_is_idempotent_regardless_of_component_order(api: Stubs) -> None:
    first = register(api, ETL, {"threads": 4})
    again = register(api, list(reversed(ETL)), {"threads": 4})

    assert first.created
    assert not again.created
    assert again.pipeline.uuid == first.pipeline.uuid
    assert again.pipeline.create_time == first.pipeline.create_time
    uuid.UUID(first.pipeline.uuid)


def test_different_options_or_components_give_different_pipelines(api: Stubs) -> None:
    base = register(api, ETL, {"threads": 4}).pipeline.uuid
    other_options = register(api, ETL, {"threads": 8})
    no_options = register(api, ETL)
    other_version = register(api, [ETL[0], component("fcs-etl-app", "1.3.0")], {"threads": 4})

    assert [other_options.created, no_options.created, other_version.created] == [True, True, True]
    uuids = {base, other_options.pipeline.uuid, no_options.pipeline.uuid, other_version.pipeline.uuid}
    assert len(uuids) == 4


def test_get_pipeline_returns_the_registered_record(api: Stubs) -> None:
    registered = register(api, ETL, {"threads": 4, "gating": {"scheme": "auto"}}).pipeline

    got = api.pipelines.GetPipeline(GetPipelineRequest(uuid=registered.uuid), metadata=CLIENT).pipeline

    assert got == registered
    assert got.name == "fcs-etl"
    assert got.description == "flow cytometry ETL"
    # Components come back sorted, as they were hashed.
    assert [(c.id, c.version) for c in got.components] == [
        ("fcs-etl-app", "1.2.0"),
        ("fcs-etl-reactor", "0.4.0"),
    ]
    assert json_format.MessageToDict(got.options) == {"threads": 4, "gating": {"scheme": "auto"}}


def test_get_unknown_pipeline_is_not_found(api: Stubs) -> None:
    unknown = str(uuid.uuid4())
    metadata = refused(
        lambda: api.pipelines.GetPipeline(GetPipelineRequest(uuid=unknown), metadata=CLIENT),
        grpc.StatusCode.NOT_FOUND,
        "PIPELINE_NOT_FOUND",
    )
    assert metadata == {"uuid": unknown}


# Fixed values, not fresh uuids: a test id must be the same each time the suite is collected (a rerun
# by id, a runner that collects in several processes).
@pytest.mark.parametrize(
    "bad",
    ["", "not-a-uuid", "CBC82792-0CF7-4B61-B662-40485439643E", "57426318e8344f729ec839921193ebf1"],
    ids=repr,
)
def test_get_pipeline_with_an_invalid_uuid_is_invalid_argument(api: Stubs, bad: str) -> None:
    metadata = refused(
        lambda: api.pipelines.GetPipeline(GetPipelineRequest(uuid=bad), metadata=CLIENT),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_ARGUMENT",
    )
    assert metadata == {"field": "uuid"}


CALLS: dict[str, Callable[[Stubs, Metadata], object]] = {
    "RegisterPipeline": lambda s, m: register(s, ETL, metadata=m),
    "GetPipeline": lambda s, m: s.pipelines.GetPipeline(
        GetPipelineRequest(uuid=str(uuid.uuid4())), metadata=m
    ),
    "ListPipelines": lambda s, m: s.pipelines.ListPipelines(ListPipelinesRequest(), metadata=m),
}


@pytest.mark.parametrize("rpc", sorted(CALLS))
def test_calls_without_an_api_key_are_unauthenticated(api: Stubs, rpc: str) -> None:
    refused(lambda: CALLS[rpc](api, ()), grpc.StatusCode.UNAUTHENTICATED, "API_KEY_REQUIRED")


@pytest.mark.parametrize("rpc", sorted(CALLS))
def test_calls_with_a_wrong_api_key_are_unauthenticated(api: Stubs, rpc: str) -> None:
    wrong = auth("not-a-configured-key-0123456789")
    refused(lambda: CALLS[rpc](api, wrong), grpc.StatusCode.UNAUTHENTICATED, "INVALID_API_KEY")


def test_refused_registrations_store_nothing(api: Stubs) -> None:
    refused(lambda: register(api, ETL, metadata=()), grpc.StatusCode.UNAUTHENTICATED, "API_KEY_REQUIRED")
    listed = api.pipelines.ListPipelines(ListPipelinesRequest(), metadata=ADMIN)
    assert list(listed.pipelines) == []


@pytest.mark.parametrize(
    ("name", "components", "field"),
    [
        ("fcs-etl", [], "components"),
        ("", ETL, "name"),
        ("   ", ETL, "name"),
        ("fcs-etl", [component("", "1.0")], "components.id"),
    ],
    ids=["no components", "empty name", "blank name", "component without id"],
)
def test_invalid_registration_names_the_field(
    api: Stubs, name: str, components: list[pipeline_pb2.PipelineComponent], field: str
) -> None:
    metadata = refused(
        lambda: register(api, components, name=name),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_ARGUMENT",
    )
    assert metadata == {"field": field}
    listed = api.pipelines.ListPipelines(ListPipelinesRequest(), metadata=CLIENT)
    assert list(listed.pipelines) == []


def test_list_pipelines_pages_through_all_oldest_first(api: Stubs) -> None:
    registered = [register(api, [component(f"app-{i:02d}", "1.0")]).pipeline for i in range(25)]

    pages: list[list[pipeline_pb2.Pipeline]] = []
    token = ""
    while True:
        reply = api.pipelines.ListPipelines(
            ListPipelinesRequest(page_size=10, page_token=token), metadata=CLIENT
        )
        pages.append(list(reply.pipelines))
        token = reply.next_page_token
        if not token:
            break

    assert [len(page) for page in pages] == [10, 10, 5]
    seen = [pipeline for page in pages for pipeline in page]
    assert len({p.uuid for p in seen}) == 25
    assert {p.uuid for p in seen} == {p.uuid for p in registered}
    # Oldest first; pipelines registered in the same millisecond are ordered by uuid.
    keys = [(p.create_time.ToNanoseconds(), p.uuid) for p in seen]
    assert keys == sorted(keys)
    assert seen == sorted(registered, key=lambda p: (p.create_time.ToNanoseconds(), p.uuid))


def test_list_pipelines_with_an_exact_last_page_ends_with_an_empty_page(api: Stubs) -> None:
    for i in range(4):
        register(api, [component(f"app-{i}", "1.0")])
    first = api.pipelines.ListPipelines(ListPipelinesRequest(page_size=2), metadata=CLIENT)
    second = api.pipelines.ListPipelines(
        ListPipelinesRequest(page_size=2, page_token=first.next_page_token), metadata=CLIENT
    )
    assert len(first.pipelines) == len(second.pipelines) == 2
    assert second.next_page_token
    last = api.pipelines.ListPipelines(
        ListPipelinesRequest(page_size=2, page_token=second.next_page_token), metadata=CLIENT
    )
    assert list(last.pipelines) == []
    assert last.next_page_token == ""


@pytest.mark.parametrize(
    "token",
    [
        "not a token!",
        "%%%%",
        token_of([1, 2, 3]),
        token_of({"l": "events:x", "p": {"seq": 1}}),
        token_of({"l": "pipelines", "p": {"t": "yesterday", "id": "x"}}),
        token_of({"l": "pipelines", "p": {"id": "x"}}),
        token_of({"l": "pipelines", "p": {"t": 5, "id": "x"}}),
    ],
    ids=[
        "not base64",
        "percent signs",
        "not an object",
        "another listing",
        "bad time",
        "no time",
        "time not a string",
    ],
)
def test_bad_page_token_is_invalid_argument(api: Stubs, token: str) -> None:
    metadata = refused(
        lambda: api.pipelines.ListPipelines(ListPipelinesRequest(page_token=token), metadata=CLIENT),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_ARGUMENT",
    )
    assert metadata == {"field": "page_token"}


def test_negative_page_size_is_invalid_argument(api: Stubs) -> None:
    metadata = refused(
        lambda: api.pipelines.ListPipelines(ListPipelinesRequest(page_size=-1), metadata=CLIENT),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_ARGUMENT",
    )
    assert metadata == {"field": "page_size"}
