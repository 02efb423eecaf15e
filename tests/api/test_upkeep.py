"""A server started on a database that has jobs but lacks indexes and counters (an upgrade) serves at once,
answers CountJobs with exact=false, then builds the indexes and counts the jobs in the background
(storage/upkeep.py) and says so in its health (service name pipelinejobs.upkeep)."""

from __future__ import annotations

from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pymongo.database import Database

from pipelinejobs_client.api.v1 import job_service_pb2
from pipelinejobs_server.api.health import UPKEEP_SERVICE
from tests.servers import ServerThread, test_settings
from tests.support import CLIENT, create_job, eventually, register_pipeline, send, state_name, stubs


def _upkeep_done(address: str) -> bool:
    with grpc.insecure_channel(address) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=UPKEEP_SERVICE)
        )
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def test_an_upgraded_database_is_served_at_once_and_counted_in_the_background(
    mongodb_uri: str, database_name: str, db: Database[dict[str, Any]]
) -> None:
    settings = test_settings(mongodb_uri, database_name)
    first = ServerThread(settings).start()
    try:
        with stubs(first.address) as api:
            pipeline = register_pipeline(api)
            jobs = [create_job(api, pipeline, data={"n": n}) for n in range(5)]
            for job in jobs[:2]:
                send(api, job.job.uuid, "run", token=job.token)
    finally:
        first.stop()
    # As a database from before the counters and a new listing index: neither exists yet.
    db.drop_collection("job_counts")
    db.job_listing.drop_index("state_1_created_at_-1__id_-1")

    second = ServerThread(settings).start()
    try:
        with stubs(second.address) as api:
            eventually(lambda: _upkeep_done(second.address), what="the upkeep to finish")
            reply = api.jobs.CountJobs(job_service_pb2.CountJobsRequest(), metadata=CLIENT)
            assert reply.exact
            assert {state_name(c.state): c.count for c in reply.counts if c.count} == {
                "CREATED": 3,
                "RUNNING": 2,
            }
            assert "state_1_created_at_-1__id_-1" in db.job_listing.index_information()
            # Counted once: later writes add to the counts on top of the first count.
            send(api, jobs[0].job.uuid, "finish", token=jobs[0].token)
            reply = api.jobs.CountJobs(
                job_service_pb2.CountJobsRequest(pipeline_uuid=pipeline), metadata=CLIENT
            )
            assert {state_name(c.state): c.count for c in reply.counts if c.count} == {
                "CREATED": 3,
                "RUNNING": 1,
                "FINISHED": 1,
            }
    finally:
        second.stop()
