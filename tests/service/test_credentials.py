"""API keys and roles (service/credentials.py): authentication, role checks, and labels safe for logs."""

from __future__ import annotations

import pytest

from pipelinejobs_server.domain.errors import AdminRequired, ApiKeyRequired, InvalidApiKey
from pipelinejobs_server.service.credentials import Credentials, Principal, Role, require

ADMIN_KEY = "adm-7Qk2vX9pL3mN8rT4wY6zB1cD5fG0hJ"
CLIENT_KEY = "cli-Hs8dF3kL9qW2eR7tY4uI1oP6aS5dG0"


def credentials() -> Credentials:
    return Credentials(admin_keys=[ADMIN_KEY], client_keys=[CLIENT_KEY])


def test_admin_key_is_admin() -> None:
    principal = credentials().authenticate(ADMIN_KEY)
    assert principal is not None
    assert principal.role is Role.ADMIN
    assert principal.is_admin


def test_client_key_is_client() -> None:
    principal = credentials().authenticate(CLIENT_KEY)
    assert principal is not None
    assert principal.role is Role.CLIENT
    assert not principal.is_admin


def test_several_keys_per_role() -> None:
    creds = Credentials(admin_keys=["admin-a-key-0001", "admin-b-key-0002"], client_keys=["client-c-0003"])
    for key in ("admin-a-key-0001", "admin-b-key-0002"):
        principal = creds.authenticate(key)
        assert principal is not None
        assert principal.role is Role.ADMIN
    client = creds.authenticate("client-c-0003")
    assert client is not None
    assert client.role is Role.CLIENT


def test_key_configured_in_both_roles_is_admin() -> None:
    creds = Credentials(admin_keys=[ADMIN_KEY], client_keys=[ADMIN_KEY])
    principal = creds.authenticate(ADMIN_KEY)
    assert principal is not None
    assert principal.role is Role.ADMIN


@pytest.mark.parametrize(
    "presented",
    [
        "not-a-configured-key",
        ADMIN_KEY + "x",
        ADMIN_KEY[:-1],
        ADMIN_KEY.upper(),
        " " + CLIENT_KEY,
    ],
)
def test_unknown_key_is_refused(presented: str) -> None:
    with pytest.raises(InvalidApiKey):
        credentials().authenticate(presented)


def test_any_key_is_refused_when_none_is_configured() -> None:
    with pytest.raises(InvalidApiKey):
        Credentials(admin_keys=[], client_keys=[]).authenticate(ADMIN_KEY)


@pytest.mark.parametrize("presented", [None, ""])
def test_no_key_is_no_principal(presented: str | None) -> None:
    assert credentials().authenticate(presented) is None


def test_require_without_a_principal_asks_for_a_key() -> None:
    for role in Role:
        with pytest.raises(ApiKeyRequired):
            require(None, role)


def test_require_admin_refuses_a_client() -> None:
    client = credentials().authenticate(CLIENT_KEY)
    with pytest.raises(AdminRequired):
        require(client, Role.ADMIN)


def test_require_client_accepts_a_client() -> None:
    client = credentials().authenticate(CLIENT_KEY)
    assert client is not None
    assert require(client, Role.CLIENT) is client


def test_admin_satisfies_every_role() -> None:
    admin = credentials().authenticate(ADMIN_KEY)
    assert admin is not None
    for role in Role:
        assert require(admin, role) is admin


def test_labels_do_not_contain_the_key() -> None:
    creds = credentials()
    for key in (ADMIN_KEY, CLIENT_KEY):
        principal = creds.authenticate(key)
        assert principal is not None
        assert key not in principal.label
        assert key not in repr(principal)
        assert principal.label.startswith("key:")


def test_labels_tell_keys_apart() -> None:
    creds = credentials()
    admin = creds.authenticate(ADMIN_KEY)
    client = creds.authenticate(CLIENT_KEY)
    assert admin is not None
    assert client is not None
    assert admin.label != client.label
    # Stable across calls, so log lines about one key can be grouped.
    assert creds.authenticate(ADMIN_KEY) == admin


def test_credentials_keep_no_plain_keys() -> None:
    creds = credentials()
    assert ADMIN_KEY not in repr(vars(creds))
    assert CLIENT_KEY not in repr(vars(creds))


def test_key_ids_are_stable_across_replicas_and_name_no_secret() -> None:
    # Jobs record the creating key's id: another process with the same keys must compute the same one.
    first = credentials().authenticate(CLIENT_KEY)
    again = Credentials(admin_keys=[], client_keys=["some-other-key-0123456789", CLIENT_KEY]).authenticate(
        CLIENT_KEY
    )
    assert first is not None
    assert again is not None
    assert first.key_id == again.key_id
    assert len(first.key_id) == 16
    assert int(first.key_id, 16) >= 0
    assert first.label == f"key:{first.key_id[:8]}"
    admin = credentials().authenticate(ADMIN_KEY)
    assert admin is not None
    assert admin.key_id != first.key_id


def test_principal_is_immutable() -> None:
    principal = Principal(Role.CLIENT, "0123456789abcdef")
    with pytest.raises(AttributeError):
        principal.role = Role.ADMIN  # type: ignore[misc]
