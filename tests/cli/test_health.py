"""``pipelinejobs health`` (cli/health.py): SERVING is 0, a server that answers and is not serving is 1,
no server at all is 3 as for every client command, and ``--json`` says the same for scripts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from pipelinejobs_client.cli import EXIT_OK, EXIT_SERVICE, EXIT_UNAVAILABLE
from tests.cli.helpers import Cli
from tests.servers import ServerThread
from tests.support import eventually


@pytest.fixture
def not_serving() -> Iterator[str]:
    """A real gRPC server whose standard health service says NOT_SERVING (as ours does while its
    database is down, tests/system/test_health.py)."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(None)


def test_serving_is_0_in_text_and_json(cli: Cli, server: ServerThread) -> None:
    text = cli("health", key=None)
    assert (text.code, text.out, text.err) == (EXIT_OK, f"{server.address}: SERVING\n", "")
    # A fresh database has nothing to build or count after the start: its upkeep is done at once.
    eventually(lambda: cli("health", "--json", key=None).json()["upkeep"] == "done", what="upkeep done")
    assert cli("health", "--json", key=None).json() == {
        "server": server.address,
        "status": "SERVING",
        "code": "OK",
        "upkeep": "done",
    }


def test_no_server_is_3_as_for_every_client_command(offline: Cli) -> None:
    probe = offline("health", key=None)
    assert probe.code == EXIT_UNAVAILABLE == offline("fsm", "--timeout", "2").code
    assert probe.error_line().startswith("error: UNAVAILABLE: ")
    assert probe.error_line().endswith(f"(server {offline.address})")
    as_json = offline("health", "--json", key=None)
    assert as_json.code == EXIT_UNAVAILABLE
    assert json.loads(as_json.out) == {"server": offline.address, "status": None, "code": "UNAVAILABLE"}


def test_a_server_that_answers_not_serving_is_1(capsys: pytest.CaptureFixture[str], not_serving: str) -> None:
    cli = Cli(capsys, not_serving)
    probe = cli("health", key=None)
    assert (probe.code, probe.out) == (EXIT_SERVICE, f"{not_serving}: NOT_SERVING\n")
    assert cli("health", "--json", key=None).out == (
        json.dumps({"server": not_serving, "status": "NOT_SERVING", "code": "OK", "upkeep": None}, indent=2)
        + "\n"
    )
