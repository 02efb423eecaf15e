"""The doctor's tests forge what a dead writer leaves (an entry past its record) and read it back: the
server they create jobs through must not relay, since the relay rolls such an entry forward after
``STUCK_S``, as any reader would, and on a loaded machine the doctor may look later than that."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pipelinejobs_server.settings import Feed
from tests.servers import ServerThread, test_settings


@pytest.fixture
def server(mongodb_uri: str, database_name: str) -> Iterator[ServerThread]:
    thread = ServerThread(
        test_settings(mongodb_uri, database_name, feed=Feed(bookmark_s=1.0, relay=False))
    ).start()
    yield thread
    thread.stop()
