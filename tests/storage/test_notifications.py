"""The notifier's safety poll (storage/notifications.py): one query per watched job, however many watch
it, waking only the watchers behind the job's newest entry, and every watcher of a job that is gone.

The notifier is not started here: no change stream, only the poll, on the real embedded database. The
queries are counted by the database itself (serverStatus opcounters).
"""

from __future__ import annotations

import asyncio
from typing import Any

from pymongo import MongoClient

from pipelinejobs_server.storage.database import Database
from pipelinejobs_server.storage.notifications import HistoryNotifier


def entry(job: str, seq: int) -> dict[str, Any]:
    # Only the fields the poll reads: the history index's (job_uuid, seq).
    return {"_id": f"{job}-{seq}", "job_uuid": job, "seq": seq}


def test_the_poll_wakes_the_watchers_behind_and_those_of_a_job_that_is_gone(
    mongodb_uri: str, database_name: str, mongo: MongoClient[dict[str, Any]]
) -> None:
    def queries() -> int:
        return int(mongo.admin.command("serverStatus")["opcounters"]["query"])

    async def scenario() -> None:
        database = Database(mongodb_uri, database_name)
        try:
            await database.ensure_indexes()
            events = database.collections.job_events
            await events.insert_many([entry("job-a", seq) for seq in (1, 2, 3)] + [entry("job-c", 1)])
            notifier = HistoryNotifier(events)
            level = [notifier.subscribe("job-a", 3) for _ in range(100)]
            behind = notifier.subscribe("job-a", 1)  # another watcher of the job has read up to 3
            idle = notifier.subscribe("job-c", 1)
            gone = notifier.subscribe("job-b", 4)  # its history was deleted: the job was cancelled

            before = queries()
            await notifier.poll()
            assert queries() - before == 3, "one query per watched job, not per watcher"
            assert behind.woken.is_set()
            assert gone.woken.is_set()
            assert not any(subscription.woken.is_set() for subscription in [*level, idle])

            await events.insert_one(entry("job-a", 4))
            await notifier.poll()
            assert all(subscription.woken.is_set() for subscription in level)
            assert not idle.woken.is_set()

            for subscription in [*level, behind, idle, gone]:
                notifier.unsubscribe(subscription)
            before = queries()
            await notifier.poll()
            assert queries() == before, "nobody watches: nothing to ask"
        finally:
            await database.close()

    asyncio.run(scenario())
