"""Who may have an account and how much they may store, on both backends with real servers: the
first account registered administers the server and no later one does; with allow_registration
off nobody registers, not even the first, and accounts come from `heimdex users create`; and
user_quota_bytes caps the original bytes each user keeps, counted per user and freed by a delete.

These servers index nothing (no worker): accounts and byte counts are all that is looked at."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests import assets
from tests.api.backends import BACKENDS, TEST_REDIS_DB, server_settings
from tests.api.live import PASSWORD, LiveServer, upload
from tests.api.test_isolation import spoken_video
from tests.api.test_sessions import login
from tests.api.test_users_cli import cli
from tests.api.test_videos import small_video

SIGN_UP_LINK = 'href="/register"'


@contextmanager
def server_without_worker(backend: str, home: Path, **settings: object) -> Iterator[LiveServer]:
    if backend == "embedded":
        with LiveServer(home, worker_enabled=False, **settings) as live:
            yield live
        return
    with server_settings(TEST_REDIS_DB) as fields, LiveServer(home, **fields, **settings) as live:
        yield live  # jobs wait in Redis: no `heimdex worker` runs


def me(client: httpx.Client) -> dict:
    r = client.get("/auth/me")
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_first_account_registered_is_the_only_administrator(backend: str, tmp_path: Path) -> None:
    with server_without_worker(backend, tmp_path) as server:
        assert SIGN_UP_LINK in server.client().get("/login").text  # registration is open
        first = server.user("first@example.com")
        second = server.user("second@example.com")
        assert me(first)["is_admin"] is True and me(second)["is_admin"] is False

        listed = first.get("/users")
        assert listed.status_code == 200, listed.text
        assert {u["email"]: u["is_admin"] for u in listed.json()} == {
            "first@example.com": True,
            "second@example.com": False,
        }
        r = second.get("/users")
        assert r.status_code == 403 and "only administrators" in r.json()["message"]
        assert second.delete(f"/users/{first.user_id}").status_code == 403
        assert me(first)["is_admin"] is True, "still there, still the administrator"

        # Accounts exist: a later account is never an administrator, even once others are gone.
        assert first.delete(f"/users/{second.user_id}").status_code == 204
        third = server.user("third@example.com")
        assert me(third)["is_admin"] is False and third.get("/users").status_code == 403


@pytest.mark.parametrize("backend", BACKENDS)
def test_closed_registration_takes_nobody_and_the_cli_makes_accounts(backend: str, tmp_path: Path) -> None:
    with server_without_worker(backend, tmp_path, allow_registration=False) as server:
        anonymous = server.client()
        r = anonymous.post("/auth/register", json={"email": "first@example.com", "password": PASSWORD})
        assert r.status_code == 403 and "registration is closed" in r.json()["message"], r.text
        assert server.ctx.accounts.store.list_users() == [], "not even the first account"
        assert login(server, "first@example.com").status_code == 401
        page = anonymous.get("/login")
        assert page.status_code == 200 and SIGN_UP_LINK not in page.text

        made = cli(server, "users", "create", "admin@example.com", "--admin", HEIMDEX_PASSWORD=PASSWORD)
        assert made.returncode == 0 and "created admin admin@example.com" in made.stdout, made.stderr
        made = cli(server, "users", "create", "dana@example.com", HEIMDEX_PASSWORD=PASSWORD)
        assert made.returncode == 0 and "created dana@example.com" in made.stdout, made.stderr

        admin = server.client(login(server, "admin@example.com").json()["access_token"])
        assert me(admin)["is_admin"] is True
        assert sorted(u["email"] for u in admin.get("/users").json()) == [
            "admin@example.com",
            "dana@example.com",
        ]
        session = login(server, "dana@example.com")
        assert session.status_code == 200, session.text
        dana = server.client(session.json()["access_token"])
        assert me(dana)["is_admin"] is False and dana.get("/videos").status_code == 200
        # Registering again, even with the account's own password, is still closed.
        r = anonymous.post("/auth/register", json={"email": "dana@example.com", "password": PASSWORD})
        assert r.status_code == 403
        assert len(server.ctx.accounts.store.list_users()) == 2


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_storage_quota_counts_each_users_original_bytes(backend: str, tmp_path: Path) -> None:
    first, second, third = small_video(), spoken_video(), assets.tiny_clip()  # three real videos
    size = {path: path.stat().st_size for path in (first, second, third)}
    quota = size[first] + size[second]
    with server_without_worker(backend, tmp_path, user_quota_bytes=quota) as server:
        carol = server.user("carol@example.com")
        assert upload(carol, first).status_code == 201
        r = upload(carol, second)
        assert r.status_code == 201, "exactly at the quota is within it"
        second_id = r.json()["videos"][0]["id"]
        r = upload(carol, third)
        assert r.status_code == 413 and "would pass your storage quota" in r.json()["message"], r.text
        assert carol.get("/videos").json()["total"] == 2
        assert sum(v["size_bytes"] for v in carol.get("/videos").json()["videos"]) == quota

        dave = server.user("dave@example.com")
        assert upload(dave, third).status_code == 201, "the quota is per user"

        assert carol.delete(f"/videos/{second_id}").status_code == 204
        assert upload(carol, third).status_code == 201, "a delete frees its bytes"

        # Several files in one upload count together: each fits, the three do not.
        erin = server.user("erin@example.com")
        with open(first, "rb") as a, open(second, "rb") as b, open(third, "rb") as c:
            files = [("file", (p.name, f, "video/mp4")) for p, f in ((first, a), (second, b), (third, c))]
            r = erin.post("/videos", files=files)
        stored = sum(v["size_bytes"] for v in erin.get("/videos").json()["videos"])
        assert r.status_code == 413, f"{r.status_code}: erin now keeps {stored} bytes, quota {quota}"
        assert stored == 0
