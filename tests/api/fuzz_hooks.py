"""Schemathesis hooks for test_fuzz.py, loaded by the `st` process (SCHEMATHESIS_HOOKS).

They make the fuzzer a real user: every request carries the user's API token, every other case of
an operation with ids in its path gets ids of the user's real data (its indexed video and scene, an
enrolled person), and deletions get a fresh resource each time, so that success paths are fuzzed
too. HEIMDEX_FUZZ (JSON) gives the server, the account and the ids; the number of cases is written
to the `cases` file there when the run ends.
"""

from __future__ import annotations

import atexit
import itertools
import json
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import schemathesis

TARGET = json.loads(os.environ.get("HEIMDEX_FUZZ", "{}"))
COUNTERS: dict[str, Iterator[int]] = {}
STATE = {"token": TARGET.get("token", ""), "cases": 0}


def _client() -> httpx.Client:
    return httpx.Client(
        base_url=TARGET["url"], headers={"Authorization": f"Bearer {STATE['token']}"}, timeout=60
    )


def _login() -> None:
    """A new API token, after POST /auth/logout-all may have revoked it."""
    with httpx.Client(base_url=TARGET["url"], timeout=60) as anonymous:
        r = anonymous.post("/auth/login", json={"email": TARGET["email"], "password": TARGET["password"]})
        r.raise_for_status()
        access = r.json()["access_token"]
        r = anonymous.post(
            "/auth/tokens", json={"name": "fuzzer"}, headers={"Authorization": f"Bearer {access}"}
        )
        r.raise_for_status()
        STATE["token"] = r.json()["token"]


def _fresh(name: str) -> str | None:
    """A new resource of the fuzzer's, for a DELETE to remove."""
    n = STATE["cases"]
    with _client() as client:
        if name == "video_id":
            r = client.post("/videos", files={"file": (f"doomed-{n}.mp4", b"not a video %d" % n)})
            r.raise_for_status()
            return r.json()["videos"][0]["id"]
        if name == "person_id":
            r = client.post("/people", json={"name": f"doomed {n}"})
        elif name == "token_id":
            r = client.post("/auth/tokens", json={"name": f"doomed {n}"})
        elif name == "user_id":
            r = client.post(
                "/auth/register", json={"email": f"doomed{n}@example.com", "password": TARGET["password"]}
            )
            r.raise_for_status()
            return r.json()["user"]["id"]
        else:
            return None
        r.raise_for_status()
        return r.json()["id"]


@schemathesis.hook
def before_call(context, case, kwargs) -> None:
    STATE["cases"] += 1
    case.headers = {**(case.headers or {}), "Authorization": f"Bearer {STATE['token']}"}
    counter = COUNTERS.setdefault(case.operation.label, itertools.count())
    if next(counter) % 2 or not case.path_parameters:
        return
    for name in list(case.path_parameters):
        value = _fresh(name) if case.method.upper() == "DELETE" else TARGET["ids"].get(name)
        if value is not None:
            case.path_parameters[name] = value


@schemathesis.hook
def after_call(context, case, response) -> None:
    if case.path == "/auth/logout-all" and response.status_code == 200:
        _login()


@atexit.register
def _report() -> None:
    if TARGET.get("report"):
        Path(TARGET["report"]).write_text(str(STATE["cases"]))
