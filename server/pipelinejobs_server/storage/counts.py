"""Jobs per state, kept as counters in ``job_counts`` (ADR 014): exact after every accepted write, read
without a scan.

A job is counted in its record's state from its first compare-and-set (seq 0 to 1: its ``create``
entry) until it is marked cancelled. Every write that moves a record into another state, or into the
count, or out of it changes the counters **in the same transaction** as the record's compare-and-set,
so the counters move exactly when the record does, whoever writes it (the writer, a roll-forward, a
cancel, another replica) and whatever kills whom in between.

Each (scope, state) is split over ``SHARDS`` documents and a writer adds to a random one, so that
concurrent transactions seldom touch the same document (a conflict is retried, by the driver's
``with_transaction``). The scope is ``*`` (all jobs) and the job's pipeline: a state change adds to
four documents in one ``bulk_write``. A reader sums a scope's documents, ``11 * (SHARDS + 1)`` at most,
found by the ``(scope, state)`` index (not an ``_id`` range, which SecantusDB scans the collection for,
nor with a hint, which it serves several times slower: ADR 014 measured both).

A database that had jobs before the counters did is counted once, by ``recount``: in one snapshot
transaction it counts the records, sums the counters as they stood at that snapshot, and writes the
difference as each key's ``base`` document (which no writer touches, so the recount never conflicts
with them) and the ``ready`` marker. Writes that commit after the snapshot add to the shards on top of
it, so the sum stays exact. Until ``ready`` exists, counts are reported with ``exact=False``.

On a server without transactions (a standalone mongod or SecantusDB ``--standalone``) the counters are
written right after the compare-and-set instead: a crash between the two loses a change, so counts are
never reported exact there.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.read_concern import ReadConcern

from .database import DURABLE, Database, Document, translate_errors

SHARDS = 4
ALL = "*"
READY = "ready"
BASE = "base"

# (scope, state) -> how much the count changes
Delta = Counter[tuple[str, str]]


def moved(pipeline_uuid: str, before: str | None, after: str | None) -> Delta:
    """The change a job of ``pipeline_uuid`` makes to the counts by going from state ``before`` to
    ``after`` (None: not counted, i.e. before its creation or after its cancel)."""
    delta: Delta = Counter()
    if before == after:
        return delta
    for scope in (ALL, pipeline_uuid):
        if before is not None:
            delta[(scope, before)] -= 1
        if after is not None:
            delta[(scope, after)] += 1
    return delta


def counted_state(seq: int, state: str) -> str | None:
    """The state a record at ``seq`` is counted in: none before its creation entry (seq 0)."""
    return state if seq > 0 else None


def _key(scope: str, state: str, shard: str) -> str:
    return f"{scope}|{state}|{shard}"


def _increments(delta: Delta) -> list[UpdateOne]:
    return [
        UpdateOne(
            {"_id": _key(scope, state, str(random.randrange(SHARDS)))},  # noqa: S311 - spreading, not security
            {"$inc": {"n": n}, "$setOnInsert": {"scope": scope, "state": state}},
            upsert=True,
        )
        for (scope, state), n in sorted(delta.items())
        if n
    ]


@dataclass(frozen=True)
class Counted:
    """One compare-and-set on a record, and what it changes in the counts when it matches."""

    query: dict[str, Any]
    update: dict[str, Any]
    delta: Delta


@dataclass(frozen=True)
class Counts:
    """Jobs per state of one scope; ``exact`` is False until the database is counted (``recount``) and
    on a server without transactions."""

    states: dict[str, int]
    exact: bool


class _NotAllMatched(Exception):
    """A batch's compare-and-sets did not all match: undo it, and do them one by one."""


