"""Security headers, cookies, redirects and files, over real HTTP: the Content-Security-Policy (and
the looser one of the API reference pages), no framing or sniffing, no-store on tokens, Secure
cookies behind HTTPS, where a login may send the browser, full Allow headers, 5xx that are JSON and
counted, and the modes of the home folder, the database and the blobs."""

from __future__ import annotations

import base64
import hashlib
import html
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.api.live import PASSWORD, LiveServer, upload, wait_for
from tests.api.test_videos import small_video

COMMON = {"x-frame-options": "DENY", "x-content-type-options": "nosniff", "referrer-policy": "same-origin"}


def policy(response: httpx.Response) -> dict[str, list[str]]:
    """The Content-Security-Policy as {directive: [sources]}."""
    directives = [d.split() for d in response.headers["content-security-policy"].split(";") if d.strip()]
    return {d[0]: d[1:] for d in directives}


def test_every_response_has_the_security_headers(server, alice) -> None:
    anonymous = server.client()
    for r in (
        anonymous.get("/login"),
        anonymous.get("/health"),
        anonymous.get("/static/app.js"),
        anonymous.get("/no/such/page"),
        anonymous.get("/videos"),  # 401
        alice.put("/videos"),  # 405
        alice.get("/videos"),
    ):
        for name, value in COMMON.items():
            assert r.headers.get(name) == value, (r.request.url, name)
        csp = policy(r)
        assert csp["default-src"] == ["'self'"] and csp["script-src"] == ["'self'"], csp
        assert csp["frame-ancestors"] == ["'none'"] and csp["object-src"] == ["'none'"]
        assert csp["base-uri"] == ["'none'"] and csp["form-action"] == ["'self'"]
        assert "'unsafe-inline'" not in csp["style-src"] and "'unsafe-eval'" not in str(csp)


def test_the_player_may_load_the_video_from_where_the_stream_redirects(server, alice, news) -> None:
    media = policy(alice.get("/app/search"))["media-src"]
    r = alice.get(f"/videos/{news['id']}/stream")
    if server.backend == "server":  # object storage serves the file: its origin is allowed, and only it
        assert r.status_code == 307
        location = urlsplit(r.headers["location"])
        assert media == ["'self'", f"{location.scheme}://{location.netloc}"]
    else:
        assert r.status_code == 200 and media == ["'self'"]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_api_reference_pages_allow_only_their_own_inline_scripts(server, page) -> None:
    r = server.client().get(page)
    assert r.status_code == 200
    inline = re.findall(r"<script>(.*?)</script>", r.text, re.DOTALL)
    assert inline or page == "/redoc", r.text  # Swagger UI starts from an inline script
    csp = policy(r)
    for script in inline:
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in csp["script-src"]
    assert "'unsafe-inline'" not in csp["script-src"] and "https://cdn.jsdelivr.net" in csp["script-src"]
    assert csp["default-src"] == ["'none'"] and csp["frame-ancestors"] == ["'none'"]
    assert r.headers["x-frame-options"] == "DENY"


def test_token_responses_are_not_stored(server, alice) -> None:
    client = server.client()
    registered = client.post("/auth/register", json={"email": "nostore@example.com", "password": PASSWORD})
    logged_in = client.post("/auth/login", json={"email": "nostore@example.com", "password": PASSWORD})
    refreshed = client.post("/auth/refresh", json={"refresh_token": logged_in.json()["refresh_token"]})
    # a user of its own: alice's token list belongs to the tests that count her tokens
    access = {"Authorization": f"Bearer {registered.json()['access_token']}"}
    token = client.post("/auth/tokens", json={"name": "no-store"}, headers=access)
    for r, status in ((registered, 201), (logged_in, 200), (refreshed, 200), (token, 201)):
        assert r.status_code == status and r.headers["cache-control"] == "no-store", r.request.url
    assert "no-store" not in alice.get("/videos").headers.get("cache-control", "")


def test_cookies_are_secure_when_the_proxy_says_https(server) -> None:
    """uvicorn trusts X-Forwarded-Proto from 127.0.0.1 (its default), as from a reverse proxy."""
    client = server.client()
    client.post("/auth/register", json={"email": "secure@example.com", "password": PASSWORD})
    body = {"email": "secure@example.com", "password": PASSWORD}
    plain = client.post("/auth/login", json=body).headers.get_list("set-cookie")
    https = client.post("/auth/login", json=body, headers={"X-Forwarded-Proto": "https"})
    cookies = https.headers.get_list("set-cookie")
    assert len(cookies) == 2 and all("; Secure" in c for c in cookies), cookies
    assert len(plain) == 2 and not any("secure" in c.lower() for c in plain), plain
    # A page renewing an expired session from the refresh cookie sets its new cookies Secure too.
    refresh = https.json()["refresh_token"]
    page = httpx.get(
        f"{server.url}/app",
        headers={"Cookie": f"heimdex_refresh={refresh}", "X-Forwarded-Proto": "https"},
    )
    renewed = page.headers.get_list("set-cookie")
    assert page.status_code == 200 and len(renewed) == 2 and all("; Secure" in c for c in renewed), renewed
    out = client.post("/auth/logout", json={"refresh_token": refresh}, headers={"X-Forwarded-Proto": "https"})
    assert all("; Secure" in c for c in out.headers.get_list("set-cookie"))


