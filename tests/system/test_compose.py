"""compose.yaml: a MongoDB replica set, two server replicas and the shim, wired together correctly.

No container engine runs here. ``docker compose config`` (or ``docker-compose config``, which
``make test`` installs) validates the file; the structural checks below need no CLI.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from tests.support import ROOT

KEYS = {
    "PIPELINEJOBS_ADMIN_KEY": "admin-example",
    "PIPELINEJOBS_CLIENT_KEYS": "client-example",
    "PIPELINEJOBS_CALLBACK_KEY_SECRET": "callback-key-secret-example",
}


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return document


def test_topology_is_a_replica_set_two_servers_and_the_shim() -> None:
    services = compose()["services"]
    mongos = [name for name, service in services.items() if "--replSet" in (service.get("command") or [])]
    assert len(mongos) == 3
    servers = [name for name, service in services.items() if service.get("command") == ["serve"]]
    assert len(servers) == 2
    for name in servers:
        environment = services[name]["environment"]
        assert "replicaSet=rs0" in environment["MONGODB_URI"]
        assert all(host in environment["MONGODB_URI"] for host in ("mongo1", "mongo2", "mongo3"))
        assert environment["PIPELINEJOBS_ADMIN_KEY"].startswith("${"), "no secret is written into the file"
    shim = services["shim"]
    assert shim["command"][0] == "shim"
    assert shim["environment"]["PIPELINEJOBS_CALLBACK_KEY_SECRET"].startswith("${"), "required, not written"
    assert set(shim["depends_on"]) == set(servers)
    for service in services.values():
        for dependency in service.get("depends_on", {}):
            assert dependency in services


@pytest.mark.compose
def test_compose_cli_accepts_the_file() -> None:
    docker = shutil.which("docker")
    legacy = shutil.which("docker-compose")
    command: list[str] | None = None
    if (
        docker
        and subprocess.run([docker, "compose", "version"], capture_output=True, check=False).returncode == 0
    ):
        command = [docker, "compose"]
    elif legacy:
        command = [legacy]
    if command is None:
        pytest.fail("no compose CLI: `make test` installs Debian's docker-compose (scripts/system-deps.sh)")
    result = subprocess.run(
        [*command, "-f", str(ROOT / "compose.yaml"), "config", "--quiet"],
        capture_output=True,
        text=True,
        env={**os.environ, **KEYS},
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