class Counters:
    def __init__(self, database: Database) -> None:
        self._client = database.client
        self._jobs = database.collections.jobs
        self._counts = database.collections.job_counts
        self._transactions: bool | None = None
        self._ready = False

    async def transactions(self) -> bool:
        """Whether the server runs transactions: a replica-set member or a mongos (asked once)."""
        if self._transactions is None:
            hello = await self._client.admin.command("hello")
            self._transactions = bool(hello.get("setName")) or hello.get("msg") == "isdbgrid"
        return self._transactions

    async def _atomically(self, body: Callable[[AsyncClientSession], Awaitable[Any]]) -> Any:
        async with self._client.start_session() as session:
            return await session.with_transaction(body, write_concern=DURABLE)

    @translate_errors
    async def compare_and_set(self, writes: Sequence[Counted]) -> list[bool]:
        """Apply each compare-and-set on ``jobs`` with its change to the counts; which ones matched.

        All in one transaction when all match (the common case); otherwise it is undone and each is
        done in a transaction of its own, to learn which matched (a bulk reply only says how many).
        """
        if not writes:
            return []
        if not await self.transactions():
            return [await self._unguarded(write) for write in writes]
        if len(writes) > 1:

            async def batch(session: AsyncClientSession) -> None:
                operations = [UpdateOne(w.query, w.update) for w in writes]
                result = await self._jobs.bulk_write(operations, ordered=False, session=session)
                if result.modified_count != len(writes):
                    raise _NotAllMatched
                total: Delta = Counter()
                for write in writes:
                    total.update(write.delta)
                await self._add(total, session)

            try:
                await self._atomically(batch)
                return [True] * len(writes)
            except _NotAllMatched:
                pass
        return [await self._one(write) for write in writes]

    async def _one(self, write: Counted) -> bool:
        async def body(session: AsyncClientSession) -> bool:
            result = await self._jobs.update_one(write.query, write.update, session=session)
            if result.modified_count != 1:
                return False
            await self._add(write.delta, session)
            return True

        return bool(await self._atomically(body))

    async def _unguarded(self, write: Counted) -> bool:
        result = await self._jobs.update_one(write.query, write.update)
        if result.modified_count != 1:
            return False
        await self._add(write.delta, None)
        return True

    async def _add(self, delta: Delta, session: AsyncClientSession | None) -> None:
        increments = _increments(delta)
        if increments:
            await self._counts.bulk_write(increments, ordered=False, session=session)

    @translate_errors
    async def counts(self, scope: str = ALL) -> Counts:
        """The jobs per state of ``scope`` (``ALL`` or a pipeline uuid): one range read on ``_id``."""
        states: Counter[str] = Counter()
        async for document in self._counts.find({"scope": scope}, {"state": 1, "n": 1}):
            states[str(document["state"])] += int(document.get("n", 0))
        exact = await self.ready() and await self.transactions()
        return Counts({state: n for state, n in states.items() if n}, exact)

    @translate_errors
    async def ready(self) -> bool:
        """Whether the database was counted. Once it was, it stays so (only deleting ``job_counts`` by
        hand undoes it, with the servers stopped: docs/operations.md), so a yes is asked only once."""
        if not self._ready:
            self._ready = await self._counts.find_one({"_id": READY}, {"_id": 1}) is not None
        return self._ready

    @translate_errors
    async def recount(self, now: datetime) -> bool:
        """Count a database whose counters are not ready; True if this call counted it.

        One snapshot transaction: the records counted and the counters summed as of one moment, the
        difference written to each key's ``base`` document, and ``ready``. Writes committed after the
        snapshot went to the shards and stay on top of it.
        """
        if not await self.transactions():
            return await self._recount_unguarded(now)

        async def body(session: AsyncClientSession) -> bool:
            if await self._counts.find_one({"_id": READY}, session=session) is not None:
                return False  # another replica counted it first
            records = await self._records_per_state(session)
            counters = await self._counters_per_state(session, include_base=False)
            await self._counts.delete_many({"_id": {"$regex": f"\\|{BASE}$"}}, session=session)
            bases = _bases(records, counters)
            if bases:
                await self._counts.insert_many(bases, session=session)
            await self._counts.insert_one({"_id": READY, "at": now}, session=session)
            return True

        async with self._client.start_session() as session:
            counted = await session.with_transaction(
                body, read_concern=ReadConcern("snapshot"), write_concern=DURABLE
            )
        return bool(counted)

    async def _recount_unguarded(self, now: datetime) -> bool:
        if await self.ready():
            return False
        records = await self._records_per_state(None)
        counters = await self._counters_per_state(None, include_base=False)
        await self._counts.delete_many({"_id": {"$regex": f"\\|{BASE}$"}})
        bases = _bases(records, counters)
        if bases:
            await self._counts.insert_many(bases)
        await self._counts.update_one({"_id": READY}, {"$set": {"at": now}}, upsert=True)
        return True

    async def _records_per_state(self, session: AsyncClientSession | None) -> Delta:
        """The records counted by scope and state, as the counters should count them."""
        pipeline: list[Document] = [
            {"$match": {"seq": {"$gt": 0}, "cancelled": {"$ne": True}}},
            {"$group": {"_id": {"p": "$pipeline_uuid", "s": "$state"}, "n": {"$sum": 1}}},
        ]
        found: Delta = Counter()
        cursor = await self._jobs.aggregate(pipeline, session=session)
        async for row in cursor:
            pipeline_uuid, state, n = str(row["_id"]["p"]), str(row["_id"]["s"]), int(row["n"])
            found[(ALL, state)] += n
            found[(pipeline_uuid, state)] += n
        return found

    async def _counters_per_state(self, session: AsyncClientSession | None, *, include_base: bool) -> Delta:
        found: Delta = Counter()
        async for document in self._counts.find({"_id": {"$ne": READY}}, session=session):
            if not include_base and str(document["_id"]).endswith(f"|{BASE}"):
                continue
            found[(str(document["scope"]), str(document["state"]))] += int(document.get("n", 0))
        return found


def _bases(records: Delta, counters: Delta) -> list[Document]:
    """The ``base`` documents that bring ``counters`` level with ``records``."""
    documents = []
    for scope, state in sorted(set(records) | set(counters)):
        n = records[(scope, state)] - counters[(scope, state)]
        if n:
            documents.append({"_id": _key(scope, state, BASE), "scope": scope, "state": state, "n": n})
    return documents
