"""ListJobs over 1,200 jobs: every filter, both orders, keyset paging that stays correct
while jobs are being added, page tokens bound to their filters, and indexes behind the common filters."""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf import timestamp_pb2

from pipelinejobs_client.api.v1 import job_pb2, job_service_pb2
from pipelinejobs_server.storage.embedded import EmbeddedDatabase
from tests.servers import ServerProcess, start_server_process
from tests.support import CLIENT, Stubs, create_job, error_info, register_pipeline, send, stubs

pytestmark = pytest.mark.slow

# More than the largest page (1,000), so that the cap on page sizes shows; the sizes where speed
# matters are bench/listing.py's.
JOBS = 1200
LABS = ("UW_BIOFAB", "Ginkgo", "Transcriptic")
EXPERIMENTS = ("Yeast-Gates", "NovelChassis", "Riboswitches", "ProteinDesign")


@dataclass
class Dataset:
    server: ServerProcess
    database: str
    pipelines: tuple[str, str]
    jobs: dict[str, dict[str, Any]]  # uuid -> what the test made of it


def _make_job(address: str, pipelines: tuple[str, str], index: int) -> tuple[str, dict[str, Any]]:
    chooser = random.Random(index)
    lab, experiment = chooser.choice(LABS), chooser.choice(EXPERIMENTS)
    pipeline = pipelines[index % 2]
    with stubs(address) as api:
        created = create_job(
            api, pipeline, {"index": index}, lab=[lab], experiment=[experiment], sample=[f"sample-{index}"]
        )
        state = "CREATED"
        if index % 3 == 0:
            send(api, created.job.uuid, "run", token=created.token)
            state = "RUNNING"
            if index % 5 == 0:
                send(api, created.job.uuid, "fail", token=created.token)
                state = "FAILED"
    return created.job.uuid, {"pipeline": pipeline, "lab": lab, "experiment": experiment, "state": state}


@pytest.fixture(scope="module")
def dataset(embedded: EmbeddedDatabase) -> Iterator[Dataset]:
    name = f"test_listing_{uuid.uuid4().hex[:8]}"
    server = start_server_process(embedded.uri, name)
    try:
        with stubs(server.address) as api:
            pipelines = (register_pipeline(api, "align", "1"), register_pipeline(api, "fcs-etl", "2"))
        with ThreadPoolExecutor(max_workers=8) as pool:
            made = dict(pool.map(lambda i: _make_job(server.address, pipelines, i), range(JOBS)))
        yield Dataset(server, name, pipelines, made)
    finally:
        server.terminate()


def list_all(api: Stubs, page_size: int = 200, **fields: Any) -> list[job_pb2.Job]:
    jobs: list[job_pb2.Job] = []
    token = ""
    while True:
        request = job_service_pb2.ListJobsRequest(page_size=page_size, page_token=token, **fields)
        reply = api.jobs.ListJobs(request, metadata=CLIENT)
        assert len(reply.jobs) <= page_size
        jobs.extend(reply.jobs)
        token = reply.next_page_token
        if not token:
            return jobs


def state(name: str) -> job_pb2.JobState.ValueType:
    return job_pb2.JobState.Value("JOB_STATE_" + name)


def test_paging_newest_first_sees_every_job_once_while_jobs_are_added(dataset: Dataset) -> None:
    stop = threading.Event()

    def add_jobs() -> None:
        n = JOBS
        while not stop.is_set() and n < JOBS + 60:
            _make_job(dataset.server.address, dataset.pipelines, n * 7919)
            n += 1

    adder = threading.Thread(target=add_jobs)
    with stubs(dataset.server.address) as api:
        first = api.jobs.ListJobs(job_service_pb2.ListJobsRequest(page_size=100), metadata=CLIENT)
        adder.start()
        try:
            seen = list(first.jobs)
            token = first.next_page_token
            while token:
                reply = api.jobs.ListJobs(
                    job_service_pb2.ListJobsRequest(page_size=100, page_token=token), metadata=CLIENT
                )
                seen.extend(reply.jobs)
                token = reply.next_page_token
        finally:
            stop.set()
            adder.join(timeout=60)
    uuids = [job.uuid for job in seen]
    assert len(uuids) == len(set(uuids)), "a job appeared twice"
    assert set(dataset.jobs) <= set(uuids), "a job that existed when paging began was skipped"
    keys = [(job.create_time.ToDatetime(), job.uuid) for job in seen]
    assert keys == sorted(keys, reverse=True)


