"""A real Heimdex server for tests: the real app under uvicorn on a free localhost port, in a thread,
with the real in-process worker (or, in server mode, a Redis queue: see backends.py) and the real
models (loaded once per test session and shared)."""

from __future__ import annotations

import functools
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import uvicorn

from heimdex.api import create_app
from heimdex.ml.registry import Models
from heimdex.queue.base import is_remote
from heimdex.settings import Settings
from tests import assets

PASSWORD = "correct horse battery"


@functools.cache
def shared_models() -> Models:
    """One Models per session for every server of tests/api and tests/web (loading costs seconds)."""
    return Models(Settings(home=assets.CACHE / "api-models-home"))


class LiveServer:
    def __init__(self, home: Path, models: Models | None = None, **settings) -> None:
        # Generous limits (every test registers from 127.0.0.1), and refresh tokens strictly one-use
        # (no grace for two tabs refreshing at once): tests that need others set them.
        defaults = {
            "login_attempts_per_minute": 1000,
            "register_attempts_per_hour": 1000,
            "refresh_reuse_grace_s": 0.0,
        }
        self.settings = Settings(home=home, **{**defaults, **settings})
        self.app = create_app(self.settings, models=models or shared_models())
        self.ctx = self.app.state.ctx
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        # Idle connections stay open longer than any pause of a test (building a video while a client
        # is open): with uvicorn's 5 s, a request sent as the server closed its connection failed.
        config = uvicorn.Config(
            self.app, log_level="warning", timeout_graceful_shutdown=1, timeout_keep_alive=300
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    def __enter__(self) -> LiveServer:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self._server.should_exit = True
        self._thread.join(15)
        self._socket.close()

    @property
    def backend(self) -> str:
        """Which deployment this is: "server" when jobs go to Redis for `heimdex worker` (see
        tests/api/backends.py), else "embedded"."""
        return "server" if is_remote(self.settings.queue_url) else "embedded"

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    def user(self, email: str) -> httpx.Client:
        """A new account, and a client authenticated as it."""
        with self.client() as anonymous:
            r = anonymous.post("/auth/register", json={"email": email, "password": PASSWORD})
            assert r.status_code == 201, r.text
        client = self.client(r.json()["access_token"])
        client.user_id = r.json()["user"]["id"]  # type: ignore[attr-defined]
        return client


def upload(client: httpx.Client, path: Path, name: str | None = None) -> httpx.Response:
    with open(path, "rb") as f:
        return client.post("/videos", files={"file": (name or path.name, f, "video/mp4")})


def wait_for(
    client: httpx.Client, video_id: str, states: tuple[str, ...] = ("indexed", "failed"), timeout: float = 240
) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        r = client.get(f"/videos/{video_id}")
        assert r.status_code == 200, r.text
        if r.json()["state"] in states:
            return r.json()
        if time.monotonic() > deadline:
            raise AssertionError(f"video {video_id} still {r.json()['state']} after {timeout} s")
        time.sleep(0.3)


def eventually(check: Callable[[], bool], timeout: float = 30, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)
