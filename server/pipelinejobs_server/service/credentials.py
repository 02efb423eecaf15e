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


KEY_ID_DIGITS = 16  # 64 bits of the key's SHA-256: keeps a deployment's few keys apart, reveals nothing


@dataclass(frozen=True)
class Principal:
    """Who is calling: an API key's role and its non-secret id.

    ``key_id`` is the start of the key's SHA-256, so it is the same on every replica and after every
    restart while the key is configured, and it cannot be turned back into the key (keys carry at
    least 128 random bits). Jobs record it as their creator; ``label`` (its first 8 digits) names the
    key in logs.
    """

    role: Role
    key_id: str

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    @property
    def label(self) -> str:
        return f"key:{self.key_id[:8]}"


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
        return Principal(self._roles[digest], digest[:KEY_ID_DIGITS])


def require(principal: Principal | None, role: Role) -> Principal:
    """Fail unless ``principal`` holds ``role`` (admin holds every role)."""
    if principal is None:
        raise ApiKeyRequired("this call needs an API key (metadata 'authorization: Bearer <key>')")
    if role is Role.ADMIN and not principal.is_admin:
        raise AdminRequired("this call needs an admin API key")
    return principal
