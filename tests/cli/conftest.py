"""The CLI tests' fixtures: ``pipelinejobs`` against the test's server, or against a port nobody listens on,
and a pipeline registered through it."""

from __future__ import annotations

import pytest

from tests.cli.helpers import Cli
from tests.servers import ServerThread


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], server: ServerThread) -> Cli:
    return Cli(capsys, server.address)


@pytest.fixture
def offline(capsys: pytest.CaptureFixture[str], closed_port: int) -> Cli:
    """Pointed at a port nobody listens on: a command that sent anything would exit 3, not 2."""
    return Cli(capsys, f"127.0.0.1:{closed_port}")


@pytest.fixture
def pipeline(cli: Cli) -> str:
    registered = cli("pipelines", "register", "--name", "fcs-etl", "--component", "fcs-etl@0.4.0", "--json")
    return str(registered.json()["pipeline"]["uuid"])
