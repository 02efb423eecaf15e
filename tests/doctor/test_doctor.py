"""``pipelinejobs doctor``: a healthy database passes; each kind of damage is found and named.

Damage is done with pymongo directly, the way a bad migration, a hand edit or a lost write would do it;
crash leftovers are forged the way a writer killed between its two writes leaves them (ADR 003).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import tracemalloc
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import DeleteOne
from pymongo.database import Database

from pipelinejobs_client.api.v1 import job_service_pb2
from pipelinejobs_server.doctor import Problem, Severity, check_job, diagnose
from pipelinejobs_server.domain.history import Entry, utc_now_ms
from pipelinejobs_server.storage.documents import event_to_document
from pipelinejobs_server.storage.embedded import EmbeddedDatabase
from tests.forging import forge_next
from tests.servers import ServerThread
from tests.support import ADMIN, CLIENT, Stubs, create_job, eventually, register_pipeline, send, stubs

Document = dict[str, Any]


def busy_job(api: Stubs, pipeline: str, sample: str) -> str:
    """A job that went through most of the machine, admin reset/ready included."""
    created = create_job(api, pipeline, sample=[sample])
    job, token = created.job.uuid, created.token
    for name in ("run", "update", "finish", "index", "indexed", "validate", "validated"):
        send(api, job, name, token=token, data={"step": name})
    send(api, job, "reset", metadata=ADMIN)
    send(api, job, "ready", metadata=ADMIN)
    send(api, job, "run", token=token, key=f"again-{job}")
    return job


@pytest.fixture
def jobs(api: Stubs) -> list[str]:
    pipeline = register_pipeline(api)
    made = [busy_job(api, pipeline, f"sample-{n}") for n in range(3)]
    made.append(create_job(api, pipeline, sample=["fresh"]).job.uuid)  # only its create entry
    return made


def codes(problems: list[Problem]) -> list[tuple[str, str, int | None]]:
    """(job, code, seq) of each problem, sorted: jobs are checked in uuid order, not creation order."""
    return sorted((problem.job_uuid, problem.code, problem.seq) for problem in problems)


def test_a_healthy_database_passes(mongodb_uri: str, database_name: str, jobs: list[str]) -> None:
    problems, summary = diagnose(mongodb_uri, database_name)
    assert problems == []
    assert summary.jobs == 4
    assert summary.events == 3 * 11 + 1
    assert summary.healthy(strict=True)


def test_counters_that_disagree_with_the_records_are_an_error(
    mongodb_uri: str, database_name: str, jobs: list[str], db: Database[Document]
) -> None:
    eventually(lambda: db.job_counts.find_one({"_id": "ready"}) is not None, what="the jobs counted")
    assert diagnose(mongodb_uri, database_name)[0] == []
    db.job_counts.insert_one({"_id": "*|RUNNING|forged", "scope": "*", "state": "RUNNING", "n": 2})
    problems, summary = diagnose(mongodb_uri, database_name)
    assert [(p.job_uuid, p.code, p.severity) for p in problems] == [("", "COUNTS_WRONG", Severity.ERROR)]
    assert "all jobs RUNNING: counted 5, the records say 3" in problems[0].message
    assert not summary.healthy(strict=False)


def test_a_tampered_entry_breaks_the_chain(
    mongodb_uri: str, database_name: str, jobs: list[str], db: Database[Document], api: Stubs
) -> None:
    db.job_events.update_one({"job_uuid": jobs[0], "seq": 3}, {"$set": {"data_json": '{"step":"edited"}'}})
    problems, summary = diagnose(mongodb_uri, database_name)
    assert codes(problems) == [(jobs[0], "HASH_CHAIN", 3)]
    assert "hash does not match" in problems[0].message
    assert not summary.healthy(strict=False)
    # VerifyHistory, over the API, agrees with the doctor.
    verdict = api.jobs.VerifyHistory(job_service_pb2.VerifyHistoryRequest(uuid=jobs[0]), metadata=CLIENT)
    assert (verdict.valid, verdict.first_bad_seq) == (False, 3)


def test_a_missing_entry_is_a_gap(
    mongodb_uri: str, database_name: str, jobs: list[str], db: Database[Document]
) -> None:
    db.job_events.delete_one({"job_uuid": jobs[1], "seq": 4})
    problems, _ = diagnose(mongodb_uri, database_name)
    assert codes(problems) == [(jobs[1], "SEQ_GAP", 4)]
    assert problems[0].message == "expected seq 4, found 5"


def test_a_lost_last_entry_leaves_the_record_ahead(
    mongodb_uri: str, database_name: str, jobs: list[str], db: Database[Document]
) -> None:
    db.job_events.delete_one({"job_uuid": jobs[2], "seq": 11})
    problems, _ = diagnose(mongodb_uri, database_name)
    assert codes(problems) == [(jobs[2], "RECORD_AHEAD", None)]


def test_a_record_that_disagrees_with_its_history(
    mongodb_uri: str, database_name: str, jobs: list[str], db: Database[Document]
) -> None:
    db.jobs.update_one({"_id": jobs[0]}, {"$set": {"state": "FAILED"}})
    db.jobs.update_one({"_id": jobs[1]}, {"$set": {"ever_running": False}})
    problems, _ = diagnose(mongodb_uri, database_name)
    # The hand edit went around the counters too (the service moves them with the record).
    assert codes(problems) == sorted(
        [
            (jobs[0], "RECORD_MISMATCH", 11),
            (jobs[1], "EVER_RUNNING_MISMATCH", None),
            ("", "COUNTS_WRONG", None),
        ]
    )
    assert "state 'FAILED' != 'RUNNING'" in next(p.message for p in problems if p.job_uuid == jobs[0])


def test_an_illegal_transition_with_a_valid_chain_is_found(
    mongodb_uri: str, database_name: str, jobs: list[str], db: Database[Document], api: Stubs
) -> None:
    # Hashes prove the history was not edited after the fact; only the doctor checks it was legal.
    forge_next(db, jobs[0], "finalize", "FINALIZED", advance_record=True)
    problems, _ = diagnose(mongodb_uri, database_name)
    assert codes(problems) == [("", "COUNTS_WRONG", None), (jobs[0], "ILLEGAL_TRANSITION", 12)]
    assert "not allowed in state RUNNING" in problems[0 if problems[0].job_uuid else 1].message
    verdict = api.jobs.VerifyHistory(job_service_pb2.VerifyHistoryRequest(uuid=jobs[0]), metadata=CLIENT)
    assert verdict.valid


def test_a_record_one_entry_behind_is_a_warning_until_a_reader_rolls_it_forward(
    mongodb_uri: str, database_name: str, jobs: list[str], db: Database[Document], api: Stubs
) -> None:
    # What a writer SIGKILLed between its append and its compare-and-set leaves behind.
    forge_next(db, jobs[0], "update", "RUNNING", advance_record=False)
    problems, summary = diagnose(mongodb_uri, database_name)
    assert [(p.code, p.severity) for p in problems] == [("RECORD_ONE_BEHIND", Severity.WARNING)]
    assert summary.healthy(strict=False)
    assert not summary.healthy(strict=True)
    api.jobs.GetJob(job_service_pb2.GetJobRequest(uuid=jobs[0]), metadata=CLIENT)  # settles the record
    problems, summary = diagnose(mongodb_uri, database_name)
    assert problems == []


def test_two_entries_behind_is_an_error(
    mongodb_uri: str, database_name: str, jobs: list[str], db: Database[Document]
) -> None:
    # A writer appends only after reading the record at seq - 1, so a crash leaves at most one behind.
    forge_next(db, jobs[0], "update", "RUNNING", advance_record=False)
    forge_next(db, jobs[0], "update", "RUNNING", advance_record=False)
    problems, _ = diagnose(mongodb_uri, database_name)
    assert codes(problems) == [(jobs[0], "RECORD_BEHIND", None)]


def test_interrupted_creation_cancel_and_orphans_are_warnings(
    mongodb_uri: str, database_name: str, jobs: list[str], db: Database[Document]
) -> None:
    fresh = jobs[3]
    db.job_events.delete_one({"job_uuid": fresh, "seq": 1})
    db.jobs.update_one({"_id": fresh}, {"$set": {"seq": 0, "last_event": "", "head_hash": ""}})
    db.jobs.update_one({"_id": jobs[2]}, {"$set": {"cancelled": True}})
    orphan = str(uuid.uuid4())
    for seq in (1, 2):
        db.job_events.insert_one({"_id": str(uuid.uuid4()), "job_uuid": orphan, "seq": seq})
    # The edits went around the counters, which the service's own writes move with the records. One
    # bounded delete each: on the embedded database a deleteMany holds the collection while it retries a
    # write conflict, and the server's folding transaction it conflicted with needed the collection to
    # finish, so neither did (the database wedged for good, and the suite with it).
    counters = [DeleteOne({"_id": counter["_id"]}) for counter in db.job_counts.find({}, {"_id": 1})]
    if counters:
        db.job_counts.bulk_write(counters, ordered=False)
    problems, summary = diagnose(mongodb_uri, database_name)
    assert sorted((p.job_uuid, p.code) for p in problems) == sorted(
        [(fresh, "CREATION_PENDING"), (jobs[2], "CANCEL_PENDING"), (orphan, "ORPHAN_EVENTS")]
    )
    assert "2 log entries" in next(p.message for p in problems if p.code == "ORPHAN_EVENTS")
    assert (summary.errors, summary.warnings) == (0, 3)


def test_malformed_documents_are_reported_not_crashed_on(
    mongodb_uri: str, database_name: str, jobs: list[str], db: Database[Document]
) -> None:
    db.jobs.update_one({"_id": jobs[0]}, {"$set": {"seq": "eleven"}})
    db.job_events.update_one({"job_uuid": jobs[1], "seq": 2}, {"$unset": {"from_state": ""}})
    db.job_events.update_one({"job_uuid": jobs[2], "seq": 2}, {"$set": {"timestamp": "yesterday"}})
    problems, _ = diagnose(mongodb_uri, database_name)
    assert codes(problems) == sorted(
        [
            (jobs[0], "MALFORMED_RECORD", None),
            (jobs[1], "MALFORMED_EVENT", 2),
            (jobs[2], "MALFORMED_EVENT", 2),
            ("", "COUNTS_WRONG", None),  # the records count no job at seq "eleven"
        ]
    )


def test_only_the_jobs_asked_for(
    mongodb_uri: str, database_name: str, jobs: list[str], db: Database[Document]
) -> None:
    db.jobs.update_one({"_id": jobs[0]}, {"$set": {"state": "FAILED"}})
    missing = str(uuid.uuid4())
    problems, summary = diagnose(mongodb_uri, database_name, [jobs[1], missing])
    assert codes(problems) == [(missing, "JOB_NOT_FOUND", None)]
    assert summary.jobs == 1


def test_a_live_database_gives_no_false_alarms(
    mongodb_uri: str, database_name: str, api: Stubs, server: ServerThread, db: Database[Document]
) -> None:
    # Records are read a page at a time, logs later: on a busy database a record looks behind its log
    # until the doctor reads the job again. Nothing the service does may be reported as an error.
    pipeline = register_pipeline(api)
    created = [create_job(api, pipeline, sample=[f"live-{n}"]) for n in range(10)]
    stop = threading.Event()
    sent = [0] * len(created)  # each sender's events so far, its own slot: no lock needed

    def sender(n: int, job: str, token: str) -> None:
        with stubs(server.address) as own:
            send(own, job, "run", token=token)
            sent[n] += 1
            while not stop.is_set():
                send(own, job, "update", token=token)
                sent[n] += 1

    def creator() -> None:  # jobs that come and go: the counts change while the doctor compares them
        with stubs(server.address) as own:
            n = 0
            while not stop.is_set():
                made = create_job(own, pipeline, sample=[f"coming-and-going-{n}"])
                send(own, made.job.uuid, "fail", token=made.token)
                send(own, made.job.uuid, "retire", token=made.token)
                n += 1

    threads = [threading.Thread(target=sender, args=(n, c.job.uuid, c.token)) for n, c in enumerate(created)]
    threads.append(threading.Thread(target=creator))
    for thread in threads:
        thread.start()
    # Every job busy before the doctor looks (a loaded machine starts threads late): each has its create,
    # its run and an update at least, so every pass reads 30 events or more.
    eventually(lambda: min(sent) >= 2, what="every sender's first two events")
    before = sum(sent)
    # Real damage on a busy job is still reported as such, however much the job changes meanwhile.
    damaged = created[0].job.uuid
    db.job_events.update_one({"job_uuid": damaged, "seq": 1}, {"$set": {"data_json": '{"x":1}'}})
    try:
        for _ in range(5):
            problems, summary = diagnose(mongodb_uri, database_name)
            assert [(p.job_uuid, p.code) for p in problems if p.severity is Severity.ERROR] == [
                (damaged, "HASH_CHAIN")
            ]
            # The creator's jobs may be seen mid-creation (a warning: a write in flight).
            allowed = {
                "HASH_CHAIN",
                "RECORD_ONE_BEHIND",
                "JOB_CHANGING",
                "COUNTS_CHANGING",
                "CREATION_PENDING",
            }
            assert {p.code for p in problems} <= allowed, problems
            assert summary.events >= 10 * 3
        during = sum(sent) - before
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert during > 0, "the jobs stood still while the doctor read them"


def synthetic_log(job: str, length: int) -> Iterator[Document]:
    """A valid log of ``length`` entries, produced one at a time."""
    previous, state = "", ""
    for seq in range(1, length + 1):
        name, to_state = ("create", "CREATED") if seq == 1 else ("run", "RUNNING")
        entry = Entry(
            job, seq, f"e{seq}", name, state, to_state, utc_now_ms(), {"n": seq}, "grpc", "", previous
        )
        previous, state = entry.digest(), to_state
        yield event_to_document(entry, previous)


def test_memory_does_not_grow_with_the_history() -> None:
    def peak(length: int) -> int:
        job = str(uuid.uuid4())
        record = {"_id": job, "seq": length, "state": "RUNNING", "last_event": "run", "ever_running": True}
        tracemalloc.start()
        problems, events = check_job(record, synthetic_log(job, length))
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert events == length
        assert [p.code for p in problems] == ["RECORD_MISMATCH"]  # head_hash left out of the record
        return top

    # Ten times the history, about the same peak: only the last two entries are ever held.
    small, large = peak(500), peak(5_000)
    assert large < small * 1.5 + 64 * 1024, (small, large)


def run_doctor(
    *arguments: str, uri: str = "", database: str = "", cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PIPELINEJOBS_")}
    env.pop("MONGODB_URI", None)
    env.update({"PIPELINEJOBS_DB_TIMEOUT_MS": "500"})
    if uri:
        env["MONGODB_URI"] = uri
    if database:
        env["PIPELINEJOBS_DATABASE"] = database
    return subprocess.run(
        [sys.executable, "-m", "pipelinejobs_server", "doctor", *arguments],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_command_text_json_strict_and_exit_codes(
    mongodb_uri: str, database_name: str, jobs: list[str], db: Database[Document], tmp_path: Path
) -> None:
    healthy = run_doctor(uri=mongodb_uri, database=database_name)
    assert healthy.returncode == 0, healthy.stderr
    assert healthy.stdout.startswith(f"healthy: database '{database_name}', 4 jobs and 34 log entries")

    forge_next(db, jobs[0], "update", "RUNNING", advance_record=False)
    db.job_events.update_one({"job_uuid": jobs[1], "seq": 2}, {"$set": {"data_json": '{"x":1}'}})
    found = run_doctor("--json", "--mongodb-uri", mongodb_uri, "--database", database_name)
    assert found.returncode == 1, found.stderr
    report = json.loads(found.stdout)
    assert sorted((p["job_uuid"], p["code"], p["severity"], p["seq"]) for p in report["problems"]) == sorted(
        [(jobs[0], "RECORD_ONE_BEHIND", "warning", 12), (jobs[1], "HASH_CHAIN", "error", 2)]
    )
    assert report["summary"] | {"seconds": 0} == {
        "jobs": 4,
        "events": 35,
        "errors": 1,
        "warnings": 1,
        "unreported": 0,
        "strict": False,
        "healthy": False,
        "seconds": 0,
    }

    only_warning = run_doctor("--job", jobs[0], uri=mongodb_uri, database=database_name)
    assert only_warning.returncode == 0
    assert f"warning {jobs[0]} seq 12     RECORD_ONE_BEHIND:" in only_warning.stdout
    strict = run_doctor("--job", jobs[0], "--strict", uri=mongodb_uri, database=database_name)
    assert strict.returncode == 1
    assert strict.stdout.splitlines()[-1].startswith("PROBLEMS FOUND")


def test_the_command_refuses_to_guess(
    mongodb_uri: str, database_name: str, jobs: list[str], closed_port: int, tmp_path: Path
) -> None:
    # Where there is no .pipelinejobs either (from a repository where `make run` ran, the doctor would
    # look for the database of `up` there, tests/cli/test_up_data_dir.py).
    no_uri = run_doctor(cwd=tmp_path)
    assert (no_uri.returncode, no_uri.stderr) == (
        2,
        "error: set MONGODB_URI or --mongodb-uri (the database the servers use), "
        "or --data-dir (the embedded database of `pipelinejobs up`)\n",
    )
    typo = run_doctor(uri=mongodb_uri, database=database_name + "_typo")
    assert typo.returncode == 2
    assert "has no jobs collection" in typo.stderr
    bad_job = run_doctor("--job", "not-a-uuid", uri=mongodb_uri, database=database_name)
    assert bad_job.returncode == 2
    down = run_doctor(uri=f"mongodb://127.0.0.1:{closed_port}/?directConnection=true", database=database_name)
    assert down.returncode == 3
    assert down.stderr.startswith("error: database unavailable")


def test_the_password_comes_from_a_file_for_a_uri_that_leaves_it_out(
    embedded: EmbeddedDatabase, database_name: str, jobs: list[str], tmp_path: Path
) -> None:
    """``up`` prints the database URI without its password and says which file holds it."""
    uri = embedded.shown_uri
    with_file = run_doctor(
        "--mongodb-password-file", str(embedded.password_path), uri=uri, database=database_name
    )
    assert with_file.returncode == 0, with_file.stderr
    assert with_file.stdout.startswith(f"healthy: database '{database_name}', 4 jobs")

    without = run_doctor(uri=uri, database=database_name)
    assert without.returncode == 2
    assert without.stderr.startswith("error: the MongoDB URI cannot be used: A password is required")
    assert "--mongodb-password-file" in without.stderr
    missing = run_doctor("--mongodb-password-file", str(tmp_path / "none"), uri=uri, database=database_name)
    assert missing.returncode == 2
    assert missing.stderr.startswith("error: cannot read the database password:")
    wrong = tmp_path / "wrong.password"
    wrong.write_text("not-it\n")
    refused = run_doctor("--mongodb-password-file", str(wrong), uri=uri, database=database_name)
    assert refused.returncode == 3
    assert refused.stderr.startswith("error: database unavailable: OperationFailure: authentication failed")
    assert embedded.password not in with_file.stdout + without.stderr + missing.stderr + refused.stderr
