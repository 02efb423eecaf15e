"""Tools in other languages: a Node.js program using @grpc/grpc-js and @grpc/proto-loader, knowing the
service only through protos/, creates a job, sends events and reads the history from a running server.

The test setup installs the two npm packages (pinned in tests/system/node/package.json) on first use.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.servers import ServerThread
from tests.support import CLIENT_KEY, ROOT

pytestmark = pytest.mark.node

NODE_DIR = Path(__file__).resolve().parent / "node"


@pytest.fixture(scope="module")
def node() -> str:
    executable = shutil.which("node")
    npm = shutil.which("npm")
    if executable is None or npm is None:
        pytest.fail("Node.js and npm are needed for this test (apt-get install nodejs npm)")
    if not (NODE_DIR / "node_modules" / "@grpc" / "proto-loader").exists():
        subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--silent"], cwd=NODE_DIR, check=True, timeout=300
        )
    return executable


def test_node_client_drives_a_job_through_the_proto_contract(node: str, server: ServerThread) -> None:
    result = subprocess.run(
        [node, str(NODE_DIR / "client.js"), server.address, CLIENT_KEY, str(ROOT / "protos")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["state"] == "JOB_STATE_FINISHED"
    assert summary["refused"] == "FAILED_PRECONDITION"
    assert summary["archive_path"].startswith("/products/v1/")
    assert [(entry["seq"], entry["name"], entry["to"]) for entry in summary["history"]] == [
        (1, "JOB_EVENT_CREATE", "JOB_STATE_CREATED"),
        (2, "JOB_EVENT_RUN", "JOB_STATE_RUNNING"),
        (3, "JOB_EVENT_UPDATE", "JOB_STATE_RUNNING"),
        (4, "JOB_EVENT_FINISH", "JOB_STATE_FINISHED"),
    ]
    assert summary["valid"] is True
