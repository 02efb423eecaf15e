"""History entries and their hash chain (domain/history.py), and the worked example in docs/history.md.

The example's canonical encodings and hashes are literals here and must appear verbatim in the doc, so
neither the encoding nor the doc can change without this file noticing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from pipelinejobs_server.domain import history
from pipelinejobs_server.domain.history import Entry, format_timestamp, utc_now_ms, verify_chain
from tests.support import ROOT

DOC = ROOT / "docs" / "history.md"

JOB = "dcb51aec-e1ff-5201-9234-c249f79a79b7"
START = datetime(2018, 9, 13, 16, 28, 43, 123000, tzinfo=UTC)

# The worked example of docs/history.md: a job created, then run.
EXAMPLE_1 = Entry(
    job_uuid=JOB,
    seq=1,
    uuid="3f2c1c8e-6a55-4c1e-9a77-2f8e0d6b5a01",
    name="create",
    from_state="",
    to_state="CREATED",
    timestamp=START,
    data={},
    source="grpc",
    idempotency_key="",
    prev_hash="",
)
EXAMPLE_1_CANONICAL = (
    '{"data":{},"from_state":"","idempotency_key":"","job_uuid":"dcb51aec-e1ff-5201-9234-c249f79a79b7",'
    '"name":"create","prev_hash":"","seq":1,"source":"grpc","timestamp":"2018-09-13T16:28:43.123Z",'
    '"to_state":"CREATED","uuid":"3f2c1c8e-6a55-4c1e-9a77-2f8e0d6b5a01","v":1}'
)
EXAMPLE_1_HASH = "8615f4f42f3a279e9f4a7f848a40c1ac86bb6694626afdaa86e1dd13c69e9fb7"
EXAMPLE_2 = Entry(
    job_uuid=JOB,
    seq=2,
    uuid="9b0e4d2a-1f73-4c6b-8e5d-7a4c3b2e1f02",
    name="run",
    from_state="CREATED",
    to_state="RUNNING",
    timestamp=datetime(2018, 9, 13, 16, 29, 1, 500000, tzinfo=UTC),
    data={"key1": "value1"},
    source="grpc",
    idempotency_key="run-1",
    prev_hash=EXAMPLE_1_HASH,
)
EXAMPLE_2_CANONICAL = (
    '{"data":{"key1":"value1"},"from_state":"CREATED","idempotency_key":"run-1",'
    '"job_uuid":"dcb51aec-e1ff-5201-9234-c249f79a79b7","name":"run",'
    '"prev_hash":"8615f4f42f3a279e9f4a7f848a40c1ac86bb6694626afdaa86e1dd13c69e9fb7","seq":2,"source":"grpc",'
    '"timestamp":"2018-09-13T16:29:01.500Z","to_state":"RUNNING","uuid":"9b0e4d2a-1f73-4c6b-8e5d-7a4c3b2e1f02",'
    '"v":1}'
)
EXAMPLE_2_HASH = "9e22e00a430a41d029665c18372c8c02588601b9a919e66c3f016ca3600ce343"

# (event, from, to) of a plausible five-event life.
LIFE = [
    ("create", "", "CREATED"),
    ("run", "CREATED", "RUNNING"),
    ("update", "RUNNING", "RUNNING"),
    ("finish", "RUNNING", "FINISHED"),
    ("retire", "FINISHED", "RETIRED"),
]


def _chain(length: int = 5) -> list[tuple[Entry, str]]:
    """(entry, stored hash) pairs linked the way the service writes them."""
    chain: list[tuple[Entry, str]] = []
    previous = ""
    for seq in range(1, length + 1):
        name, from_state, to_state = LIFE[(seq - 1) % len(LIFE)]
        entry = Entry(
            job_uuid=JOB,
            seq=seq,
            uuid=f"00000000-0000-4000-8000-{seq:012d}",
            name=name,
            from_state=from_state,
            to_state=to_state,
            timestamp=START + timedelta(seconds=seq),
            data={"step": seq},
            source="grpc",
            idempotency_key=f"key-{seq}",
            prev_hash=previous,
        )
        previous = entry.digest()
        chain.append((entry, previous))
    return chain


def test_example_chain() -> None:
    assert EXAMPLE_1.canonical() == EXAMPLE_1_CANONICAL
    assert EXAMPLE_1.digest() == EXAMPLE_1_HASH
    assert EXAMPLE_2.canonical() == EXAMPLE_2_CANONICAL
    assert EXAMPLE_2.digest() == EXAMPLE_2_HASH
    # What another language does: SHA-256 hex over the UTF-8 bytes of the canonical text.
    assert hashlib.sha256(EXAMPLE_2_CANONICAL.encode("utf-8")).hexdigest() == EXAMPLE_2_HASH
    assert verify_chain([(EXAMPLE_1, EXAMPLE_1_HASH), (EXAMPLE_2, EXAMPLE_2_HASH)]).valid


def test_example_is_published_in_docs() -> None:
    text = DOC.read_text(encoding="utf-8")
    literals = [EXAMPLE_1_CANONICAL, EXAMPLE_1_HASH, EXAMPLE_2_CANONICAL, EXAMPLE_2_HASH]
    missing = [literal for literal in literals if literal not in text]
    assert not missing, f"docs/history.md lacks: {missing}"


def test_digest_is_deterministic() -> None:
    entry, stored = _chain(1)[0]
    copy = dataclasses.replace(entry, data=dict(entry.data))
    assert entry.digest() == copy.digest() == stored
    assert len(stored) == 64


def test_canonical_covers_every_field() -> None:
    # Every field of the entry, plus the version, is hashed: editing any of them must show.
    entry, _ = _chain(2)[1]
    fields = {field.name for field in dataclasses.fields(Entry)}
    canonical = entry.canonical()
    for field in fields:
        assert f'"{field}":' in canonical
    assert canonical.endswith('"v":1}')
    assert history.HASH_VERSION == 1


def test_canonical_includes_prev_hash() -> None:
    first, first_hash = _chain(2)[0]
    second, _ = _chain(2)[1]
    assert f'"prev_hash":"{first_hash}"' in second.canonical()
    assert '"prev_hash":""' in first.canonical()
    assert dataclasses.replace(second, prev_hash="0" * 64).digest() != second.digest()


def test_each_field_changes_the_digest() -> None:
    entry, _ = _chain(3)[2]
    changes: dict[str, Any] = {
        "job_uuid": "01e5b44c-53ee-56e2-89a8-b25a987303e3",
        "seq": 4,
        "uuid": "00000000-0000-4000-8000-999999999999",
        "name": "fail",
        "from_state": "CREATED",
        "to_state": "FAILED",
        "timestamp": entry.timestamp + timedelta(milliseconds=1),
        "data": {"step": 3.5},
        "source": "callback",
        "idempotency_key": "other",
        "prev_hash": "",
    }
    assert set(changes) == {field.name for field in dataclasses.fields(Entry)}
    for field, value in changes.items():
        assert dataclasses.replace(entry, **{field: value}).digest() != entry.digest(), field


def test_digest_ignores_sub_millisecond_time() -> None:
    # Timestamps are hashed at millisecond precision, the precision MongoDB stores.
    entry, _ = _chain(1)[0]
    finer = dataclasses.replace(entry, timestamp=entry.timestamp + timedelta(microseconds=999))
    assert finer.digest() == entry.digest()


def test_verify_chain_accepts_a_valid_chain() -> None:
    check = verify_chain(_chain(5))
    assert check == history.ChainCheck(valid=True, checked=5, first_bad_seq=0, reason="")


def test_verify_chain_accepts_an_empty_history() -> None:
    assert verify_chain([]) == history.ChainCheck(True, 0, 0, "")


def test_verify_chain_detects_edited_data() -> None:
    chain = _chain(5)
    entry, stored = chain[2]
    chain[2] = (dataclasses.replace(entry, data={"step": 333}), stored)
    check = verify_chain(chain)
    assert not check.valid
    assert check.first_bad_seq == 3
    assert check.checked == 2
    assert "hash" in check.reason


def test_verify_chain_detects_a_rewritten_hash() -> None:
    # An editor who also recomputes the edited entry's hash breaks the next entry's link instead.
    chain = _chain(5)
    entry, _ = chain[2]
    edited = dataclasses.replace(entry, data={"step": 333})
    chain[2] = (edited, edited.digest())
    check = verify_chain(chain)
    assert not check.valid
    assert check.first_bad_seq == 4
    assert "prev_hash" in check.reason


def test_verify_chain_detects_a_wrong_prev_link() -> None:
    chain = _chain(5)
    entry, _ = chain[3]
    relinked = dataclasses.replace(entry, prev_hash=chain[1][1])
    chain[3] = (relinked, relinked.digest())
    check = verify_chain(chain)
    assert (check.valid, check.first_bad_seq, check.checked) == (False, 4, 3)
    assert "prev_hash" in check.reason


def test_verify_chain_detects_a_first_entry_with_a_prev_hash() -> None:
    chain = _chain(2)
    entry, _ = chain[0]
    forged = dataclasses.replace(entry, prev_hash="0" * 64)
    chain[0] = (forged, forged.digest())
    assert verify_chain(chain).first_bad_seq == 1


def test_verify_chain_detects_a_gap_in_seq() -> None:
    chain = _chain(5)
    del chain[2]
    check = verify_chain(chain)
    assert (check.valid, check.first_bad_seq, check.checked) == (False, 3, 2)
    assert check.reason == "expected seq 3, found 4"


def test_verify_chain_detects_a_duplicate_seq() -> None:
    chain = _chain(5)
    chain.insert(2, chain[1])
    check = verify_chain(chain)
    assert (check.valid, check.first_bad_seq) == (False, 3)


def test_verify_chain_detects_a_history_not_starting_at_one() -> None:
    check = verify_chain(_chain(5)[1:])
    assert (check.valid, check.first_bad_seq) == (False, 1)


def test_verify_chain_async_agrees_with_verify_chain() -> None:
    # VerifyHistory streams entries from the store; the streaming check must give the same answers.
    async def stream(pairs: list[tuple[Entry, str]]) -> AsyncIterator[tuple[Entry, str]]:
        for pair in pairs:
            yield pair

    broken = _chain(5)
    del broken[2]
    for pairs in (_chain(5), broken, []):
        assert asyncio.run(history.verify_chain_async(stream(pairs))) == verify_chain(pairs)


def test_format_timestamp_has_milliseconds_and_z() -> None:
    moment = datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    assert format_timestamp(moment) == "2024-01-02T03:04:05.678Z"
    assert format_timestamp(moment.replace(microsecond=0)) == "2024-01-02T03:04:05.000Z"
    # Milliseconds are truncated, not rounded: rounding could carry into the seconds.
    assert format_timestamp(moment.replace(microsecond=999999)) == "2024-01-02T03:04:05.999Z"


def test_format_timestamp_converts_to_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    moment = datetime(2024, 1, 2, 5, 4, 5, 678000, tzinfo=plus_two)
    assert format_timestamp(moment) == "2024-01-02T03:04:05.678Z"


def test_utc_now_ms_is_aware_and_truncated() -> None:
    for _ in range(50):
        now = utc_now_ms()
        assert now.tzinfo is UTC
        assert now.microsecond % 1000 == 0
    assert abs(datetime.now(UTC) - utc_now_ms()) < timedelta(seconds=5)
