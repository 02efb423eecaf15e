"""ListJobs requests to domain filters."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf import timestamp_pb2

from pipelinejobs_client.api.v1 import job_service_pb2 as pb
from pipelinejobs_server.domain.errors import InvalidArgument
from pipelinejobs_server.domain.listing import JobFilter, JobOrder, TimeRange

from .convert import state_from_proto

_ORDERS = {
    pb.JOB_ORDER_UNSPECIFIED: JobOrder.CREATE_TIME_DESC,
    pb.JOB_ORDER_CREATE_TIME_DESC: JobOrder.CREATE_TIME_DESC,
    pb.JOB_ORDER_CREATE_TIME_ASC: JobOrder.CREATE_TIME_ASC,
    pb.JOB_ORDER_UPDATE_TIME_DESC: JobOrder.UPDATE_TIME_DESC,
    pb.JOB_ORDER_UPDATE_TIME_ASC: JobOrder.UPDATE_TIME_ASC,
}


def job_order(value: int) -> JobOrder:
    order = _ORDERS.get(pb.JobOrder.ValueType(value))
    if order is None:
        raise InvalidArgument(f"order_by must be one of the JobOrder values, got {value}", field="order_by")
    return order


def _range(message: pb.TimeRange, name: str) -> TimeRange:
    return TimeRange(
        start=_utc(message.start_time, f"{name}.start_time") if message.HasField("start_time") else None,
        end=_utc(message.end_time, f"{name}.end_time") if message.HasField("end_time") else None,
    )


def _utc(message: timestamp_pb2.Timestamp, field: str) -> datetime:
    # A Timestamp on the wire may hold any seconds and nanos; only years 1-9999 and nanos below one
    # second are a time. ToDatetime raises ValueError for the rest, which must not become INTERNAL.
    try:
        return message.ToDatetime(tzinfo=UTC)
    except ValueError as error:
        raise InvalidArgument(f"{field} is not a valid timestamp: {error}", field=field) from None


def job_filter(request: pb.ListJobsRequest) -> JobFilter:
    links = {
        "lab": tuple(request.links.lab),
        "experiment": tuple(request.links.experiment),
        "sample": tuple(request.links.sample),
    }
    return JobFilter(
        pipeline_uuid=request.pipeline_uuid,
        # Duplicates folded: a filter names each state once (caps.py allows one value per state).
        states=tuple(dict.fromkeys(state_from_proto(value, "states") for value in request.states)),
        links={kind: values for kind, values in links.items() if values},
        created=_range(request.create_time, "create_time"),
        updated=_range(request.update_time, "update_time"),
    )