def login_next(server: LiveServer, query: str) -> str | None:
    """The `next` the login page hands to app.js, or None when the URL itself was refused."""
    r = server.client().get(f"/login?{query}")
    if r.status_code == 400:  # the URL guard refuses most control characters outright
        return None
    assert r.status_code == 200, r.text
    return html.unescape(re.search(r'data-next="([^"]*)"', r.text).group(1))


OFF_SITE = [
    "next=/%5Cevil.example",  # "/\evil.example": a browser reads "\" as "/"
    "next=/%09/evil.example",  # a browser drops the tab: "//evil.example"
    "next=/%0A/evil.example",
    "next=/%0D/evil.example",
    "next=%09//evil.example",
    "next=//evil.example",
    "next=///evil.example",
    "next=/%5C/evil.example",
    "next=%5C%5Cevil.example",
    "next=%5C/evil.example",
    "next=/app%5C..%5C..%5C/evil.example",
    "next=https://evil.example",
    "next=https:evil.example",
    "next=javascript:alert(1)",
    "next=%20//evil.example",
    "next=evil.example",
    "next=/%00/evil.example",
    "next=/%1F/evil.example",
    "next=/%7F/evil.example",
    "next=",
]
ON_SITE = {
    "next=/app/search%3Fq%3Dbridge%2Bbudget": "/app/search?q=bridge+budget",
    "next=/app/watch/abc%3Ft%3D12.5": "/app/watch/abc?t=12.5",
    "next=/": "/",
    "next=/app/%255Cx": "/app/%5Cx",  # an encoded backslash stays encoded: a path, not a slash
    "next=/app/p%C3%A4ge": "/app/päge",
}


@pytest.mark.parametrize("query", OFF_SITE)
def test_login_never_sends_the_browser_off_site(server, query) -> None:
    assert login_next(server, query) in ("/app", None)


def test_login_keeps_a_next_page_on_this_site(server) -> None:
    for query, expected in ON_SITE.items():
        assert login_next(server, query) == expected, query
    assert login_next(server, "") == "/app"


def test_405_lists_every_method_of_the_path(server, alice) -> None:
    for method, path, allow in (
        ("PUT", "/videos", "GET, POST"),
        ("PUT", "/videos/0123456789abcdef", "GET, DELETE"),
        ("PUT", "/people/0123456789abcdef", "GET, PATCH, DELETE"),
        ("PUT", "/videos/presign", "POST"),  # not GET and DELETE of /videos/{video_id}
        ("POST", "/videos/0123456789abcdef/stream", "GET, HEAD"),
        ("DELETE", "/auth/tokens", "GET, POST"),
        ("POST", "/static/app.js", "GET, HEAD"),
        ("POST", "/app", "GET"),
    ):
        r = alice.request(method, path)
        assert r.status_code == 405 and r.headers["allow"] == allow, (method, path, r.headers.get("allow"))
        assert r.json()["status"] == 405 and allow in r.json()["message"]


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> Iterator[LiveServer]:
    """An embedded server whose home does not exist yet, with a route that fails like a bug would."""
    home = tmp_path_factory.mktemp("fresh") / "new" / "home"
    live = LiveServer(home)

    def broken() -> None:
        raise RuntimeError("a bug")

    live.app.add_api_route("/test-only/broken", broken, include_in_schema=False)
    with live:
        yield live


def server_errors(server: LiveServer) -> int:
    text = server.client().get("/metrics").text
    found = re.search(r'^heimdex_http_responses_total\{status="5xx"\} (\d+)$', text, re.MULTILINE)
    return int(found.group(1)) if found else 0


def test_an_unhandled_error_is_a_counted_json_500_with_the_headers(fresh) -> None:
    before = server_errors(fresh)
    for _ in range(3):
        r = fresh.client().get("/test-only/broken")
        assert r.status_code == 500
        assert r.json() == {"status": 500, "message": "internal error; the server log has the details"}
        assert r.headers["x-content-type-options"] == "nosniff" and "content-security-policy" in r.headers
    assert server_errors(fresh) == before + 3


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_home_database_and_blobs_are_private(fresh) -> None:
    home = fresh.settings.home
    with fresh.user("private@example.com") as client:
        r = upload(client, small_video())
        assert r.status_code == 201, r.text
        assert wait_for(client, r.json()["videos"][0]["id"])["state"] == "indexed"
    assert mode(home) == 0o700 and mode(home.parent) == 0o700  # both created by the server
    database = home / "heimdex.db"
    for path in (database, database.with_name("heimdex.db-wal"), database.with_name("heimdex.db-shm")):
        assert path.is_file() and mode(path) == 0o600, (path, oct(mode(path)))
    blobs = sorted((home / "blobs").rglob("*"))
    files = [p for p in blobs if p.is_file()]
    assert len(files) >= 5, blobs  # the original, thumbnails, the pipeline's work files
    assert mode(home / "blobs") == 0o700
    for path in blobs:
        assert mode(path) == (0o600 if path.is_file() else 0o700), (path, oct(mode(path)))
