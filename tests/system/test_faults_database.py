"""DESIGN 6.3 and 6.4 together: the database SIGKILLed, twice, under a concurrent load through two server
processes, and started again on the same data and port.

While it is down, calls fail fast with UNAVAILABLE (DATABASE_UNAVAILABLE, typed ``ServiceUnavailable`` in
the client) and health turns NOT_SERVING; the servers stay up and recover by themselves. The senders
retry every event with its idempotency key, so in the end every acknowledged event must be in its job's
history exactly once: none lost by the crash (writes are journaled), none applied twice by a retry.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator

import pytest
from grpc_health.v1 import health_pb2

from pipelinejobs_server.storage.embedded import EmbeddedDatabase
from tests.system.faults import (
    Load,
    RecordWatcher,
    Replicas,
    check_every_job,
    create_jobs,
    doctor_problems,
    wait_for_health,
)

pytestmark = pytest.mark.slow

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
OUTAGES = 2
DATABASE = "faults_database"


@pytest.fixture
def replicas(own_database: EmbeddedDatabase) -> Iterator[Replicas]:
    # Fail fast: a call waits at most 500 ms for an unreachable database before answering UNAVAILABLE.
    group = Replicas(own_database.uri, DATABASE, {"PIPELINEJOBS_DB_TIMEOUT_MS": "500"})
    yield group
    group.stop()


def test_database_killed_and_restarted_under_load(
    own_database: EmbeddedDatabase,
    replicas: Replicas,
) -> None:
    jobs = create_jobs(replicas.servers[0].address, 4, "database")
    with (
        RecordWatcher(own_database.uri, DATABASE, jobs) as watcher,
        Load(jobs, replicas.address, senders=8, hot=1) as load,
    ):
        for outage in range(OUTAGES):
            load.wait_for_acknowledged(40 * (outage + 1))
            own_database.kill()
            wait_for_health(replicas.servers, NOT_SERVING)
            acknowledged_while_down = load.acknowledged_count()
            time.sleep(random.uniform(0.2, 0.6))  # keep the senders failing a little longer
            assert load.acknowledged_count() == acknowledged_while_down, "acknowledged without a database"
            own_database.start()  # same data directory, same port
            wait_for_health(replicas.servers, SERVING)
        load.wait_for_acknowledged(40 * (OUTAGES + 1))
    assert not load.failures, load.failures
    assert watcher.updates > 100
    assert watcher.backwards == [], "a record moved back to an earlier seq"

    seen = load.seen
    assert seen.retried["ServiceUnavailable/DATABASE_UNAVAILABLE"] > 0, seen.retried
    # Fail fast (DESIGN 6.4): about the 500 ms database timeout (the slowest is ~1 s on an idle machine),
    # never the client's 10 s deadline.
    assert seen.slowest_unavailable_s < 5, seen.slowest_unavailable_s
    assert all(server.process.poll() is None for server in replicas.servers), "a server died"
    check_every_job(replicas.servers[1].address, load)
    assert doctor_problems(own_database.uri, DATABASE) == []
