"""The caps table (api/caps.py) on messages directly: nested fields are named by their path, Structs are
left to the byte limits, and a message type with an undeclared repeated field cannot be planned."""

from __future__ import annotations

import pytest

from pipelinejobs_client.api.v1 import job_pb2, job_service_pb2
from pipelinejobs_server.api import caps
from pipelinejobs_server.domain.errors import InvalidArgument


def test_a_nested_field_past_its_cap_is_named_by_its_path() -> None:
    request = job_service_pb2.ListJobsRequest(links=job_pb2.JobLinks(experiment=["e"] * 101))
    with pytest.raises(InvalidArgument) as caught:
        caps.check(request)
    assert caught.value.metadata == {"field": "links.experiment"}
    caps.check(job_service_pb2.ListJobsRequest(links=job_pb2.JobLinks(experiment=["e"] * 100)))


def test_structs_are_not_counted_their_bytes_are_checked_by_the_service() -> None:
    request = job_service_pb2.SendEventRequest()
    request.data.update({f"k{n}": [0] * 1000 for n in range(200)})
    caps.check(request)


def test_a_repeated_field_without_a_cap_cannot_be_planned() -> None:
    # A response type has repeated fields the table does not (and need not) declare: it stands in for a
    # request type that gained a field without a cap, which stops the server's start the same way.
    with pytest.raises(caps.UndeclaredField, match=r"pipelinejobs\.v1\.ListJobsResponse\.jobs"):
        caps.prepare(iter([job_service_pb2.ListJobsResponse.DESCRIPTOR]))
