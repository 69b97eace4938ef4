"""Logs never contain secrets, password hashes or tokens, even when a request fails unexpectedly.

A real `heimdex serve` process runs with canary secrets. Its database then loses a table under it
(as a damaged database would), so a logged-in user's search fails with an unhandled exception:
the client gets a plain JSON 500 and the server log, in both formats, has the traceback but no
canary, no password hash and no token.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import structlog

from heimdex.logging import configure_logging, get_logger, redact, register_secrets
from heimdex.settings import Settings

CANARIES = {
    "HEIMDEX_SECRET_KEY": "canary-signing-key-7f3a9c1e",
    "HEIMDEX_S3_SECRET_ACCESS_KEY": "canary-s3-secret-42d8b0",
    "HEIMDEX_EXTERNAL_JWT_SECRET": "canary-external-jwt-5e61aa",
}
PASSWORD = "canary password 9b2f"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(home: Path, log: Path, json_logs: bool) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = {
        **os.environ,
        **CANARIES,
        "HEIMDEX_HOME": str(home),
        "HEIMDEX_LOG_JSON": "true" if json_logs else "false",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "heimdex.cli", "serve", "--port", str(port), "--no-worker"],
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    proc.kill()
    pytest.fail(f"heimdex serve did not start:\n{log.read_text()}")


@pytest.mark.parametrize("json_logs", [False, True], ids=["console", "json"])
def test_failing_request_logs_no_secret(tmp_path: Path, json_logs: bool) -> None:
    home, log = tmp_path / "home", tmp_path / "server.log"
    proc, url = _serve(home, log, json_logs)
    try:
        r = httpx.post(f"{url}/auth/register", json={"email": "carol@example.com", "password": PASSWORD})
        assert r.status_code == 201, r.text
        access, refresh = r.json()["access_token"], r.json()["refresh_token"]
        with sqlite3.connect(home / "heimdex.db") as db:  # the damage: the scene index is gone
            db.execute("DROP TABLE scenes")
        r = httpx.get(
            f"{url}/search",
            params={"q": "bridge budget"},
            headers={"Authorization": f"Bearer {access}"},
            timeout=60,
        )
        assert r.status_code == 500
        assert r.json() == {"status": 500, "message": "internal error; the server log has the details"}
    finally:
        proc.terminate()
        proc.wait(15)
    text = log.read_text()
    assert "api.unhandled" in text and "Traceback" in text, text[-3000:]  # the failure is logged
    with sqlite3.connect(home / "heimdex.db") as db:
        password_hash = db.execute("SELECT password_hash FROM users").fetchone()[0]
    for secret in [*CANARIES.values(), password_hash, access, refresh, PASSWORD]:
        assert secret not in text, f"{secret[:12]}... leaked into the log"


def test_settings_never_show_secrets() -> None:
    settings = Settings(
        secret_key="canary-repr-key-1",
        s3_secret_access_key="canary-repr-s3-2",
        database_url="postgresql://heimdex:canary-db-pass-3@db.internal/heimdex",
    )
    shown = repr(settings) + str(settings.model_dump())
    assert "canary-repr-key-1" not in shown and "canary-repr-s3-2" not in shown
    assert settings.secret_key is not None and settings.secret_key.get_secret_value() == "canary-repr-key-1"
    assert "canary-db-pass-3" in settings.secret_values()


def test_redaction_masks_registered_secrets_and_credential_shapes(capsys: pytest.CaptureFixture) -> None:
    register_secrets(["canary-db-pass-3"])
    before = structlog.get_config()
    try:
        configure_logging("INFO", json=False)  # prints to capsys's stderr
        get_logger("test").info(
            "connecting",
            url="postgresql://heimdex:canary-db-pass-3@db/heimdex",
            hash="$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
            token="hdx_" + "A" * 43,
        )
    finally:
        structlog.configure(**before)
    line = capsys.readouterr().err
    assert "canary-db-pass-3" not in line and "$argon2id$" not in line and "hdx_AAAA" not in line
    assert line.count("[redacted]") == 3
    assert redact("no secrets here") == "no secrets here"
