"""Server mode across machines: two `heimdex worker` processes, each on its own "host" (a network
namespace linked to the root one by a veth pair, tests/netns.py), reach PostgreSQL, the broker and
S3 only over their link, at the root end's address; each host has its own home folder (its own
unpacked models and S3 cache), so nothing passes between them but the network.

The root namespace runs the servers: the bundled PostgreSQL (a Unix socket) and SeaweedFS's S3
(127.0.0.1) from tests/services.py, and the broker: a redis-server of this test's own, listening on
the links' root addresses, or the machine's RabbitMQ (127.0.0.1, a private vhost). What listens only
on loopback or a socket is reached through a forwarder on each link's root address (tests/netns.py
says why). The producer (this process) uses the servers directly.

1. Two videos are queued; when an asr or vision stage is running, its host's link is cut (`ip link
   set down`): the other host takes the stage over once the broker and the lease give the cut-off
   worker up, and finishes both videos. No scene is duplicated, every stage is recorded done once
   (the cut one started twice), and the bucket holds exactly what the store references. Then the
   link comes back: the cut-off worker finishes the stage it was in, finds its claim gone and
   records nothing (the ledger, scenes and bucket are as they were), and keeps working.
2. A third video: the host holding one of its stages loses its link and is killed (a machine that
   dies: no connection is closed), and the other host finishes it. The host cut off in 1 takes part
   either way: it held that stage, or it finished the video.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
import pytest

from heimdex.domain import StageRecord, StageState, VideoState
from heimdex.pipeline.graph import GRAPH, STAGES
from heimdex.queue.broker import StageQueue
from heimdex.service import Heimdex
from heimdex.settings import Settings
from tests import netns, services
from tests.e2e.fleet import (
    Workers,
    check_ran_again,
    check_scenes,
    dead_letters,
    env_of,
    flush,
    referenced_keys,
    running,
    small_video,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]

LEASE_S = 4.0
# Phase 1 cuts a host off while it computes (the big machines' queues), not in a stage of a few
# milliseconds: the stage's work goes on offline and its writes wait for the link.
HEAVY = {s for s in STAGES if GRAPH[s].queue in ("asr", "vision")}


@pytest.fixture(scope="module")
def hosts() -> Iterator[list[netns.Host]]:
    reason = netns.unavailable()
    if reason is not None:
        message = f"the multi-host test needs network namespaces: {reason}"
        if os.environ.get("CI") == "true":  # CI runs as root: there, this is a broken machine
            pytest.fail(message)
        pytest.skip(message)
    with netns.hosts(2) as made:
        yield made


@dataclass
class Cluster:
    producer: Settings  # this process, in the root namespace
    workers: dict[str, dict[str, str]]  # host name -> the environment of its worker
    bucket: str


@pytest.fixture(params=["redis", "rabbitmq"])
def cluster(request, hosts, tmp_path) -> Iterator[Cluster]:
    addresses = [h.root_addr for h in hosts]
    s3 = services.s3_endpoint()
    with (
        netns.forwarder() as forward,
        broker_for(request.param, addresses) as queue_url,
        services.fresh_postgres() as database_url,
        services.fresh_bucket() as bucket,
    ):
        producer = Settings(
            home=tmp_path / "producer",
            database_url=database_url,
            storage_url=f"s3://{bucket}",
            queue_url=queue_url,
            asr_model="tiny.en",
            queue_lease_s=LEASE_S,
            **s3.settings_fields(),
        )
        flush(producer)
        remote = {
            "database_url": _forwarded_postgres(forward, addresses, database_url),
            "queue_url": _forwarded_broker(forward, addresses, queue_url),
            "s3_endpoint_url": _forwarded_http(forward, addresses, s3.endpoint_url),
        }
        envs = {h.name: _host_env(producer, remote, h, tmp_path) for h in hosts}
        yield Cluster(producer, envs, bucket)


def _host_env(producer: Settings, remote: dict[str, str], host: netns.Host, tmp_path: Path) -> dict[str, str]:
    """The worker's settings: the producer's, with every server at the host's end of its link."""
    at_host = {k: v.replace("{root}", host.root_addr) for k, v in remote.items()}
    settings = producer.model_copy(update={"home": tmp_path / host.name, **at_host})
    return {**env_of(settings), "HF_HUB_OFFLINE": "1"}  # a worker host has no internet here either


