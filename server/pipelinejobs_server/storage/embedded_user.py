"""The embedded database's one user, set up on its first start (ADR 011).

SecantusDB has no way to create a user offline and no localhost exception: its documented way is to start
once without ``--auth``, run ``createUser``, and restart with ``--auth``. For that one start the database
answers anyone on the machine who finds its port. A new store is empty then, so there is nothing to read;
what another client could do is leave something behind (a user of its own above all). So once the database
runs with ``--auth``, and before anything uses it, ``check_only_ours`` makes sure, as our user, that the
store holds our user and nothing else.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pymongo import MongoClient
from pymongo.errors import OperationFailure

USER = "pipelinejobs"
# The server creates indexes and databases (one per test), the doctor reads them, the tests drop them.
ROLES = [{"role": "root", "db": "admin"}]
USER_ALREADY_EXISTS = 51003
# What a new store holds once our user is in it: the oplog, and system collections of the system databases.
SYSTEM_DATABASES = frozenset({"admin", "config", "local"})


class Intrusion(RuntimeError):
    """Another client changed the database while it ran without authentication."""


def create(client: MongoClient[Any], password: str) -> None:
    """Create the user, or give it ``password`` if it exists (a first start interrupted after creating it,
    or a store of an older version set up again)."""
    try:
        client.admin.command("createUser", USER, pwd=password, roles=ROLES)
    except OperationFailure as error:
        if error.code != USER_ALREADY_EXISTS:
            raise
        client.admin.command("updateUser", USER, pwd=password, roles=ROLES)


def check_only_ours(client: MongoClient[Any]) -> None:
    """Raise ``Intrusion`` unless the store holds our user with its roles, and no data and no other user.

    Custom roles are not looked at: a role does nothing unless a user holds it, and no other user can be
    added once ``--auth`` is on without our password.
    """
    users = [
        (user.get("user"), user.get("db"), user.get("roles"))
        for user in client.admin["system.users"].find({}, {"user": 1, "db": 1, "roles": 1})
    ]
    if users != [(USER, "admin", ROLES)]:
        raise Intrusion(
            f"another client created or changed users while it ran without authentication: {users}"
        )
    for name in client.list_database_names():
        collections = client[name].list_collection_names()
        foreign = [c for c in collections if not (c.startswith("system.") or c == "oplog.rs")]
        if name not in SYSTEM_DATABASES or foreign:
            raise Intrusion(
                f"another client wrote to it while it ran without authentication (database {name!r})"
            )


def close_up(store: Path) -> None:
    """Make a store that an older version created under the default umask its owner's alone."""
    for directory, subdirectories, files in os.walk(store):
        os.chmod(directory, 0o700)
        for name in files:
            path = Path(directory, name)
            if not path.is_symlink():
                os.chmod(path, 0o600)
        subdirectories[:] = [d for d in subdirectories if not Path(directory, d).is_symlink()]
