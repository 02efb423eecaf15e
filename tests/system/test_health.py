"""DESIGN 6.4: with the database down, calls fail fast with UNAVAILABLE and health turns NOT_SERVING;
both recover by themselves when the database is back, with no restart of the server."""

from __future__ import annotations

import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from pipelinejobs_client.api.v1 import job_service_pb2
from pipelinejobs_server.storage.embedded import EmbeddedDatabase
from tests.servers import start_server_process
from tests.support import CLIENT, error_info, eventually, stubs

# A server process and a database of its own, stopped and started again.
pytestmark = pytest.mark.slow

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def test_health_follows_the_database(own_database: EmbeddedDatabase) -> None:
    # A server process of its own: the outage is the whole point, and it stays out of pytest's process.
    server = start_server_process(own_database.uri, "health", {"PIPELINEJOBS_DB_TIMEOUT_MS": "500"})
    try:
        with stubs(server.address) as api:
            health = health_pb2_grpc.HealthStub(api.channel)

            def status(service: str = "") -> int:
                reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
                return int(reply.status)

            assert status() == SERVING
            assert status("pipelinejobs.v1.JobService") == SERVING

            port = own_database.port
            own_database.stop()
            eventually(lambda: status() == NOT_SERVING, what="NOT_SERVING")
            started = time.monotonic()
            with pytest.raises(grpc.RpcError) as caught:
                api.jobs.GetJob(
                    job_service_pb2.GetJobRequest(uuid="bd43b784-a931-5b44-9564-51b1e3d7e442"),
                    metadata=CLIENT,
                    timeout=30,
                )
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
            assert error_info(caught.value).reason == "DATABASE_UNAVAILABLE"
            # db_timeout_ms is 500: the answer comes in about that, not after the call's 30 s deadline.
            assert time.monotonic() - started < 5, "fails fast instead of waiting for the call deadline"

            restarted = EmbeddedDatabase(own_database.data_dir, port=port)
            restarted.start()
            try:
                eventually(lambda: status() == SERVING, what="SERVING")
                reply = api.jobs.GetStateMachine(job_service_pb2.GetStateMachineRequest(), metadata=CLIENT)
                assert len(reply.states) == 11
            finally:
                restarted.stop()
    finally:
        server.terminate()
