"""The HTTP connection limits' settings: read from an injectable mapping, refused when unusable."""

from __future__ import annotations

import pytest

from pipelinejobs_server.settings import SettingsError
from pipelinejobs_server.web.connections import ConnectionLimits


def test_limits_come_from_the_environment_with_defaults() -> None:
    assert ConnectionLimits.from_environ({}) == ConnectionLimits()
    limits = ConnectionLimits.from_environ(
        {
            "PIPELINEJOBS_HTTP_HEAD_TIMEOUT_S": "2.5",
            "PIPELINEJOBS_HTTP_BODY_TIMEOUT_S": "7",
            "PIPELINEJOBS_HTTP_IDLE_TIMEOUT_S": "3",
            "PIPELINEJOBS_HTTP_MAX_CONNECTIONS": "64",
        }
    )
    assert limits == ConnectionLimits(2.5, 7.0, 3, 64)


@pytest.mark.parametrize(
    "environ",
    [
        {"PIPELINEJOBS_HTTP_HEAD_TIMEOUT_S": "0"},
        {"PIPELINEJOBS_HTTP_BODY_TIMEOUT_S": "-1"},
        {"PIPELINEJOBS_HTTP_IDLE_TIMEOUT_S": "0.5"},
        {"PIPELINEJOBS_HTTP_MAX_CONNECTIONS": "0"},
        {"PIPELINEJOBS_HTTP_MAX_CONNECTIONS": "many"},
    ],
)
def test_unusable_limits_are_refused(environ: dict[str, str]) -> None:
    with pytest.raises(SettingsError, match=next(iter(environ))):
        ConnectionLimits.from_environ(environ)