def _forwarded_postgres(forward: netns.Forwarder, addresses: list[str], url: str) -> str:
    """The bundled server listens on a Unix socket only; HEIMDEX_TEST_POSTGRES_URL may be TCP."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    host, port = str(info.get("host") or "localhost"), int(info.get("port") or 5432)
    target = Path(host) / f".s.PGSQL.{port}" if host.startswith("/") else (host, port)
    fport = forward.forward(addresses, target)
    user = quote(info.get("user") or "postgres", safe="")
    password = f":{quote(info['password'], safe='')}" if info.get("password") else ""
    return f"postgresql://{user}{password}@{{root}}:{fport}/{info['dbname']}"


def _forwarded_broker(forward: netns.Forwarder, addresses: list[str], url: str) -> str:
    parts = urlsplit(url)
    credentials = parts.netloc.rpartition("@")[0]
    if parts.scheme == "redis":  # our own server listens on the links' root addresses already
        return urlunsplit(parts._replace(netloc=f"{credentials}@{{root}}:{parts.port}"))
    fport = forward.forward(addresses, (parts.hostname or "127.0.0.1", parts.port or 5672))
    return urlunsplit(parts._replace(netloc=f"{credentials}@{{root}}:{fport}"))


def _forwarded_http(forward: netns.Forwarder, addresses: list[str], url: str) -> str:
    parts = urlsplit(url)
    fport = forward.forward(addresses, (parts.hostname or "127.0.0.1", parts.port or 80))
    return f"{parts.scheme}://{{root}}:{fport}"


@contextmanager
def broker_for(kind: str, addresses: list[str]) -> Iterator[str]:
    if kind == "rabbitmq":
        yield services.amqp_url()
        return
    with redis_server(addresses) as url:
        yield url


@contextmanager
def redis_server(addresses: list[str]) -> Iterator[str]:
    """A redis-server of this test's own (never the machine's: other sessions use it), on loopback
    for the producer and on each link's root address for the hosts. With a password, as a Redis
    reached over a network must be (without one it refuses every client but loopback's)."""
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    (port,) = services._free_ports(1)
    password = secrets.token_hex(12)
    command = [binary, "--bind", "127.0.0.1", *addresses, "--port", str(port), "--requirepass", password]
    proc = subprocess.Popen(
        [*command, "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        url = f"redis://:{password}@127.0.0.1:{port}/0"
        deadline = time.monotonic() + 15
        while not services._port_open(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {port} (exit code {proc.poll()})")
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def computing(app: Heimdex, video_ids: list[str]) -> tuple[str, str, str] | None:
    """(video, worker, stage) of a HEAVY stage of one of the videos that a worker runs, if one does."""
    for video_id in video_ids:
        for r in app.stages(video_id):
            if r.stage in HEAVY and r.state == StageState.RUNNING and r.claimed_by is not None:
                return video_id, r.claimed_by, r.stage
    return None


def ledger(app: Heimdex, video_ids: list[str]) -> dict[str, dict[str, StageRecord]]:
    return {v: {r.stage: r for r in app.stages(v)} for v in video_ids}


def host_of(worker_id: str) -> str:
    return worker_id.split(":")[0]  # ids are hostname:pid:random, and each host has its hostname


def test_a_host_cut_off_mid_stage(cluster, hosts, tmp_path) -> None:
    videos = [small_video(i) for i in range(3)]  # made before the clock starts (cached between runs)
    by_name = {h.name: h for h in hosts}
    app = Heimdex(cluster.producer)
    queue = StageQueue(cluster.producer, app.store)
    workers = Workers(cluster.producer, tmp_path)
    try:
        started = time.monotonic()
        for host in hosts:
            workers.start(host.name, prefix=host.exec_prefix(), env=cluster.workers[host.name])
        wait_for(lambda: all(workers.ready(h.name) for h in hosts), 150, "both hosts' workers ready", workers)
        print(f"workers ready in {time.monotonic() - started:.1f}s")

        # ------------------------------------------------ phase 1: a link cut mid-stage, then mended
        ids = [app.add_file(path).video.id for path in videos[:2]]
        for video_id in ids:
            queue.enqueue(video_id)
        cut_video, holder, stage = wait_for(lambda: computing(app, ids), 90, "asr or vision running", workers)
        cut, survivor = host_of(holder), next(h.name for h in hosts if h.name != host_of(holder))
        by_name[cut].cut()
        cut_at = time.monotonic()
        before = ledger(app, ids)  # read after the cut: the cut-off worker can change nothing now
        print(f"cut {cut} off during {stage}")

        wait_for(lambda: workers.done(ids, by=None) and all(app.video(v).claimed_by is None for v in ids),
                 150, f"{survivor} to finish both videos", workers)  # fmt: skip
        print(f"{survivor} finished both videos {time.monotonic() - cut_at:.1f}s after the cut")
        after = ledger(app, ids)
        for video_id in ids:
            assert app.video(video_id).state == VideoState.INDEXED, app.video(video_id).error
            assert set(after[video_id]) == set(STAGES)
            check_ran_again(before[video_id], after[video_id], holder)
            check_scenes(app, video_id)
        assert survivor in workers.finished_stages(cut_video)[stage], f"{stage} did not move to {survivor}"
        assert not workers.done([cut_video], by=cut)
        ran = {v: workers.finished_stages(v) for v in ids}
        print("stages finished by:", {v[:8]: r for v, r in ran.items()})
        assert all(len(names) == 1 for r in ran.values() for names in r.values()), "a stage finished twice"
        assert bucket_matches_store(app, cluster.bucket, ids), "a blob the store does not reference"
        scenes = {v: [s.id for s in app.store.job_scenes(v)] for v in ids}

        by_name[cut].mend()
        mended_at = time.monotonic()
        abandoned = lambda: [e for e in workers.events(cut, "job.abandoned") if e["stage"] == stage]  # noqa: E731
        # Its connections resume at their next retransmission, which backs off while the link is down.
        wait_for(abandoned, 150, f"{cut}, back on the network, to give {stage} up", workers)
        print(f"{cut} gave {stage} up {time.monotonic() - mended_at:.1f}s after the link came back")
        assert abandoned()[0]["video_id"] == cut_video
        # It may have written its stage's artifacts on coming back; it drops them (the video is over).
        wait_for(lambda: bucket_matches_store(app, cluster.bucket, ids), 30, "the bucket to match", workers)
        assert ledger(app, ids) == after, "the cut-off worker wrote to the ledger"
        assert {v: [s.id for s in app.store.job_scenes(v)] for v in ids} == scenes
        assert workers.procs[cut].poll() is None, f"{cut}'s worker died:\n{workers.tail(cut)}"

        # ------------------------------------------------ phase 2: a host dies mid-stage
        last = app.add_file(videos[2]).video.id
        queue.enqueue(last)
        holder, stage = wait_for(lambda: running(app, last), 60, "a stage of the third video", workers)
        dead = host_of(holder)
        other = next(h.name for h in hosts if h.name != dead)
        by_name[dead].cut()  # no FIN, no RST: the servers learn nothing from the kill
        workers.procs[dead].kill()
        killed_at = time.monotonic()
        before = ledger(app, [last])[last]
        print(f"{dead} died during {stage}")
        wait_for(lambda: workers.done([last], by=other) and app.video(last).claimed_by is None,
                 120, f"{other} to finish the third video", workers)  # fmt: skip
        print(f"{other} finished it {time.monotonic() - killed_at:.1f}s after the death")
        by_name[dead].mend()
        check_ran_again(before, ledger(app, [last])[last], holder)
        check_scenes(app, last)
        # The mended host took work again: it held the stage its death interrupted, or it finished.
        assert any(e["video_id"] == last for e in workers.events(cut, "stage.started")), f"{cut} took no work"
        everything = [*ids, last]
        assert bucket_matches_store(app, cluster.bucket, everything), "a blob the store does not reference"
        assert queue.depth() == 0 and dead_letters(queue) == 0
        assert app.search("harbour").hits[0].video_id == ids[0], "the hosts' index is searchable"
    finally:
        for host in hosts:  # a failure may leave a link down: the workers drain, the next test has it
            host.mend()
        workers.stop_all()
        app.close()
        queue.stop()
    assert workers.procs[other].returncode == 0, "SIGTERM: the idle worker stops cleanly"


def bucket_matches_store(app: Heimdex, bucket: str, video_ids: list[str]) -> bool:
    """No orphan blob: the bucket holds exactly the originals, thumbnails and sidecars the store
    references (no work/ artifact outlived its commit), and every one of them exists."""
    return services.bucket_keys(bucket) == referenced_keys(app, video_ids)
