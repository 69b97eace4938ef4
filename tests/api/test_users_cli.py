"""`heimdex users` against a running server's own database, on both backends: the real CLI in a
subprocess while the real server answers over HTTP. A password set from the command line and
`users logout-all` end sessions (and API tokens), `users delete` removes an account with
everything it owns, and bad input is a clear error with exit code 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests import assets
from tests.api.backends import BACKENDS, TEST_REDIS_DB, blob_keys, job_over, live_server
from tests.api.live import LiveServer, eventually, upload, wait_for
from tests.api.test_sessions import login, works
from tests.api.test_videos import small_video
from tests.e2e.conftest import settings_env

NEW_PASSWORD = "set from the command line"


def cli(server: LiveServer, *args: str, input: str | None = None, **env: str) -> subprocess.CompletedProcess:
    """`heimdex ARGS` on the server's deployment: its home, database and storage."""
    deployment = settings_env(server.settings)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HEIMDEX_")}
    return subprocess.run(
        [sys.executable, "-m", "heimdex.cli", *args],
        input=input,
        capture_output=True,
        text=True,
        timeout=300,
        env={**clean, **deployment, "HEIMDEX_HOME": str(server.settings.home), "COLUMNS": "200", **env},
    )


def api_token(client: httpx.Client) -> str:
    r = client.post("/auth/tokens", json={"name": "cron"})
    assert r.status_code == 201, r.text
    return r.json()["token"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_set_password_and_logout_all_end_sessions(backend: str, tmp_path: Path) -> None:
    with live_server(backend, tmp_path, redis_db=TEST_REDIS_DB) as server:
        hana = server.user("hana@example.com")
        phone = login(server, "hana@example.com").json()
        script = api_token(hana)

        done = cli(server, "users", "logout-all", "hana@example.com")
        assert done.returncode == 0, done.stderr
        assert "ended 2 sessions" in done.stdout
        assert hana.get("/auth/me").status_code == 401 and not works(server, phone["access_token"])
        assert (
            server.client().post("/auth/refresh", json={"refresh_token": phone["refresh_token"]}).status_code
            == 401
        )
        assert works(server, script)  # without --api-tokens, scripts keep working

        laptop = login(server, "hana@example.com").json()
        done = cli(server, "users", "set-password", "Hana@Example.com", HEIMDEX_PASSWORD=NEW_PASSWORD)
        assert done.returncode == 0, done.stderr
        assert "password changed for hana@example.com" in done.stdout and "revoked" in done.stdout
        assert not works(server, laptop["access_token"]) and not works(server, script)
        refresh = server.client().post("/auth/refresh", json={"refresh_token": laptop["refresh_token"]})
        assert refresh.status_code == 401
        assert login(server, "hana@example.com").status_code == 401
        fresh = login(server, "hana@example.com", NEW_PASSWORD)
        assert fresh.status_code == 200 and works(server, fresh.json()["access_token"])

        for args, env, reason in (
            (("set-password", "hana@example.com"), {"HEIMDEX_PASSWORD": "short"}, "at least 8 characters"),
            (("set-password", "nobody@example.com"), {"HEIMDEX_PASSWORD": NEW_PASSWORD}, "no user"),
            (("logout-all", "nobody@example.com"), {}, "no user"),
            (("delete", "nobody@example.com", "--yes"), {}, "no user"),
        ):
            bad = cli(server, "users", *args, **env)
            assert bad.returncode == 2 and reason in bad.stderr, (args, bad.stdout, bad.stderr)
        assert works(server, fresh.json()["access_token"])  # nothing changed
        assert login(server, "hana@example.com", NEW_PASSWORD).status_code == 200


@pytest.mark.parametrize("backend", BACKENDS)
def test_users_delete_removes_the_account_and_everything_it_owns(backend: str, tmp_path: Path) -> None:
    with live_server(backend, tmp_path, redis_db=TEST_REDIS_DB) as server:
        server.user("admin@example.com").close()  # the first account: the only administrator
        ivy = server.user("ivy@example.com")
        script = api_token(ivy)
        video = upload(ivy, small_video()).json()["videos"][0]["id"]
        assert wait_for(ivy, video)["state"] == "indexed"
        eventually(lambda: job_over(server, video), what="the job to end")
        person = ivy.post("/people", json={"name": "Donna"}).json()["id"]
        photo = ("donna.jpg", assets.kphotoalbum_photo("donna.jpg").read_bytes(), "image/jpeg")
        assert ivy.post(f"/people/{person}/photos", files={"file": photo}).status_code == 200

        refused = cli(server, "users", "delete", "ivy@example.com", input="n\n")
        assert refused.returncode == 1 and "Aborted" in refused.stdout + refused.stderr
        assert ivy.get("/videos").json()["total"] == 1 and works(server, script)
        alone = cli(server, "users", "delete", "admin@example.com", "--yes")
        assert alone.returncode == 2 and "only administrator" in alone.stderr

        done = cli(server, "users", "delete", "IVY@example.com", input="y\n")
        assert done.returncode == 0, done.stderr
        assert "deleted ivy@example.com: 1 videos, 1 people" in done.stdout
        assert ivy.get("/auth/me").status_code == 401 and not works(server, script)
        assert login(server, "ivy@example.com").status_code == 401
        store, blobs = server.ctx.heimdex.store, server.ctx.heimdex.blobs
        assert store.list_videos(ivy.user_id) == [] and store.list_people(ivy.user_id) == []
        assert store.scene_count(ivy.user_id) == 0
        assert blob_keys(blobs, f"videos/{video}/") == [] and blob_keys(blobs, f"people/{person}/") == []

        listed = cli(server, "users", "list", "--json")
        assert listed.returncode == 0, listed.stderr
        users = json.loads(listed.stdout)
        assert [u["email"] for u in users] == ["admin@example.com"]
        assert set(users[0]) == {"id", "email", "is_admin", "created_at"}
