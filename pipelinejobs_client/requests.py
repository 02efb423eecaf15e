"""Request messages built from plain Python values: ``"id@version"`` components, link strings, event and
state names, datetimes, dicts.

The client's methods pass their arguments straight through, so the conversions and the checks that run
before anything is sent (an unknown event, a bad ``order_by``) live here, once.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from google.protobuf import timestamp_pb2

from pipelinejobs_client.api.v1 import feed_pb2, job_pb2, job_service_pb2, pipeline_pb2, pipeline_service_pb2

from .names import EventLike, event_value, source_value, state_value
from .payload import fill

Component = str | tuple[str, str]


def _links(values: str | Iterable[str]) -> list[str]:
    return [values] if isinstance(values, str) else list(values)


def _component(component: Component) -> pipeline_pb2.PipelineComponent:
    if isinstance(component, tuple):
        identifier, version = component
    else:
        identifier, _, version = component.partition("@")
    return pipeline_pb2.PipelineComponent(id=identifier, version=version)


def register_pipeline(
    name: str, components: Sequence[Component], options: Mapping[str, Any] | None, description: str
) -> pipeline_service_pb2.RegisterPipelineRequest:
    request = pipeline_service_pb2.RegisterPipelineRequest(
        name=name,
        description=description,
        components=[_component(component) for component in components],
    )
    fill(request.options, options)
    return request


def create_job(
    pipeline_uuid: str,
    *,
    lab: str | Iterable[str],
    experiment: str | Iterable[str],
    sample: str | Iterable[str],
    data: Mapping[str, Any] | None,
    session: str,
    agent: str,
    task: str,
) -> job_service_pb2.CreateJobRequest:
    request = job_service_pb2.CreateJobRequest(
        pipeline_uuid=pipeline_uuid,
        links=job_pb2.JobLinks(lab=_links(lab), experiment=_links(experiment), sample=_links(sample)),
        session=session,
        agent=agent,
        task=task,
    )
    fill(request.data, data)
    return request


def send_event(
    job_uuid: str,
    event: EventLike,
    *,
    token: str,
    data: Mapping[str, Any] | None,
    idempotency_key: str | None,
    source: str | int | None,
) -> job_service_pb2.SendEventRequest:
    # Every event carries a key, so retrying after a lost reply can never apply it twice.
    request = job_service_pb2.SendEventRequest(
        uuid=job_uuid,
        event=event_value(event),
        token=token,
        idempotency_key=idempotency_key or uuid.uuid4().hex,
        source=source_value(source),
    )
    fill(request.data, data)
    return request


def reject_event(
    job_uuid: str,
    event: str,
    *,
    reason: str,
    message: str,
    token: str,
    data: Mapping[str, Any] | None,
    source: str | int | None,
) -> job_service_pb2.RejectEventRequest:
    request = job_service_pb2.RejectEventRequest(
        uuid=job_uuid,
        event=event,
        reason=reason,
        message=message,
        token=token,
        source=source_value(source),
    )
    fill(request.data, data)
    return request


def _timestamp(moment: datetime) -> timestamp_pb2.Timestamp:
    message = timestamp_pb2.Timestamp()
    message.FromDatetime(moment if moment.tzinfo else moment.replace(tzinfo=UTC))
    return message


def time_range(start: datetime | None, end: datetime | None) -> job_service_pb2.TimeRange:
    """A ``TimeRange`` open on the sides given as None; naive datetimes are taken as UTC."""
    message = job_service_pb2.TimeRange()
    if start is not None:
        message.start_time.CopyFrom(_timestamp(start))
    if end is not None:
        message.end_time.CopyFrom(_timestamp(end))
    return message


ORDERS: Final = {
    "created": job_service_pb2.JOB_ORDER_CREATE_TIME_DESC,
    "-created": job_service_pb2.JOB_ORDER_CREATE_TIME_DESC,
    "+created": job_service_pb2.JOB_ORDER_CREATE_TIME_ASC,
    "updated": job_service_pb2.JOB_ORDER_UPDATE_TIME_DESC,
    "-updated": job_service_pb2.JOB_ORDER_UPDATE_TIME_DESC,
    "+updated": job_service_pb2.JOB_ORDER_UPDATE_TIME_ASC,
}


def list_jobs(
    *,
    pipeline_uuid: str,
    states: Iterable[str | int],
    lab: str | Iterable[str],
    experiment: str | Iterable[str],
    sample: str | Iterable[str],
    created_after: datetime | None,
    created_before: datetime | None,
    updated_after: datetime | None,
    updated_before: datetime | None,
    order_by: str,
    page_size: int,
    page_token: str,
) -> job_service_pb2.ListJobsRequest:
    """``order_by``: "created" / "updated" (newest first) or "+created" / "+updated" (oldest first)."""
    if order_by not in ORDERS:
        raise ValueError(f"order_by must be one of {sorted(ORDERS)}")
    return job_service_pb2.ListJobsRequest(
        pipeline_uuid=pipeline_uuid,
        states=[state_value(state) for state in states],
        links=job_pb2.JobLinks(lab=_links(lab), experiment=_links(experiment), sample=_links(sample)),
        create_time=time_range(created_after, created_before),
        update_time=time_range(updated_after, updated_before),
        order_by=ORDERS[order_by],
        page_size=page_size,
        page_token=page_token,
    )


def watch_job(
    job_uuid: str, *, after_seq: int, until_states: Iterable[str | int]
) -> job_service_pb2.WatchJobRequest:
    return job_service_pb2.WatchJobRequest(
        uuid=job_uuid, after_seq=after_seq, until_states=[state_value(state) for state in until_states]
    )


def feed_filter(
    *,
    pipelines: str | Iterable[str] = (),
    events: Iterable[EventLike] = (),
    to_states: Iterable[str | int] = (),
    jobs: str | Iterable[str] = (),
    sources: Iterable[str | int] = (),
    lab: str | Iterable[str] = (),
    experiment: str | Iterable[str] = (),
    sample: str | Iterable[str] = (),
    include_cancelled: bool = False,
) -> feed_pb2.FeedFilter:
    """The feed's filter from names ("finish", "FAILED", "callback") and uuids; see docs/events.md."""
    return feed_pb2.FeedFilter(
        pipeline_uuids=_links(pipelines),
        events=[event_value(event) for event in events],
        to_states=[state_value(state) for state in to_states],
        job_uuids=_links(jobs),
        sources=[source_value(source) for source in sources],
        links=job_pb2.JobLinks(lab=_links(lab), experiment=_links(experiment), sample=_links(sample)),
        include_cancelled=include_cancelled,
    )


def feed_view(full: bool) -> feed_pb2.FeedView.ValueType:
    return feed_pb2.FEED_VIEW_FULL if full else feed_pb2.FEED_VIEW_BASIC


def watch_events(
    *,
    after_cursor: str,
    from_now: bool,
    full: bool,
    end_cursor: str,
    end_time: datetime | None,
    filters: Mapping[str, Any],
) -> feed_pb2.WatchEventsRequest:
    request = feed_pb2.WatchEventsRequest(
        filter=feed_filter(**filters),
        after_cursor=after_cursor,
        from_now=from_now,
        view=feed_view(full),
        end_cursor=end_cursor,
    )
    if end_time is not None:
        request.end_time.FromDatetime(end_time.astimezone(UTC))
    return request