def test_oldest_first_and_by_update_time(dataset: Dataset) -> None:
    with stubs(dataset.server.address) as api:
        oldest = list_all(
            api, order_by=job_service_pb2.JOB_ORDER_CREATE_TIME_ASC, pipeline_uuid=dataset.pipelines[0]
        )
        keys = [(job.create_time.ToDatetime(), job.uuid) for job in oldest]
        assert keys == sorted(keys)
        updated = list_all(api, order_by=job_service_pb2.JOB_ORDER_UPDATE_TIME_DESC, states=[state("FAILED")])
        stamps = [(job.update_time.ToDatetime(), job.uuid) for job in updated]
        assert stamps == sorted(stamps, reverse=True)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"states": ["RUNNING"]}, lambda job: job["state"] == "RUNNING"),
        ({"states": ["FAILED", "CREATED"]}, lambda job: job["state"] in ("FAILED", "CREATED")),
        ({"lab": ["Ginkgo"]}, lambda job: job["lab"] == "Ginkgo"),
        ({"lab": ["Ginkgo", "UW_BIOFAB"]}, lambda job: job["lab"] in ("Ginkgo", "UW_BIOFAB")),
        (
            {"lab": ["UW_BIOFAB"], "experiment": ["Yeast-Gates"], "states": ["RUNNING"]},
            lambda job: (
                (job["lab"], job["experiment"], job["state"]) == ("UW_BIOFAB", "Yeast-Gates", "RUNNING")
            ),
        ),
    ],
    ids=["state", "two-states", "lab", "two-labs", "lab-experiment-state"],
)
def test_filters_match_exactly_the_jobs_they_describe(
    dataset: Dataset, fields: dict[str, Any], expected: Any
) -> None:
    request: dict[str, Any] = {}
    if "states" in fields:
        request["states"] = [state(name) for name in fields["states"]]
    links = {kind: fields[kind] for kind in ("lab", "experiment") if kind in fields}
    if links:
        request["links"] = job_pb2.JobLinks(**links)
    with stubs(dataset.server.address) as api:
        found = {job.uuid for job in list_all(api, **request)}
    wanted = {uuid for uuid, job in dataset.jobs.items() if expected(job)}
    assert wanted <= found
    # Jobs added by the concurrent-paging test are not in the dataset's book; everything else must match.
    assert found - wanted <= found - set(dataset.jobs)


def test_pipeline_sample_and_time_filters(dataset: Dataset) -> None:
    with stubs(dataset.server.address) as api:
        by_pipeline = {job.uuid for job in list_all(api, pipeline_uuid=dataset.pipelines[1])}
        assert {
            u for u, job in dataset.jobs.items() if job["pipeline"] == dataset.pipelines[1]
        } <= by_pipeline
        one = list_all(api, links=job_pb2.JobLinks(sample=["sample-42"]))
        assert [dict(job.data)["index"] for job in one] == [42]

        everything = list_all(api, order_by=job_service_pb2.JOB_ORDER_CREATE_TIME_ASC)
        middle = everything[len(everything) // 3 : 2 * len(everything) // 3]
        start, end = middle[0].create_time, middle[-1].create_time
        window = job_service_pb2.TimeRange(start_time=start, end_time=end)
        inside = list_all(api, create_time=window, order_by=job_service_pb2.JOB_ORDER_CREATE_TIME_ASC)
        assert inside
        for job in inside:
            assert start.ToDatetime() <= job.create_time.ToDatetime() < end.ToDatetime()
        expected = [
            job.uuid
            for job in everything
            if start.ToDatetime() <= job.create_time.ToDatetime() < end.ToDatetime()
        ]
        assert [job.uuid for job in inside] == expected

        later = timestamp_pb2.Timestamp()
        later.FromDatetime(datetime.now() + timedelta(days=1))
        assert list_all(api, update_time=job_service_pb2.TimeRange(start_time=later)) == []


def test_page_tokens_belong_to_their_filters_and_sizes_are_capped(dataset: Dataset) -> None:
    with stubs(dataset.server.address) as api:
        first = api.jobs.ListJobs(job_service_pb2.ListJobsRequest(page_size=10), metadata=CLIENT)
        other_filter = job_service_pb2.ListJobsRequest(
            page_size=10, page_token=first.next_page_token, states=[state("RUNNING")]
        )
        with pytest.raises(grpc.RpcError) as caught:
            api.jobs.ListJobs(other_filter, metadata=CLIENT)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error_info(caught.value).metadata["field"] == "page_token"
        assert (
            len(api.jobs.ListJobs(job_service_pb2.ListJobsRequest(page_size=5000), metadata=CLIENT).jobs)
            == 1000
        )
        assert len(api.jobs.ListJobs(job_service_pb2.ListJobsRequest(), metadata=CLIENT).jobs) == 100
        bad_range = job_service_pb2.TimeRange(
            start_time=first.jobs[0].create_time, end_time=first.jobs[-1].create_time
        )
        with pytest.raises(grpc.RpcError) as caught:
            api.jobs.ListJobs(job_service_pb2.ListJobsRequest(create_time=bad_range), metadata=CLIENT)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
