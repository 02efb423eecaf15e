"""Database commands per unit of work, by kind, from the server's own counters (``serverStatus``).

CPU time says how much a round cost the database; the commands say what for: every round trip a server
makes is one of them, whatever its size. The counters are the whole database process's, so background
work of every server on it (the relay's polls, the count folder) is in every round alike.
"""

from __future__ import annotations

from pymongo import MongoClient

KINDS = ("insert", "query", "update", "delete", "getmore", "command")


class CommandMeter:
    """``start()``, do the work, ``per(count)``: database commands per unit of work, by kind and in all."""

    def __init__(self, uri: str) -> None:
        self._client: MongoClient[dict[str, object]] = MongoClient(uri, directConnection=True)
        self._started: dict[str, int] = {}

    def _counters(self) -> dict[str, int]:
        counters = self._client.admin.command("serverStatus").get("opcounters", {})
        return {kind: int(counters.get(kind, 0)) for kind in KINDS}

    def start(self) -> None:
        self._started = self._counters()

    def per(self, count: int) -> dict[str, float]:
        now = self._counters()
        per_kind = {kind: (now[kind] - self._started[kind]) / max(count, 1) for kind in KINDS}
        per_kind["all"] = sum(per_kind.values())
        return per_kind

    def close(self) -> None:
        self._client.close()
