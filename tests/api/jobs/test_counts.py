"""CountJobs: exact jobs per state, of all pipelines or of one, after creations, state changes, events
that change no state, cancels, resets, a batch of concurrent events and a roll-forward."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import grpc
from pymongo.database import Database

from pipelinejobs_client.api.v1 import job_service_pb2
from pipelinejobs_server.domain.records import RecordedEntry
from pipelinejobs_server.storage.counts import changes_of
from pipelinejobs_server.storage.documents import job_from_document
from tests.api.jobs.helpers import Document, refused
from tests.forging import forge_next
from tests.support import ADMIN, CLIENT, Stubs, create_job, eventually, register_pipeline, send, state_name


def counts(api: Stubs, pipeline: str = "") -> dict[str, int]:
    reply = api.jobs.CountJobs(job_service_pb2.CountJobsRequest(pipeline_uuid=pipeline), metadata=CLIENT)
    assert reply.exact
    assert reply.total == sum(c.count for c in reply.counts)
    return {state_name(c.state): c.count for c in reply.counts if c.count}


def recount(db: Database[Document], pipeline: str = "") -> dict[str, int]:
    """What the records say, by a scan (what CountJobs must agree with without one)."""
    match: Document = {"seq": {"$gt": 0}, "cancelled": {"$ne": True}}
    if pipeline:
        match["pipeline_uuid"] = pipeline
    rows = db.jobs.aggregate([{"$match": match}, {"$group": {"_id": "$state", "n": {"$sum": 1}}}])
    return {row["_id"]: row["n"] for row in rows}


def exact_soon(api: Stubs) -> None:
    def exact() -> bool:
        reply = api.jobs.CountJobs(job_service_pb2.CountJobsRequest(), metadata=CLIENT)
        return reply.exact

    eventually(exact, what="the counts to be exact")


def test_counts_follow_creations_state_changes_cancels_and_resets(
    api: Stubs, pipeline: str, db: Database[Document]
) -> None:
    exact_soon(api)
    assert counts(api) == {}
    other = register_pipeline(api, name="other-pipeline")
    a = create_job(api, pipeline, data={"n": 1})
    b = create_job(api, pipeline, data={"n": 2})
    c = create_job(api, other, data={"n": 3})
    create_job(api, pipeline, data={"n": 1})  # a repeat: the same job, counted once
    assert counts(api) == {"CREATED": 3}
    assert counts(api, pipeline) == {"CREATED": 2}
    assert counts(api, other) == {"CREATED": 1}

    send(api, a.job.uuid, "run", token=a.token)
    send(api, a.job.uuid, "update", token=a.token)  # no change of state: no change of counts
    send(api, c.job.uuid, "run", token=c.token)
    send(api, c.job.uuid, "fail", token=c.token)
    assert counts(api) == {"CREATED": 1, "RUNNING": 1, "FAILED": 1}
    assert counts(api, pipeline) == {"CREATED": 1, "RUNNING": 1}

    api.jobs.CancelJob(job_service_pb2.CancelJobRequest(uuid=b.job.uuid, token=b.token), metadata=CLIENT)
    send(api, c.job.uuid, "reset", metadata=ADMIN)
    assert counts(api) == {"RUNNING": 1, "RESET": 1}
    assert counts(api, pipeline) == {"RUNNING": 1}
    assert counts(api, other) == {"RESET": 1}
    assert counts(api) == recount(db)


def test_counts_stay_exact_through_batches_of_concurrent_events(
    api: Stubs, pipeline: str, db: Database[Document]
) -> None:
    exact_soon(api)
    jobs = [create_job(api, pipeline, data={"n": n}) for n in range(24)]

    def drive(job: job_service_pb2.CreateJobResponse) -> None:
        uuid = job.job.uuid
        for event in ("run", "update", "update", "finish", "index", "indexed"):
            send(api, uuid, event, token=job.token, key=f"{uuid}-{event}-{id(event)}")

    with ThreadPoolExecutor(12) as pool:
        list(pool.map(drive, jobs[:16]))
    assert counts(api) == {"CREATED": 8, "FINISHED": 16} == recount(db)
    assert counts(api, pipeline) == recount(db, pipeline)


def test_an_entry_whose_writer_died_counts_once_rolled_forward(
    api: Stubs, pipeline: str, db: Database[Document]
) -> None:
    exact_soon(api)
    first, second = create_job(api, pipeline, data={"n": 1}), create_job(api, pipeline, data={"n": 2})
    # Writers killed after their entries: the first before it wrote the entry's change, the second after.
    forge_next(db, first.job.uuid, "run", "RUNNING", advance_record=False)
    entry = forge_next(db, second.job.uuid, "run", "RUNNING", advance_record=False)
    record = job_from_document(db.jobs.find_one({"_id": second.job.uuid}) or {})
    db.job_count_changes.insert_many(changes_of(record, [RecordedEntry(entry, entry.digest())]))
    # The log has the second's run and so do the counts; the first's is not known until rolled forward.
    assert counts(api) == {"CREATED": 1, "RUNNING": 1}
    for job in (first, second):  # GetJob rolls each record forward, writing the entry's change
        api.jobs.GetJob(job_service_pb2.GetJobRequest(uuid=job.job.uuid), metadata=CLIENT)
    assert counts(api) == {"RUNNING": 2} == recount(db)
    eventually(lambda: db.job_count_changes.count_documents({"pending": True}) == 0, what="changes folded")
    assert counts(api) == {"RUNNING": 2}


def test_count_jobs_checks_its_pipeline_uuid(api: Stubs) -> None:
    refused(
        lambda: api.jobs.CountJobs(job_service_pb2.CountJobsRequest(pipeline_uuid="nope"), metadata=CLIENT),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_ARGUMENT",
    )
    refused(
        lambda: api.jobs.CountJobs(job_service_pb2.CountJobsRequest()),
        grpc.StatusCode.UNAUTHENTICATED,
        "API_KEY_REQUIRED",
    )
