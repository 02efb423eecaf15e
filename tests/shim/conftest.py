"""The shim tests' clients: HTTP to the shim, and the job service behind it. tests/conftest.py starts
both, once per test module; here they get the short names the shim tests use."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from pipelinejobs_client import JobsClient
from tests.servers import ShimThread
from tests.shim.helpers import http_client


@pytest.fixture(scope="module")
def http(shim: ShimThread) -> Iterator[httpx.Client]:
    with http_client(shim.url) as client:
        yield client


@pytest.fixture(scope="module")
def jobs(shim_jobs: JobsClient) -> JobsClient:
    return shim_jobs


@pytest.fixture(scope="module")
def pipeline(shim_pipeline: str) -> str:
    return shim_pipeline
