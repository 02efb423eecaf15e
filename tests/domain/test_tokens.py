"""Job tokens and API keys (domain/tokens.py): generation, hashing, matching and expiry."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from pipelinejobs_server.domain import tokens
from pipelinejobs_server.domain.tokens import StoredToken, check_token, hash_secret, matches_any, new_token

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
URL_SAFE = re.compile(r"^[A-Za-z0-9_-]+$")


def test_token_carries_at_least_128_random_bits() -> None:
    # DESIGN 4: at least 128 random bits; base64 carries 6 bits per character.
    assert tokens.TOKEN_BYTES * 8 >= 128
    token = new_token()
    assert len(token) * 6 >= 128
    assert len(token) == 32


def test_tokens_are_url_safe() -> None:
    # Tokens travel unescaped in callback query strings.
    for _ in range(200):
        assert URL_SAFE.match(new_token())


def test_tokens_do_not_repeat() -> None:
    drawn = {new_token() for _ in range(2_000)}
    assert len(drawn) == 2_000


def test_tokens_use_the_whole_alphabet() -> None:
    # A crude entropy check: 2,000 tokens x 32 characters should hit nearly all 64 symbols.
    alphabet = set("".join(new_token() for _ in range(2_000)))
    assert len(alphabet) >= 60


def test_hash_is_not_the_token() -> None:
    token = new_token()
    digest = hash_secret(token)
    assert digest != token
    assert token not in digest
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    # Deterministic, so a stored hash can be looked up again.
    assert hash_secret(token) == digest
    assert hash_secret(new_token()) != digest


def test_hash_secret_vector() -> None:
    # SHA-256 hex of the UTF-8 bytes; pinned so stored hashes stay valid across releases.
    assert hash_secret("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_check_token_matches_a_live_token() -> None:
    token = new_token()
    live = StoredToken(hash_secret(token), NOW + timedelta(hours=72))
    other = StoredToken(hash_secret(new_token()), NOW + timedelta(hours=72))
    check = check_token(token, [other, live], NOW)
    assert check.matched == live
    assert check.expired is False


def test_check_token_reports_expiry() -> None:
    token = new_token()
    stale = StoredToken(hash_secret(token), NOW - timedelta(seconds=1))
    check = check_token(token, [stale], NOW)
    assert check.matched == stale
    assert check.expired is True


def test_token_expires_at_its_expiry_instant() -> None:
    token = new_token()
    boundary = StoredToken(hash_secret(token), NOW)
    assert check_token(token, [boundary], NOW).expired is True
    assert check_token(token, [boundary], NOW - timedelta(microseconds=1)).expired is False


def test_check_token_unmatched() -> None:
    stored = [StoredToken(hash_secret(new_token()), NOW + timedelta(hours=1))]
    check = check_token(new_token(), stored, NOW)
    assert check.matched is None
    # "expired" is only meaningful for a match: an unknown token is not reported as expired.
    assert check.expired is False


def test_check_token_with_no_stored_tokens() -> None:
    assert check_token(new_token(), [], NOW) == (None, False)


def test_check_token_accepts_an_iterator() -> None:
    # The store may hand over a cursor; it is consumed once.
    token = new_token()
    live = StoredToken(hash_secret(token), NOW + timedelta(hours=1))
    assert check_token(token, iter([live]), NOW).matched == live


def test_presenting_the_hash_does_not_match() -> None:
    # A leaked hash from the database must not work as a token.
    token = new_token()
    stored = [StoredToken(hash_secret(token), NOW + timedelta(hours=1))]
    assert check_token(hash_secret(token), stored, NOW).matched is None


def test_matches_any() -> None:
    token = new_token()
    digests = [hash_secret(new_token()), hash_secret(token), hash_secret(new_token())]
    assert matches_any(token, digests) == hash_secret(token)
    assert matches_any(new_token(), digests) is None
    assert matches_any(token, []) is None
    assert matches_any("", digests) is None


def test_a_tokens_id_is_the_start_of_its_stored_digest() -> None:
    token = new_token()
    stored = StoredToken(hash_secret(token), NOW)
    assert stored.id == tokens.token_id(stored.digest) == stored.digest[:16]
    assert tokens.is_token_id(stored.id)
    assert token not in stored.id


def test_token_ids_are_16_lower_case_hex_digits() -> None:
    assert tokens.is_token_id("0123456789abcdef")
    for bad in ("", "0123456789abcde", "0123456789abcdef0", "0123456789ABCDEF", "0123456789abcdeg"):
        assert not tokens.is_token_id(bad), bad


def test_the_least_key_length_carries_128_bits() -> None:
    assert tokens.MIN_KEY_LENGTH * 6 >= 128  # base64url: 6 bits per character
