"""Abuse limits over real HTTP: registration tells nobody which addresses have accounts and is
limited per client address like login, and a client address comes from X-Forwarded-For only when
the peer is a trusted proxy (HEIMDEX_TRUSTED_PROXIES): the real `heimdex serve` under uvicorn."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from heimdex.api.routers.auth import REGISTRATION_RECEIVED
from heimdex.cli import proxy_options
from heimdex.settings import Settings
from tests.api.live import PASSWORD

# ---------------------------------------------------------------- neutral registration


def test_registering_a_taken_address_says_nothing_about_it(server) -> None:
    client = server.client()
    first = client.post("/auth/register", json={"email": "taken@example.com", "password": PASSWORD})
    assert first.status_code == 201 and "heimdex_access" in first.cookies  # new: logged in at once

    stranger = server.client()
    r = stranger.post("/auth/register", json={"email": "Taken@Example.com", "password": "someone else's"})
    assert r.status_code == 202, r.text
    assert r.json() == {"status": 202, "message": REGISTRATION_RECEIVED}
    assert "set-cookie" not in r.headers and not stranger.cookies  # nobody is logged in
    assert "taken" not in r.text.lower() and "exists" not in r.text.lower()

    # The account is untouched: its password logs in, the stranger's does not.
    login = lambda password: server.client().post(  # noqa: E731
        "/auth/login", json={"email": "taken@example.com", "password": password}
    )
    assert login("someone else's").status_code == 401
    assert login(PASSWORD).status_code == 200
    # Its owner registering again (a second device, a forgotten account) is simply logged in.
    again = server.client().post("/auth/register", json={"email": "taken@example.com", "password": PASSWORD})
    assert again.status_code == 200 and again.json()["user"]["id"] == first.json()["user"]["id"]
    assert "heimdex_access" in again.cookies


# ---------------------------------------------------------------- limits and proxies


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def heimdex_serve(home: Path, **env: str) -> Iterator[httpx.Client]:
    """The real `heimdex serve` (uvicorn as it configures it) on a free port, with HEIMDEX_* `env`."""
    port = _free_port()
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith("HEIMDEX_") and k != "FORWARDED_ALLOW_IPS"
    }
    log = home / "serve.log"
    home.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "heimdex.cli", "serve", "--port", str(port), "--no-worker"],
            env={**clean, "HEIMDEX_HOME": str(home), **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
        deadline = time.monotonic() + 90
        while True:
            try:
                if client.get("/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"heimdex serve did not start:\n{log.read_text()}")
            time.sleep(0.2)
        yield client
        client.close()
    finally:
        proc.terminate()
        proc.wait(30)


def _codes(client: httpx.Client, path: str, bodies: list[dict], forwarded_for: list[str]) -> list[int]:
    return [
        client.post(path, json=body, headers={"X-Forwarded-For": xff}).status_code
        for body, xff in zip(bodies, forwarded_for, strict=True)
    ]


def _new_accounts(prefix: str, n: int) -> list[dict]:
    return [{"email": f"{prefix}{i}@example.com", "password": PASSWORD} for i in range(n)]


def _bad_logins(prefix: str, n: int) -> list[dict]:
    # A different address each time: only the per-client limit can stop them.
    return [{"email": f"{prefix}{i}@example.com", "password": "wrong password"} for i in range(n)]


LIMITS = {"HEIMDEX_REGISTER_ATTEMPTS_PER_HOUR": "2", "HEIMDEX_LOGIN_ATTEMPTS_PER_MINUTE": "2"}


def test_a_local_client_cannot_dodge_the_limits_with_x_forwarded_for(tmp_path) -> None:
    with heimdex_serve(tmp_path / "direct", **LIMITS) as client:
        spoofed = [f"203.0.113.{i}" for i in range(3)]
        assert _codes(client, "/auth/register", _new_accounts("r", 3), spoofed) == [201, 201, 429]
        r = client.post(
            "/auth/register", json=_new_accounts("x", 1)[0], headers={"X-Forwarded-For": "192.0.2.9"}
        )
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
        assert "registrations" in r.json()["message"]
        assert _codes(client, "/auth/login", _bad_logins("l", 3), spoofed) == [401, 401, 429]


def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_limit(tmp_path) -> None:
    with heimdex_serve(tmp_path / "proxied", HEIMDEX_TRUSTED_PROXIES="127.0.0.1", **LIMITS) as client:
        clients = [f"203.0.113.{i}" for i in range(4)]
        assert _codes(client, "/auth/register", _new_accounts("r", 4), clients) == [201] * 4
        one = ["198.51.100.7"] * 3  # one client behind the proxy is still limited
        assert _codes(client, "/auth/register", _new_accounts("s", 3), one) == [201, 201, 429]
        assert _codes(client, "/auth/login", _bad_logins("l", 4), clients) == [401] * 4
        assert _codes(client, "/auth/login", _bad_logins("m", 3), one) == [401, 401, 429]


def test_trusted_proxies_setting() -> None:
    settings = Settings(trusted_proxies=" 127.0.0.1, 10.1.2.3/8 ,::1")  # as HEIMDEX_TRUSTED_PROXIES reads
    assert settings.trusted_proxies == ["127.0.0.1", "10.0.0.0/8", "::1"]
    assert proxy_options(settings) == {"proxy_headers": True, "forwarded_allow_ips": settings.trusted_proxies}
    assert proxy_options(Settings()) == {"proxy_headers": False, "forwarded_allow_ips": []}
    assert Settings(trusted_proxies='["*"]').trusted_proxies == ["*"]
    with pytest.raises(ValidationError, match="not an IP address"):
        Settings(trusted_proxies="proxy.example.com")
