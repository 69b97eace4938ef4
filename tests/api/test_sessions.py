"""Sessions that end, over real HTTP on both backends: a password change and "log out everywhere"
revoke access, refresh and (for a password change) personal API tokens; a replayed refresh token
ends its session; administrators list and delete accounts with everything they own. Then the
account stores' token rules on both databases, and databases of the previous schema upgraded."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import closing

import httpx
import jwt
import psycopg
import pytest

from heimdex.accounts import Accounts, AuthError
from heimdex.accounts.base import AccountStore
from heimdex.accounts.postgres import PostgresAccountStore
from heimdex.accounts.service import digest
from heimdex.accounts.sqlite import SqliteAccountStore
from heimdex.db.postgres import alembic_config as _alembic_config
from heimdex.settings import Settings
from tests import assets, services
from tests.api.backends import blob_keys, job_over
from tests.api.live import PASSWORD, LiveServer, eventually, upload, wait_for
from tests.api.test_videos import small_video
from tests.e2e.conftest import news_video

NEW_PASSWORD = "a brand new passphrase"


def register(server: LiveServer, email: str) -> dict:
    r = server.client().post("/auth/register", json={"email": email, "password": PASSWORD})
    assert r.status_code == 201, r.text
    return r.json()


def login(server: LiveServer, email: str, password: str = PASSWORD) -> httpx.Response:
    return server.client().post("/auth/login", json={"email": email, "password": password})


def works(server: LiveServer, token: str) -> bool:
    """Whether a bearer token (access or API) is accepted right now."""
    r = server.client(token).get("/auth/me")
    assert r.status_code in (200, 401), r.text
    return r.status_code == 200


def refresh(server: LiveServer, token: str) -> httpx.Response:
    return server.client().post("/auth/refresh", json={"refresh_token": token})


def api_token(server: LiveServer, access: str) -> str:
    r = server.client(access).post("/auth/tokens", json={"name": "nightly backup"})
    assert r.status_code == 201, r.text
    return r.json()["token"]


# ---------------------------------------------------------------- password change


def test_password_change_ends_every_other_session_and_api_token(server) -> None:
    email = "pat@example.com"
    laptop = register(server, email)
    phone = login(server, email).json()
    script = api_token(server, laptop["access_token"])
    me = server.client(laptop["access_token"])

    r = me.post("/auth/password", json={"current_password": "not the password", "new_password": NEW_PASSWORD})
    assert r.status_code == 403 and r.json()["message"] == "the current password is wrong"
    r = me.post("/auth/password", json={"current_password": PASSWORD, "new_password": "short"})
    assert r.status_code == 400 and "8 characters" in r.json()["message"]
    assert me.post("/auth/password", json={"new_password": NEW_PASSWORD}).status_code == 422
    assert all(works(server, t) for t in (laptop["access_token"], phone["access_token"], script))

    r = me.post("/auth/password", json={"current_password": PASSWORD, "new_password": NEW_PASSWORD})
    assert r.status_code == 200, r.text
    here = r.json()
    assert "heimdex_access" in r.cookies and here["user"]["email"] == email
    # The new session was issued within the second of the change, and works: no clock granularity.
    assert works(server, here["access_token"])
    for token in (laptop["access_token"], phone["access_token"], script):
        assert not works(server, token)
    for token in (laptop["refresh_token"], phone["refresh_token"]):
        assert refresh(server, token).status_code == 401
    assert refresh(server, here["refresh_token"]).status_code == 200
    assert login(server, email).status_code == 401
    assert login(server, email, NEW_PASSWORD).status_code == 200
    assert server.client(here["access_token"]).get("/auth/tokens").json() == []


# ---------------------------------------------------------------- log out everywhere


def test_logout_everywhere_ends_sessions_and_optionally_api_tokens(server) -> None:
    email = "lou@example.com"
    laptop = register(server, email)
    phone = login(server, email).json()
    script = api_token(server, laptop["access_token"])

    r = server.client(laptop["access_token"]).post("/auth/logout-all")
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "logged out everywhere", "sessions": 2, "api_tokens": 0}
    assert all("Max-Age=0" in c for c in r.headers.get_list("set-cookie")) and r.headers.get_list(
        "set-cookie"
    )
    for session in (laptop, phone):
        assert not works(server, session["access_token"])
        assert refresh(server, session["refresh_token"]).status_code == 401
    assert works(server, script), "API tokens are for scripts: they stay unless asked"

    again = login(server, email).json()
    r = server.client(script).post("/auth/logout-all", json={"api_tokens": True})
    assert r.json() == {"status": "logged out everywhere", "sessions": 1, "api_tokens": 1}
    assert not works(server, script) and not works(server, again["access_token"])
    assert login(server, email).status_code == 200  # the password still logs in

    # The web app's cookie session: the CSRF header is needed here as for every write.
    browser = server.client()
    assert browser.post("/auth/login", json={"email": email, "password": PASSWORD}).status_code == 200
    assert browser.post("/auth/logout-all").status_code == 403
    assert browser.post("/auth/logout-all", headers={"X-Heimdex-CSRF": "1"}).status_code == 200
    assert browser.get("/auth/me").status_code == 401


# ---------------------------------------------------------------- refresh token reuse


def test_a_replayed_refresh_token_ends_its_whole_session(server) -> None:
    email = "rae@example.com"
    register(server, email)
    copied = login(server, email).json()  # a refresh token someone copied
    other = login(server, email).json()  # the same user on another device
    thief = refresh(server, copied["refresh_token"]).json()  # the copy is used first
    thief = refresh(server, thief["refresh_token"]).json()
    assert works(server, thief["access_token"])

    replay = refresh(server, copied["refresh_token"])  # the owner's (already used) original
    assert replay.status_code == 401 and "used before" in replay.json()["message"]
    assert refresh(server, thief["refresh_token"]).status_code == 401  # the whole family is gone
    assert not works(server, thief["access_token"])  # and its access token at once
    # Other sessions stay: their access tokens are renewed by their own refresh tokens.
    renewed = refresh(server, other["refresh_token"])
    assert renewed.status_code == 200 and works(server, renewed.json()["access_token"])


def test_logout_ends_the_session_and_its_used_tokens(server) -> None:
    email = "lev@example.com"
    register(server, email)
    first = login(server, email).json()
    second = refresh(server, first["refresh_token"]).json()
    assert (
        server.client().post("/auth/logout", json={"refresh_token": second["refresh_token"]}).status_code
        == 200
    )
    assert refresh(server, second["refresh_token"]).status_code == 401
    replay = refresh(server, first["refresh_token"])
    assert replay.status_code == 401 and "expired" in replay.json()["message"]  # gone, not "reused"


def test_two_tabs_refreshing_at_once_are_not_a_replay(tmp_path) -> None:
    with LiveServer(tmp_path, refresh_reuse_grace_s=1.5) as server:
        register(server, "tab@example.com")
        first = login(server, "tab@example.com").json()
        a = refresh(server, first["refresh_token"])
        b = refresh(server, first["refresh_token"])  # the other tab, with the same cookie
        assert a.status_code == b.status_code == 200, b.text
        assert a.json()["refresh_token"] != b.json()["refresh_token"]
        time.sleep(1.6)
        late = refresh(server, first["refresh_token"])
        assert late.status_code == 401 and "used before" in late.json()["message"]
        for tab in (a, b):  # one family: both tabs' tokens went with it
            assert refresh(server, tab.json()["refresh_token"]).status_code == 401


# ---------------------------------------------------------------- administrators


def photo(name: str) -> tuple[str, bytes, str]:
    return (name, assets.kphotoalbum_photo(name).read_bytes(), "image/jpeg")


def test_admins_list_and_delete_users_with_everything_they_own(server) -> None:
    server.ctx.accounts.create_user("root@example.com", PASSWORD, is_admin=True)
    admin = server.client(login(server, "root@example.com").json()["access_token"])
    gina = server.user("gina@example.com")
    script = api_token(server, gina.headers["authorization"].split()[1])
    video = upload(gina, small_video()).json()["videos"][0]["id"]
    assert wait_for(gina, video)["state"] == "indexed"
    eventually(lambda: job_over(server, video), what="the job to end")
    person = gina.post("/people", json={"name": "Donna"}).json()["id"]
    assert gina.post(f"/people/{person}/photos", files={"file": photo("donna.jpg")}).status_code == 200
    busy = upload(gina, news_video()).json()["videos"][0]["id"]  # long enough to be mid-indexing
    wait_for(gina, busy, states=("processing",))

    assert gina.get("/users").status_code == 403
    assert gina.delete(f"/users/{gina.user_id}").status_code == 403
    listed = admin.get("/users").json()
    assert {"root@example.com", "gina@example.com"} <= {u["email"] for u in listed}
    assert all(set(u) == {"id", "email", "is_admin", "created_at"} for u in listed)
    r = admin.delete("/users/nobody")
    assert r.status_code == 404 and r.json()["message"]

    r = admin.delete(f"/users/{gina.user_id}")
    # The in-process worker is indexing `busy`: it goes when the job ends (as DELETE /videos does);
    # a remote worker drops a job whose video is gone by itself.
    assert r.status_code == (202 if server.backend == "embedded" else 204), r.text
    assert gina.get("/auth/me").status_code == 401
    assert not works(server, script)
    assert login(server, "gina@example.com").status_code == 401
    assert "gina@example.com" not in {u["email"] for u in admin.get("/users").json()}
    assert admin.delete(f"/users/{gina.user_id}").status_code == 404

    eventually(lambda: job_over(server, busy), timeout=300, what="the busy job to end")
    store, blobs = server.ctx.heimdex.store, server.ctx.heimdex.blobs
    prefixes = (f"videos/{video}/", f"videos/{busy}/", f"people/{person}/")

    def all_gone() -> bool:  # the deferred deletion may still be running when the job is over
        try:
            return not store.list_videos(gina.user_id) and not any(blob_keys(blobs, p) for p in prefixes)
        except FileNotFoundError:  # a folder removed while it was being listed
            return False

    eventually(all_gone, what="the deferred deletion")
    assert store.list_videos(gina.user_id) == [] and store.list_people(gina.user_id) == []
    assert store.scene_count(gina.user_id) == 0
    for prefix in prefixes:
        assert blob_keys(blobs, prefix) == [], prefix
    again = server.user("gina@example.com")  # the address is free again: a new, empty account
    assert again.user_id != gina.user_id and again.get("/videos").json()["total"] == 0


# ---------------------------------------------------------------- the stores, on both databases


@pytest.fixture(params=["sqlite", "postgres"])
def accounts_store(request: pytest.FixtureRequest, tmp_path) -> Iterator[AccountStore]:
    if request.param == "sqlite":
        store: AccountStore = SqliteAccountStore(tmp_path / "accounts.db")
    else:
        url = request.getfixturevalue("postgres_database")
        services.empty_database(url)
        store = PostgresAccountStore(url)
    yield store
    store.close()


def test_store_rotation_grace_and_reuse(accounts_store) -> None:
    store = accounts_store
    user = store.create_user("s@example.com", "hash")
    now = time.time()
    for name, family in (("a1", "A"), ("b1", "B")):
        assert store.add_refresh_token(name, user.id, now + 60, family=family, generation=0)
    first = store.take_refresh_token("a1", now, grace_s=5)
    assert (first.user_id, first.family, first.state) == (user.id, "A", "fresh")
    assert store.add_refresh_token("a2", user.id, now + 60, family="A", generation=0)
    assert store.take_refresh_token("a1", now + 4, grace_s=5).state == "grace"
    assert store.get_user(user.id).token_generation == 0
    assert store.take_refresh_token("a1", now + 6, grace_s=5).state == "reused"
    assert store.get_user(user.id).token_generation == 1  # every access token of theirs ends
    assert store.take_refresh_token("a2", now + 6) is None  # the family went
    assert store.take_refresh_token("a1", now + 7) is None
    assert store.take_refresh_token("b1", now + 7).state == "fresh"  # another session stays
    assert store.take_refresh_token("b1", now + 61) is None  # expired
    assert store.take_refresh_token("unknown", now) is None


def test_store_tokens_cannot_outlive_a_revocation(accounts_store) -> None:
    store = accounts_store
    user = store.create_user("r@example.com", "hash")
    now = time.time()
    assert store.add_refresh_token("r1", user.id, now + 60, family="F", generation=0)
    assert store.add_api_token(user.id, "cron", "d1", "hdx_d1", generation=0) is not None
    assert store.revoke_tokens(user.id, api_tokens=False) == (1, 0)
    assert store.take_refresh_token("r1", now) is None and len(store.list_api_tokens(user.id)) == 1
    # Issued with the old generation (a request authenticated just before): refused.
    assert not store.add_refresh_token("r2", user.id, now + 60, family="F", generation=0)
    assert store.add_api_token(user.id, "late", "d2", "hdx_d2", generation=0) is None
    assert store.add_refresh_token("r3", user.id, now + 60, family="G", generation=1)
    store.set_password(user.id, "new hash", revoke_tokens=True)
    assert store.get_user(user.id).token_generation == 2 and store.list_api_tokens(user.id) == []
    assert store.take_refresh_token("r3", now) is None
    store.delete_user(user.id)
    assert not store.add_refresh_token("r4", user.id, now + 60, family="H", generation=2)


def test_store_revocation_racing_token_inserts(accounts_store) -> None:
    """Requests of a stolen session create tokens as fast as they can (each at the generation it
    authenticated with) while the owner logs out everywhere, again and again: a token created at
    a generation that was revoked never survives, one created at the last generation does."""
    store = accounts_store
    user = store.create_user("race@example.com", "hash")
    stored: list[tuple[str, int]] = []  # (refresh token, the generation it was issued at)
    api_tokens: list[tuple[str, int]] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def spam(worker: int) -> None:
        try:
            for i in range(1_000_000):
                if stop.is_set():
                    return
                generation = store.get_user(user.id).token_generation  # authenticated
                name = f"w{worker}-{i}"
                if store.add_refresh_token(
                    name, user.id, time.time() + 60, family=name, generation=generation
                ):
                    stored.append((name, generation))
                if store.add_api_token(user.id, "x", f"api-{name}", "hdx_", generation=generation):
                    api_tokens.append((f"api-{name}", generation))
        except BaseException as exc:  # reported below: a thread's exception would go unnoticed
            errors.append(exc)

    threads = [threading.Thread(target=spam, args=(w,)) for w in range(3)]
    for t in threads:
        t.start()
    for _ in range(25):
        time.sleep(0.01)
        store.revoke_tokens(user.id, api_tokens=True)
    stop.set()
    for t in threads:
        t.join(30)
    assert not errors, errors
    final = store.get_user(user.id).token_generation
    assert final == 25 and len({g for _, g in stored}) > 5, "the inserts did race the revocations"
    survivors = {name for name, _ in stored if store.take_refresh_token(name, time.time())}
    assert survivors == {name for name, g in stored if g == final}
    assert len(store.list_api_tokens(user.id)) == len([1 for _, g in api_tokens if g == final])


def test_store_two_requests_with_one_token(accounts_store) -> None:
    store = accounts_store
    user = store.create_user("two@example.com", "hash")
    now = time.time()
    store.add_refresh_token("same", user.id, now + 60, family="F", generation=0)
    barrier, states = threading.Barrier(2), []

    def use() -> None:
        barrier.wait()
        found = store.take_refresh_token("same", time.time(), grace_s=30)
        states.append(found.state if found else None)

    threads = [threading.Thread(target=use) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(states) == ["fresh", "grace"]


# ---------------------------------------------------------------- databases of the previous schema

OLD_SQLITE_SCHEMA = """
CREATE TABLE users (id TEXT PRIMARY KEY, email TEXT NOT NULL UNIQUE COLLATE NOCASE, password_hash TEXT,
    is_admin INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL);
