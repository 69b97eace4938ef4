"""One real server per test module group: alice and bob, and alice's indexed news video."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.api.live import LiveServer, upload, wait_for
from tests.e2e.conftest import news_video


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> Iterator[LiveServer]:
    with LiveServer(tmp_path_factory.mktemp("api-home")) as live:
        yield live


@pytest.fixture(scope="session")
def alice(server) -> Iterator[httpx.Client]:
    with server.user("alice@example.com") as client:
        yield client


@pytest.fixture(scope="session")
def bob(server) -> Iterator[httpx.Client]:
    with server.user("bob@example.com") as client:
        yield client


@pytest.fixture(scope="session")
def news(alice) -> dict:
    """Alice's news video, uploaded over HTTP and indexed by the server's worker."""
    r = upload(alice, news_video(), "evening news.mp4")
    assert r.status_code == 201, r.text
    video = r.json()["videos"][0]
    assert video["created"] and video["state"] in ("queued", "processing")
    done = wait_for(alice, video["id"])
    assert done["state"] == "indexed", done["error"]
    return done
