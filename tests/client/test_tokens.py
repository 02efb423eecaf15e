"""Token ids on the client side (tokens.py): the same id the service derives from the hash it stores."""

from __future__ import annotations

from pipelinejobs_client import token_id
from pipelinejobs_server.domain.clock import SYSTEM_CLOCK
from pipelinejobs_server.domain.tokens import StoredToken, hash_secret, new_token


def test_the_client_computes_the_id_the_service_returns() -> None:
    for _ in range(50):
        token = new_token()
        assert token_id(token) == StoredToken(hash_secret(token), SYSTEM_CLOCK.now()).id


def test_an_id_does_not_contain_its_token() -> None:
    token = new_token()
    assert token[:8] not in token_id(token)
    assert len(token_id(token)) == 16
