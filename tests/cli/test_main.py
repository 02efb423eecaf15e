"""The ``pipelinejobs`` command as a whole (cli/__init__.py): usage errors exit 2, service errors 1, an
unreachable server 3, each with one ``error:`` line; flags over the environment; no secret printed;
help, the hand-over to the server's commands, and the installed console script in a subprocess.

Commands run in-process through ``main(argv, environ=...)`` (fast; the environment is a dict, never the
real one), their ``--json`` output is parsed, and their exit codes and one-line errors are checked."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pipelinejobs_client.cli import EXIT_SERVICE, EXIT_UNAVAILABLE, EXIT_USAGE, main
from tests.cli.helpers import LINKS, UNKNOWN_JOB, Cli, Run, create
from tests.servers import ServerThread
from tests.support import ADMIN_KEY, CLIENT_KEY, ROOT

# -- usage errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(("pipelines", "register", "--name", "x"), id="no component"),
        pytest.param(("pipelines", "register", "--name", "x", "--component", "@1"), id="no component id"),
        pytest.param(
            ("pipelines", "register", "--name", "x", "--component", "a", "--option", "k"), id="no ="
        ),
        pytest.param(
            (
                "pipelines",
                "register",
                "--name",
                "x",
                "--component",
                "a",
                "--option",
                "k=1",
                "--option",
                "k=2",
            ),
            id="option twice",
        ),
        pytest.param(("jobs", "create", "--pipeline", "p", "--data", "{not json"), id="data not json"),
        pytest.param(("jobs", "create", "--pipeline", "p", "--data", "[1]"), id="data not an object"),
        pytest.param(("jobs", "event", UNKNOWN_JOB, "explode"), id="unknown event"),
        pytest.param(("jobs", "event", UNKNOWN_JOB, "unspecified"), id="zero event"),
        pytest.param(("jobs", "history", UNKNOWN_JOB, "--format", "xml"), id="unknown format"),
        pytest.param(("jobs", "history", UNKNOWN_JOB, "--format", "seed", "--json"), id="two formats"),
        pytest.param(("jobs", "show", UNKNOWN_JOB, "--timeout", "0"), id="zero timeout"),
        pytest.param(("jobs", "show", UNKNOWN_JOB, "--api-key", "a", "--api-key-file", "k"), id="two keys"),
        pytest.param(("jobs", "show", UNKNOWN_JOB, "--api-key-file", "/nonexistent/key"), id="no key file"),
        pytest.param(("fsm", "--json", "--mermaid"), id="two shapes"),
        pytest.param(("jobs", "list", "--state", "SLEEPING"), id="unknown state"),
        pytest.param(("jobs", "list", "--created-after", "yesterday"), id="not a time"),
        pytest.param(("jobs", "list", "--limit", "-1"), id="negative limit"),
        pytest.param(("jobs", "event", UNKNOWN_JOB, "run", "--token"), id="token without value"),
        pytest.param(("jobs",), id="no action"),
        pytest.param(("jobz", "list"), id="unknown command"),
        pytest.param((), id="nothing"),
    ],
)
def test_usage_errors_exit_2_with_one_line(offline: Cli, argv: tuple[str, ...]) -> None:
    run = offline(*argv)
    assert run.code == EXIT_USAGE
    assert run.out == ""
    run.error_line()


@pytest.mark.parametrize("option", ["--token", "--api-key", "--idempotency-key"])
def test_a_secret_may_begin_with_a_dash(offline: Cli, option: str) -> None:
    # Tokens and keys are URL-safe base64, so one in 64 begins with "-": it must not read as an option.
    run = offline("jobs", "event", UNKNOWN_JOB, "run", option, "-Xy_secret")
    assert run.code == EXIT_UNAVAILABLE, run.err
    assert "-Xy_secret" not in run.err


# -- errors, credentials, secrets --------------------------------------------------------------------------


def test_service_errors_are_exit_1_and_one_line(cli: Cli) -> None:
    missing = cli("jobs", "show", UNKNOWN_JOB)
    assert missing.code == EXIT_SERVICE
    assert missing.error_line() == f"error: JOB_NOT_FOUND: job {UNKNOWN_JOB} not found"
    # A malformed uuid is the command line's fault: a usage error, before anything is sent.
    malformed = cli("jobs", "show", "not-a-uuid")
    assert malformed.code == EXIT_USAGE
    assert "argument UUID: not a uuid: 'not-a-uuid'" in malformed.error_line()
    assert cli("jobs", "show", UNKNOWN_JOB, key=None).error_line().startswith("error: API_KEY_REQUIRED: ")
    assert cli("jobs", "show", UNKNOWN_JOB, key="wrong").error_line().startswith("error: INVALID_API_KEY: ")
    assert cli("pipelines", "show", UNKNOWN_JOB).error_line().startswith("error: PIPELINE_NOT_FOUND: ")


def test_an_unreachable_server_is_exit_3(offline: Cli) -> None:
    run = offline("fsm", "--timeout", "2")
    address = offline.address
    assert run.code == EXIT_UNAVAILABLE
    line = run.error_line()
    assert line.startswith("error: UNAVAILABLE: ")
    assert line.endswith(f"(server {address})")


def test_flags_win_over_the_environment(cli: Cli, tmp_path: Path, closed_port: int) -> None:
    key_file = tmp_path / "admin.key"
    key_file.write_text(ADMIN_KEY + "\n")
    dead = f"127.0.0.1:{closed_port}"
    run = cli(
        "jobs",
        "rejected",
        "--json",
        "--server",
        cli.address,
        "--api-key-file",
        str(key_file),
        PIPELINEJOBS_SERVER=dead,
    )
    assert run.json() == []
    assert cli("jobs", "rejected", "--api-key", ADMIN_KEY, "--json", key="wrong").json() == []


def test_no_secret_is_printed_except_the_token_by_jobs_create(cli: Cli, pipeline: str) -> None:
    created = create(cli, pipeline)
    uuid, token = created["job"]["uuid"], created["token"]
    keyed = ("--api-key", ADMIN_KEY)
    cli("jobs", "create", "--pipeline", pipeline, *LINKS)  # a second, fresh token, in table form
    cli("jobs", "event", uuid, "run", "--token", token, "--data", '{"a": 1}')
    cli("jobs", "event", uuid, "run", "--token", token, "--json")
    cli("jobs", "event", uuid, "run", "--token", token + "x")  # refused: the error must not echo it
    cli("jobs", "event", uuid, "validate", "--token", token)
    cli("jobs", "cancel", uuid, "--token", token)
    for command in ("show", "history", "verify", "rejected"):
        cli("jobs", command, uuid, *keyed)
        cli("jobs", command, uuid, "--json", *keyed)
    cli("jobs", "history", uuid, "--format", "seed", *keyed)
    cli("jobs", "rejected", *keyed)
    cli("pipelines", "list", *keyed)
    cli("fsm", *keyed)
    cli("jobs", "show", UNKNOWN_JOB, "--api-key", "not-" + CLIENT_KEY)
    creations = [run.out for argv, run in cli.runs if argv[:2] == ("jobs", "create")]
    assert token in creations[0], "jobs create shows the token: the caller needs it"
    secrets = {token, CLIENT_KEY, ADMIN_KEY}
    for argv, run in cli.runs:
        printed = run.out + run.err
        leaked = {secret for secret in secrets if secret in printed}
        if argv[:2] == ("jobs", "create"):
            leaked -= {secret for secret in leaked if secret not in (CLIENT_KEY, ADMIN_KEY)}
        assert not leaked, f"{argv} printed a secret"


# -- the program as a whole --------------------------------------------------------------------------------


def test_help_lists_client_and_server_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"], environ={}) == 0
    listed = capsys.readouterr().out
    for command in ("pipelines", "jobs", "fsm", "up", "serve", "health"):
        assert re.search(rf"^\s+{command}\s", listed, re.M), command
    assert main(["jobs", "event", "--help"], environ={}) == 0
    assert "PIPELINEJOBS_JOB_TOKEN" in capsys.readouterr().out


def test_server_commands_are_handed_to_the_server(
    capsys: pytest.CaptureFixture[str], server: ServerThread
) -> None:
    assert main(["health", "--server", server.address], environ={}) == 0
    assert "SERVING" in capsys.readouterr().out


def test_without_the_server_extra_server_commands_say_what_to_install(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A client-only install: the entry points are there (one distribution), the server cannot be imported.
    for name in [name for name in sys.modules if name.split(".")[0] == "pipelinejobs_server"]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "pipelinejobs_server", None)
    assert main(["up"], environ={}) == EXIT_USAGE
    line = Run(EXIT_USAGE, *capsys.readouterr()).error_line()
    assert "pip install 'pipelinejobs[server,embedded]'" in line
    assert main(["--help"], environ={}) == 0
    assert re.search(r"^\s+health\s", capsys.readouterr().out, re.M)


def test_client_commands_never_import_the_server(server: ServerThread) -> None:
    # A client-only install has no pipelinejobs_server: make importing it fail, then run a command.
    program = (
        "import sys; sys.modules['pipelinejobs_server'] = None\n"
        "from pipelinejobs_client.cli import main\n"
        f"raise SystemExit(main(['fsm', '--json', '--server', {server.address!r}], environ={{}}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=False, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["initial_state"] == "CREATED"


def test_the_installed_console_script_end_to_end(server: ServerThread, closed_port: int) -> None:
    script = Path(sys.executable).with_name("pipelinejobs")
    assert script.exists(), f"no console script beside {sys.executable}: install the project (make install)"
    env = {key: value for key, value in os.environ.items() if not key.startswith("PIPELINEJOBS_")}
    env.update(PIPELINEJOBS_SERVER=server.address, PIPELINEJOBS_API_KEY=CLIENT_KEY)

    def run(*argv: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(script), *argv],
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    registered = run("pipelines", "register", "--name", "fcs-etl", "--component", "fcs-etl@0.4.0", "--json")
    assert registered.returncode == 0, registered.stderr
    pipeline = json.loads(registered.stdout)["pipeline"]["uuid"]
    created = run("jobs", "create", "--pipeline", pipeline, *LINKS, "--json")
    job = json.loads(created.stdout)
    uuid = job["job"]["uuid"]
    ran = run("jobs", "event", uuid, "run", PIPELINEJOBS_JOB_TOKEN=job["token"])
    assert ran.returncode == 0, ran.stderr
    assert re.search(r"^state\s+RUNNING$", ran.stdout, re.M)
    seed = json.loads(run("jobs", "history", uuid, "--format", "seed").stdout)
    assert [list(entry) for entry in seed["history"]] == [["CREATE"], ["RUN"]]
    refused = run("jobs", "cancel", uuid, PIPELINEJOBS_JOB_TOKEN=job["token"])
    assert refused.returncode == EXIT_SERVICE
    assert refused.stderr.startswith("error: CANCEL_NOT_ALLOWED: ")
    assert refused.stdout == ""
    assert run("jobs", "frobnicate").returncode == EXIT_USAGE
    assert run("fsm", "--server", f"127.0.0.1:{closed_port}").returncode == EXIT_UNAVAILABLE
