"""DESIGN 12 through real gRPC on the embedded database: the event feed under concurrent writers on two
server replicas, a replica SIGKILLed (the one relaying, first), and the database killed and restarted.

Each test lets a load of random events run (many writers racing on one hot job), with two readers that
follow the feed from its start — one with WatchEvents, one with ListEvents pages — and reconnect from
their last cursor after any failure, on whichever replica is up. Then: every accepted event is in the
feed exactly once, each job's entries in seq order; both readers read exactly the feed; and from every
cursor, on each replica in turn, ListEvents gives exactly what follows it.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator

import pytest

from pipelinejobs_server.storage.embedded import EmbeddedDatabase
from tests.system.faults import Load, Replicas, create_jobs, wait_for_health
from tests.system.feed_checks import (
    Follower,
    check_every_cursor,
    check_feed,
    check_follower,
    wait_for_the_feed,
)

pytestmark = pytest.mark.slow

DATABASE = "feed"


@pytest.fixture
def replicas(embedded: EmbeddedDatabase, database_name: str) -> Iterator[Replicas]:
    group = Replicas(embedded.uri, database_name)
    yield group
    group.stop()


def _alternating(replicas: Replicas) -> Iterator[str]:
    for index in itertools.count():
        yield replicas.servers[index % len(replicas.servers)].address


def test_concurrent_writers_on_two_replicas(replicas: Replicas) -> None:
    jobs = create_jobs(replicas.servers[0].address, 4, "feed")
    addresses = _alternating(replicas)
    with (
        Follower(lambda: replicas.servers[0].address, watch=True) as watcher,
        Follower(lambda: replicas.servers[1].address, watch=False) as lister,
    ):
        with Load(jobs, replicas.address, senders=6, hot=1) as load:
            load.wait_for_acknowledged(150)
        assert not load.failures, load.failures
        feed, history = wait_for_the_feed(next(addresses), [job.uuid for job in jobs])
        check_feed(feed, history)
        check_follower(watcher, feed)
        check_follower(lister, feed)
    check_every_cursor([server.address for server in replicas.servers], feed)


def test_a_replica_killed_while_it_relays(replicas: Replicas) -> None:
    jobs = create_jobs(replicas.servers[0].address, 4, "kill")
    chooser = itertools.cycle([0, 1])
    with (
        Follower(lambda: replicas.servers[next(chooser)].address, watch=True) as watcher,
        Follower(lambda: replicas.servers[0].address, watch=False) as lister,
    ):
        with Load(jobs, replicas.address, senders=6, hot=1) as load:
            load.wait_for_acknowledged(60)
            # The first replica took the relay's lease at its start: kill it mid-load, then the other.
            replicas.kill_and_replace(0)
            load.wait_for_acknowledged(120)
            replicas.kill_and_replace(1)
            load.wait_for_acknowledged(180)
        assert not load.failures, load.failures
        feed, history = wait_for_the_feed(replicas.servers[0].address, [job.uuid for job in jobs])
        check_feed(feed, history)
        check_follower(watcher, feed)
        check_follower(lister, feed)
    assert watcher.reconnects + lister.reconnects > 0, "no reader saw a replica go"
    check_every_cursor([server.address for server in replicas.servers], feed)


@pytest.fixture
def fast_failing(own_database: EmbeddedDatabase) -> Iterator[Replicas]:
    group = Replicas(own_database.uri, DATABASE, {"PIPELINEJOBS_DB_TIMEOUT_MS": "500"})
    yield group
    group.stop()


def test_the_database_killed_and_restarted(own_database: EmbeddedDatabase, fast_failing: Replicas) -> None:
    from grpc_health.v1 import health_pb2

    replicas = fast_failing
    jobs = create_jobs(replicas.servers[0].address, 4, "restart")
    with (
        Follower(lambda: replicas.servers[0].address, watch=True) as watcher,
        Follower(lambda: replicas.servers[1].address, watch=False) as lister,
    ):
        with Load(jobs, replicas.address, senders=6, hot=1) as load:
            for outage in range(2):
                load.wait_for_acknowledged(50 * (outage + 1))
                own_database.kill()
                wait_for_health(replicas.servers, health_pb2.HealthCheckResponse.NOT_SERVING)
                own_database.start()  # same data, same port
                wait_for_health(replicas.servers, health_pb2.HealthCheckResponse.SERVING)
            load.wait_for_acknowledged(150)
        assert not load.failures, load.failures
        feed, history = wait_for_the_feed(
            replicas.servers[random.randrange(2)].address, [j.uuid for j in jobs]
        )
        check_feed(feed, history)
        check_follower(watcher, feed)
        check_follower(lister, feed)
    check_every_cursor([server.address for server in replicas.servers], feed)