CREATE TABLE refresh_tokens (digest TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE, expires_at REAL NOT NULL);
CREATE INDEX refresh_tokens_by_user ON refresh_tokens (user_id);
CREATE TABLE api_tokens (id TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name TEXT NOT NULL, digest TEXT NOT NULL UNIQUE, prefix TEXT NOT NULL, created_at REAL NOT NULL,
    last_used_at REAL);
"""


def _sessions_survive_the_upgrade(accounts: Accounts) -> None:
    """The session issued by the previous version (refresh token "hdr_old", an access token without
    a generation) keeps working after the upgrade, and the new rules apply to it."""
    old_access = jwt.encode(
        {
            "sub": "u1",
            "iss": "heimdex",
            "typ": "access",
            "iat": int(time.time()),
            "exp": int(time.time()) + 60,
        },
        accounts.secret,
        algorithm="HS256",
    )
    assert accounts.authenticate(old_access).email == "old@example.com"
    renewed = accounts.refresh("hdr_old")
    assert accounts.authenticate(renewed.access_token).id == "u1"
    with pytest.raises(AuthError, match="used before"):
        accounts.refresh("hdr_old")
    with pytest.raises(AuthError):
        accounts.authenticate(old_access)  # the reuse ended every access token of the user


def test_an_old_sqlite_database_is_upgraded_in_place(tmp_path) -> None:
    path = tmp_path / "heimdex.db"
    with closing(sqlite3.connect(path)) as db, db:
        db.executescript(OLD_SQLITE_SCHEMA)
        db.execute("INSERT INTO users VALUES ('u1', 'old@example.com', NULL, 1, 1.0)")
        db.execute("INSERT INTO refresh_tokens VALUES (?, 'u1', ?)", (digest("hdr_old"), time.time() + 600))
    SqliteAccountStore(path).close()  # opening twice: the upgrade is idempotent
    store = SqliteAccountStore(path)
    try:
        _sessions_survive_the_upgrade(Accounts(Settings(home=tmp_path, refresh_reuse_grace_s=0), store))
    finally:
        store.close()


def test_postgres_migration_0004_upgrades_accounts_and_downgrades(tmp_path) -> None:
    from alembic import command

    with services.fresh_postgres(migrated=False) as url, psycopg.connect(url, autocommit=True) as conn:
        command.upgrade(_alembic_config(url), "0003")
        conn.execute("INSERT INTO users VALUES ('u1', 'old@example.com', NULL, true, 1.0)")
        conn.execute(
            "INSERT INTO refresh_tokens VALUES (%s, 'u1', %s)", (digest("hdr_old"), time.time() + 600)
        )
        store = PostgresAccountStore(url)  # migrates to the head, as `heimdex serve` does
        try:
            with pytest.raises(psycopg.errors.NotNullViolation):  # every token has a family now
                conn.execute("INSERT INTO refresh_tokens (digest, user_id, expires_at) VALUES ('x', 'u1', 1)")
            _sessions_survive_the_upgrade(Accounts(Settings(home=tmp_path, refresh_reuse_grace_s=0), store))
        finally:
            store.close()
        command.downgrade(_alembic_config(url), "0003")
        columns = {
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'refresh_tokens'"
            )
        }
        assert columns == {"digest", "user_id", "expires_at"}
