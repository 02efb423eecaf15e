"""What the rejected-events log keeps of a refused event's data (domain/truncation.py): all of it up to the
limit, else a stand-in within the limit that gives the size, the hash and the beginning of the original."""

from __future__ import annotations

import hashlib
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from pipelinejobs_server.domain.canonical import canonical_json
from pipelinejobs_server.domain.truncation import truncated

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=40,
)


def size(data: dict[str, Any]) -> int:
    return len(canonical_json(data).encode("utf-8"))


def test_data_that_fits_is_kept_as_it_is() -> None:
    data = {"status": "FINISHED", "n": [1, 2, 3]}
    assert truncated(data, size(data)) is data


def test_larger_data_becomes_a_stand_in_within_the_limit() -> None:
    data = {"blob": "x" * 60_000, "status": "SUSPENDED"}
    text = canonical_json(data)
    kept = truncated(data, 4096)
    assert kept["truncated"] is True
    assert kept["bytes"] == len(text.encode())
    assert kept["sha256"] == hashlib.sha256(text.encode()).hexdigest()
    assert text.startswith(kept["head"])
    assert 3900 < size(kept) <= 4096  # as much of the head as fits


def test_quotes_and_non_ascii_in_the_head_still_fit() -> None:
    # Every quote and backslash is escaped in the head, every "é" takes two bytes: the head is shorter.
    data = {"q": ['"\\' * 3000], "é": "é" * 5000}
    kept = truncated(data, 1000)
    assert size(kept) <= 1000
    assert canonical_json(data).startswith(kept["head"])


@given(data=st.dictionaries(st.text(max_size=8), JSON, max_size=6), limit=st.integers(256, 4096))
def test_the_result_always_fits_and_only_what_does_not_fit_is_replaced(
    data: dict[str, Any], limit: int
) -> None:
    kept = truncated(data, limit)
    assert size(kept) <= limit
    assert (kept is data) == (size(data) <= limit)
