"""F15: the shim's API key can come from a file, so it never shows in the process list (``ps``).

``pipelinejobs shim`` as a program, in front of a real server.
"""

from __future__ import annotations

from pathlib import Path

from tests.servers import ServerThread, wait_for_line
from tests.shim.helpers import http_client
from tests.shim.test_runner import LISTENING, SHIM_ENV, program, stop
from tests.support import ADMIN_KEY, CLIENT_KEY


def test_the_shim_reads_its_api_key_from_a_file(shim_server: ServerThread, tmp_path: Path) -> None:
    """F15: ``shim --api-key K`` was the only flag, and put K into every user's ``ps``."""
    key_file = tmp_path / "shim.key"
    key_file.write_text(CLIENT_KEY + "\n")
    key_file.chmod(0o600)
    log = tmp_path / "shim.log"
    arguments = ["shim", "--server", shim_server.address, "--port", "0", "--api-key-file", str(key_file)]
    with program(arguments, log, SHIM_ENV) as process:
        url = wait_for_line(log, LISTENING, process).group(1)
        wait_for_line(log, "press Ctrl-C to stop", process)
        command_line = Path(f"/proc/{process.pid}/cmdline").read_bytes()
        assert CLIENT_KEY.encode() not in command_line
        with http_client(url) as http:
            assert http.get("/healthz").json() == {"ready": True, "server": "SERVING"}
        stop(process, url)
    assert CLIENT_KEY not in log.read_text()
    # The key's role is checked as for the flag: an admin key in the file is refused too.
    key_file.write_text(ADMIN_KEY)
    with program([*arguments[:-1], str(key_file)], tmp_path / "admin.log", SHIM_ENV) as process:
        assert process.wait(timeout=30) == 2
    assert "admin API key" in (tmp_path / "admin.log").read_text()
