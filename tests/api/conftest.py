"""One real server per backend (see backends.py): alice and bob, and alice's indexed news video.

Every test that uses these fixtures runs twice, as [embedded] and as [server]."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.api.backends import BACKENDS, SESSION_REDIS_DB, live_server
from tests.api.live import LiveServer, upload, wait_for
from tests.e2e.conftest import news_video


@pytest.fixture(scope="session", params=BACKENDS)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    home = tmp_path_factory.mktemp(f"api-{request.param}-home")
    with live_server(request.param, home, redis_db=SESSION_REDIS_DB) as live:
        yield live


@pytest.fixture(scope="session")
def alice(server: LiveServer) -> Iterator[httpx.Client]:
    with server.user("alice@example.com") as client:
        yield client


@pytest.fixture(scope="session")
def bob(server: LiveServer) -> Iterator[httpx.Client]:
    with server.user("bob@example.com") as client:
        yield client


@pytest.fixture(scope="session")
def news(alice: httpx.Client) -> dict:
    """Alice's news video, uploaded over HTTP and indexed by the server's worker."""
    r = upload(alice, news_video(), "evening news.mp4")
    assert r.status_code == 201, r.text
    video = r.json()["videos"][0]
    assert video["created"] and video["state"] in ("queued", "processing")
    done = wait_for(alice, video["id"])
    assert done["state"] == "indexed", done["error"]
    return done
