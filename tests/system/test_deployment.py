"""The container image definition: multi-stage, non-root, health-checked, serving the real entry point.

No container engine runs here, so this reads the Dockerfile instead of building it.
"""

from __future__ import annotations

from tests.support import ROOT


def instructions() -> list[tuple[str, str]]:
    lines = (ROOT / "Dockerfile").read_text().replace("\\\n", " ").splitlines()
    parsed = []
    for line in lines:
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            parsed.append((keyword.upper(), rest.strip()))
    return parsed


def test_image_is_multi_stage_and_runs_as_non_root() -> None:
    steps = instructions()
    assert sum(1 for keyword, _ in steps if keyword == "FROM") >= 2
    users = [value for keyword, value in steps if keyword == "USER"]
    assert users
    assert users[-1] not in ("root", "0")


def test_image_has_a_health_check_through_the_grpc_health_service() -> None:
    checks = [value for keyword, value in instructions() if keyword == "HEALTHCHECK"]
    assert len(checks) == 1
    assert '"pipelinejobs", "health"' in checks[0]


def test_image_serves_with_the_console_script_on_all_interfaces() -> None:
    steps = dict(instructions())
    assert steps["ENTRYPOINT"] == '["pipelinejobs"]'
    assert steps["CMD"] == '["serve"]'
    assert "PIPELINEJOBS_GRPC_HOST=0.0.0.0" in steps["ENV"]


def test_ci_runs_the_readme_test_command() -> None:
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert "make test" in (ROOT / "README.md").read_text()
