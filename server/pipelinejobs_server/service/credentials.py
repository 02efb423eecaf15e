"""API keys and the roles they carry."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from pipelinejobs_server.domain.errors import AdminRequired, ApiKeyRequired, InvalidApiKey
from pipelinejobs_server.domain.tokens import hash_secret, matches_any


class Role(enum.Enum):
    CLIENT = "client"  # register pipelines, create jobs, read
    ADMIN = "admin"  # also reset/ready, any event without a job token, all rejected events


@dataclass(frozen=True)
class Principal:
    """Who is calling: an API key's role and a short, non-secret label for logs."""

    role: Role
    label: str

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


class Credentials:
    """The configured API keys, kept only as hashes."""

    def __init__(self, admin_keys: Iterable[str], client_keys: Iterable[str]) -> None:
        self._roles: dict[str, Role] = {}
        for key in client_keys:
            self._roles[hash_secret(key)] = Role.CLIENT
        for key in admin_keys:
            self._roles[hash_secret(key)] = Role.ADMIN

    def authenticate(self, presented: str | None) -> Principal | None:
        """The principal for a presented key; None when no key was presented."""
        if not presented:
            return None
        digest = matches_any(presented, self._roles)
        if digest is None:
            raise InvalidApiKey("the API key is not valid")
        return Principal(self._roles[digest], f"key:{digest[:8]}")


def require(principal: Principal | None, role: Role) -> Principal:
    """Fail unless ``principal`` holds ``role`` (admin holds every role)."""
    if principal is None:
        raise ApiKeyRequired("this call needs an API key (metadata 'authorization: Bearer <key>')")
    if role is Role.ADMIN and not principal.is_admin:
        raise AdminRequired("this call needs an admin API key")
    return principal
