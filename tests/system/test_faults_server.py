"""DESIGN 6.3: server processes SIGKILLed at random instants of a concurrent load across two replicas,
ten times, each replaced by a fresh process.

Senders spread random events (admin reset/ready included, so refusals are frequent) over several jobs,
two of them hot, and both replicas, and retry each event with its key until it is acknowledged or
refused. Meanwhile a watcher reads the job records straight from the database: no record's seq may ever
go down (the compare-and-set on seq forbids it; ListJobs shows records as stored). Afterwards
``pipelinejobs doctor`` checks every job straight from the database, before anything reads the jobs
through the service: it may find records one entry behind (a writer killed between its two writes),
never anything worse. Then every job is read through the API, which rolls those forward, and the
doctor must find nothing at all, even with ``--strict``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator

import pytest

from pipelinejobs_server.doctor import Severity
from pipelinejobs_server.storage.embedded import EmbeddedDatabase
from tests.system.faults import (
    Load,
    RecordWatcher,
    Replicas,
    check_every_job,
    create_jobs,
    doctor_problems,
)

pytestmark = pytest.mark.slow

KILLS = 10


@pytest.fixture
def replicas(embedded: EmbeddedDatabase, database_name: str) -> Iterator[Replicas]:
    group = Replicas(embedded.uri, database_name)
    yield group
    group.stop()


def test_replicas_sigkilled_repeatedly_under_load(
    embedded: EmbeddedDatabase, database_name: str, replicas: Replicas
) -> None:
    jobs = create_jobs(replicas.servers[0].address, 6, "server")
    chooser = random.Random(2026)
    with (
        RecordWatcher(embedded.uri, database_name, jobs) as watcher,
        Load(jobs, replicas.address, senders=8, hot=1) as load,
    ):
        for kill in range(KILLS):
            load.wait_for_acknowledged(20 * (kill + 1))
            # A random instant of the load: within an event, between two, before or after its writes.
            time.sleep(chooser.uniform(0.0, 0.5))
            replicas.kill_and_replace(kill % 2)
        load.wait_for_acknowledged(20 * (KILLS + 1))
    assert not load.failures, load.failures
    assert watcher.updates > 100
    assert watcher.backwards == [], "a record moved back to an earlier seq"

    # Straight after the crashes: crash leftovers at most, each one entry behind and nothing else.
    leftovers = doctor_problems(embedded.uri, database_name)
    assert {(p.code, p.severity) for p in leftovers} <= {("RECORD_ONE_BEHIND", Severity.WARNING)}, leftovers
    assert load.seen.retried, "no call was cut by a kill: the test proved nothing"
    check_every_job(replicas.servers[0].address, load)
    assert doctor_problems(embedded.uri, database_name) == []
