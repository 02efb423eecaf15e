"""The JobService tests' pipeline: every job of a test is created from it."""

from __future__ import annotations

import pytest

from tests.support import Stubs, register_pipeline


@pytest.fixture
def pipeline(api: Stubs) -> str:
    return register_pipeline(api)
