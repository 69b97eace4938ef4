"""Schemathesis fuzzes the real API against its own /openapi.json, on both backends.

Every operation gets the schema's examples and up to MAX_EXAMPLES random cases (positive and
negative), and on the embedded backend the coverage cases too (the boundaries and negative cases the
schema defines, and the methods it does not document), from a fixed seed, one request at a time.
The run fails on any 5xx and on any response the description does not allow: an undocumented
status, content type, header or body, or a 405 whose Allow header is not the documented methods.

The fuzzer is a real user of a real server (tests/api/live.py) with real data: see fuzz_hooks.py.
It runs as the `st` command line (schemathesis' pytest plugin does not work with pytest 9), over
HTTP to the server in this process. GET /jobs/events is an endless stream; test_openapi.py checks it.
It prints how many cases and requests it ran, and how long it took.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import assets
from tests.api.backends import BACKENDS, TEST_REDIS_DB, live_server
from tests.api.live import PASSWORD, LiveServer, upload, wait_for

REPO = Path(__file__).resolve().parents[2]
# The coverage cases (about 750, three quarters of the time) test the description, the same on both
# backends; the random ones, with their NUL bytes, huge numbers and odd text, run on both databases.
PHASES = {"embedded": "examples,coverage,fuzzing", "server": "examples,fuzzing"}
MAX_EXAMPLES = {"embedded": 3, "server": 8}  # random cases per operation, at most
SEED = 20261201
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "unsupported_method",
    "allow_header_conformance",
]
EMAIL = "fuzzer@example.com"


def fuzz_video() -> Path:
    return assets.narrated_video(
        "fuzz-small",
        [
            {"image": assets.skimage_photo("coffee"), "say": None, "seconds": 2.0},
            {"image": assets.kphotoalbum_photo("donna.jpg"), "say": None, "seconds": 2.0},
        ],
    )


def responses_counted(server: LiveServer) -> int:
    """heimdex_http_responses_total over every status class: the requests the server answered."""
    text = server.client().get("/metrics").text
    prefix = "heimdex_http_responses_total{"
    return sum(int(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix))


@pytest.fixture(scope="module", params=BACKENDS)
def fuzz_server(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[LiveServer]:
    home = tmp_path_factory.mktemp(f"fuzz-{request.param}-home")
    # The fuzzer registers accounts, and so do the hooks (one per DELETE /users/{id} they feed).
    with live_server(request.param, home, redis_db=TEST_REDIS_DB, register_attempts_per_hour=10_000) as live:
        yield live


@pytest.fixture(scope="module")
def target(fuzz_server: LiveServer) -> dict:
    """The fuzzer's account: an indexed video, its scenes, an enrolled person, an API token."""
    with fuzz_server.user(EMAIL) as client:
        r = upload(client, fuzz_video())
        assert r.status_code == 201, r.text
        video = wait_for(client, r.json()["videos"][0]["id"])
        assert video["state"] == "indexed", video["error"]
        scenes = client.get(f"/videos/{video['id']}/scenes").json()
        person = client.post("/people", json={"name": "Donna"}).json()
        with open(assets.kphotoalbum_photo("donna.jpg"), "rb") as f:
            r = client.post(f"/people/{person['id']}/photos", files={"file": ("donna.jpg", f, "image/jpeg")})
        assert r.status_code == 200 and r.json()["scene_count"] >= 1, r.text
        token = client.post("/auth/tokens", json={"name": "fuzzer"}).json()["token"]
    return {
        "url": fuzz_server.url,
        "email": EMAIL,
        "password": PASSWORD,
        "token": token,
        "ids": {"video_id": video["id"], "scene_id": scenes[0]["id"], "person_id": person["id"]},
    }


def test_the_api_does_what_its_openapi_says(fuzz_server: LiveServer, target: dict, tmp_path: Path) -> None:
    report = tmp_path / "cases"
    command = [
        *(sys.executable, "-m", "schemathesis.cli", "run", f"{fuzz_server.url}/openapi.json"),
        *("--phases", PHASES[fuzz_server.backend], "--checks", ",".join(CHECKS)),
        *(
            "--max-examples",
            str(MAX_EXAMPLES[fuzz_server.backend]),
            "--seed",
            str(SEED),
            "--generation-database",
            "none",
        ),
        *("--workers", "1", "--request-timeout", "30"),
        *("--exclude-path", "/jobs/events", "--no-color"),
    ]
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "SCHEMATHESIS_HOOKS": "tests.api.fuzz_hooks",
        "HEIMDEX_FUZZ": json.dumps({**target, "report": str(report)}),
    }
    before, started = responses_counted(fuzz_server), time.monotonic()
    run = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    seconds = time.monotonic() - started
    requests = responses_counted(fuzz_server) - before - 1  # less the /metrics just before
    assert run.returncode == 0, run.stdout[-20_000:] + run.stderr[-5_000:]
    cases = int(report.read_text())
    print(f"\n[{fuzz_server.backend}] {cases} cases, {requests} requests in {seconds:.0f} s")
    # A fuzzer that quietly generated nothing would pass everything.
    operations = sum(len(item) for item in fuzz_server.app.openapi()["paths"].values())
    assert cases >= 2 * operations and requests >= cases, (cases, requests, operations)
