"""The server store: PostgreSQL with pgvector for vectors and tsvector/GIN for full text.

Same contract and same results as sqlite.py, for many processes and threads at once:
- one psycopg_pool.ConnectionPool per store (the API server is multi-threaded);
- the schema is owned by Alembic (heimdex/store/migrations); `migrate(url)` upgrades to head and a
  store refuses to open a database that is behind, unless it was asked to migrate it itself;
- dense search uses one HNSW index per (model, dimension): an HNSW index needs a fixed dimension
  while scene_vectors keeps every model in one column, so each index is a partial expression index
  `((vector::vector(DIM)) vector_cosine_ops) WHERE kind = .. AND model = .. AND dim = ..`, created
  when the model is first committed. Queries repeat the same expression and the same literal WHERE,
  which is what lets the planner prove that the partial index applies.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import psycopg
from pgvector.psycopg import register_vector
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from heimdex.domain import (
    MediaInfo,
    Person,
    Scene,
    StageRecord,
    StageState,
    Tag,
    Video,
    VideoState,
    Word,
)
from heimdex.errors import ConflictError, HeimdexError, NotFoundError
from heimdex.matching import FaceMatch
from heimdex.store.base import (
    LIVE_MATCH,
    POSSIBLE_MATCH,
    SURE_MATCH,
    CommitBundle,
    MatchView,
    SceneFilter,
    ScoredScene,
    Store,
    check_verdict,
    match_view,
    only_possible,
)
from heimdex.store.sqlite import new_id
from heimdex.validation import strip_controls

MIGRATIONS = Path(__file__).with_name("migrations")
# HNSW candidate list per query (hnsw.ef_search, pgvector's maximum is 1000). Measured at 1M synthetic
# clustered 384-d scenes (docs/PERFORMANCE.md): recall@10 0.85 at 100, 0.93 at 400, 0.96 at 800, with
# dense p95 29 / 31 / 45 ms. 800 is what meets recall >= 0.95 there; smaller collections barely notice.
EF_SEARCH = 800
VOCABULARY_TTL_S = 60.0  # how long an owner's word list serves near-word lookups (see vocabulary)
# Owners with fewer scenes than this get exact dense search: a few ms, and recall 1.
EXACT_BELOW = 5000
BIG_OWNER_TTL_S = 60.0
# ts_rank_cd weights for {D, C, B, A} = {-, tags, on-screen text, transcript}, as SQLite's bm25 weights.
RANK_WEIGHTS = "{0.1, 0.4, 0.9, 1.0}"
_INDEX_LOCK_ID = 0x48455658  # advisory lock serialising on-demand index creation across processes
# Alembic's command API swaps module globals (alembic.context, alembic.op): one run per process at a
# time. Processes are serialised by an advisory lock in migrations/env.py.
_MIGRATE_LOCK = threading.Lock()


# ---------------------------------------------------------------- URLs and migrations


def _libpq_url(url: str) -> str:
    """postgresql://... for psycopg (also accepts postgres:// and postgresql+psycopg://)."""
    scheme, rest = url.split("://", 1)
    if scheme not in ("postgresql", "postgres", "postgresql+psycopg"):
        raise ValueError(f"not a PostgreSQL URL: {redact(url)}")
    return f"postgresql://{rest}"


def _sqlalchemy_url(url: str) -> str:
    return "postgresql+psycopg://" + _libpq_url(url).split("://", 1)[1]


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _alembic_config(url: str | None = None):
    from alembic.config import Config

    cfg = Config()  # built in code: an installed package carries no alembic.ini
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if url is not None:
        cfg.attributes["url"] = _sqlalchemy_url(url)  # attributes: no ConfigParser '%' interpolation
    return cfg


@cache
def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None, "the packaged migrations have no head"
    return head


def migrate(url: str) -> str:
    """Upgrade the database at `url` to the newest schema and return its revision (`heimdex migrate`)."""
    from alembic import command

    try:
        with _MIGRATE_LOCK:
            command.upgrade(_alembic_config(url), "head")
    except Exception as exc:  # sqlalchemy/psycopg errors: say which database and why, briefly
        raise HeimdexError(f"could not migrate the PostgreSQL database {redact(url)}: {exc}") from exc
    return head_revision()


def schema_revision(url: str) -> str | None:
    """The Alembic revision the database is at; None when Heimdex's schema was never created there."""
    with _connect(url) as conn:
        exists = conn.execute("SELECT to_regclass('alembic_version') IS NOT NULL").fetchone()[0]
        if not exists:
            return None
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        return row[0] if row else None


def _connect(url: str) -> psycopg.Connection:
    try:
        return psycopg.connect(_libpq_url(url), autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise HeimdexError(f"cannot connect to PostgreSQL at {redact(url)}: {exc}") from exc


def check_schema(url: str) -> None:
    current, head = schema_revision(url), head_revision()
    if current != head:
        found = "has no Heimdex schema" if current is None else f"is at schema revision {current}"
        raise HeimdexError(
            f"the PostgreSQL database {redact(url)} {found}, this Heimdex needs revision {head}:"
            " run `heimdex migrate` first"
        )


# ---------------------------------------------------------------- helpers


def _vector(values: Any) -> np.ndarray:
    return np.ascontiguousarray(values, dtype=np.float32).reshape(-1)


def _matrix(vectors: Sequence[Any], dim: int) -> np.ndarray:
    """Stack pgvector values (pgvector.Vector) into an (n, dim) float32 matrix."""
    if not vectors:
        return np.zeros((0, dim), dtype=np.float32)
    return np.stack([v.to_numpy() for v in vectors]).astype(np.float32, copy=False)


def _index_name(kind: str, model: str, dim: int) -> str:
    # model names are free text: hash them into a valid, bounded identifier
    digest = hashlib.sha1(f"{kind}\x1f{model}\x1f{dim}".encode()).hexdigest()[:16]
    return f"scene_vectors_hnsw_{digest}"


WINDOW = "window"  # the kind of the vectors of scene windows, kept in their own table


WINDOWS_PER_SCENE = 4  # window rows fetched per scene wanted (a long scene has a few windows)


def _vector_table(kind: str, alias: str = "") -> tuple[str, str]:
    """(table, SQL condition on {kind}) of a kind of vector: scene windows have a table of their own."""
    return ("scene_windows", "") if kind == WINDOW else ("scene_vectors", f"{alias}kind = {{kind}} AND")


def open_pool(
    url: str,
    name: str,
    min_size: int,
    max_size: int,
    configure: Callable[[psycopg.Connection], None] | None = None,
) -> ConnectionPool:
    """An open pool of autocommit connections returning dict rows, checked before each use so that
    a server restart costs one failed check, not a failed request."""
    pool = ConnectionPool(
        url,
        min_size=min_size,
        max_size=max_size,
        kwargs={"autocommit": True, "row_factory": dict_row},
        configure=configure,
        check=ConnectionPool.check_connection,
        name=name,
        open=False,
    )
    try:
        pool.open(wait=True, timeout=30)
    except Exception as exc:
        pool.close()
        raise HeimdexError(f"cannot connect to PostgreSQL at {redact(url)}: {exc}") from exc
    return pool


class PostgresStore(Store):
    def __init__(
        self,
        url: str,
        *,
        auto_migrate: bool = True,
        min_connections: int = 1,
        max_connections: int = 8,
        ef_search: int = EF_SEARCH,
        idle_transaction_timeout_s: float = 30.0,
    ) -> None:
        self.url = _libpq_url(url)
        self.ef_search = int(ef_search)
        self.idle_transaction_timeout_ms = max(1, int(idle_transaction_timeout_s * 1000))
        if auto_migrate:
            migrate(self.url)
        else:
            check_schema(self.url)
        self._indexes: set[str] = set()  # HNSW indexes known to exist (saves a catalog lookup per commit)
        self._indexes_lock = threading.Lock()
        self._large_owners: dict[str, float] = {}  # owner -> when it was last seen to own many scenes
        self._vocabulary: dict[str, tuple[float, Sequence[str]]] = {}  # owner -> (when read, words)
        self._vocabulary_lock = threading.Lock()
        self._pool = open_pool(self.url, "heimdex", min_connections, max_connections, self._configure)

    def _configure(self, conn: psycopg.Connection) -> None:
        register_vector(conn)
        conn.execute(f"SET hnsw.ef_search = {self.ef_search}")
        # pgvector >= 0.8: with a filter, keep walking the graph until LIMIT rows pass it.
        conn.execute("SET hnsw.iterative_scan = strict_order")
        # A process frozen between two statements of a transaction (SIGSTOP, a suspended VM) keeps
        # its row locks, and the worker that takes its job over would wait on them for good. Our
        # transactions never idle on purpose: past the lease, the server ends the session, which
        # releases the locks and throws the frozen transaction's writes away.
        conn.execute(f"SET idle_in_transaction_session_timeout = {self.idle_transaction_timeout_ms}")

    @contextmanager
    def _conn(self) -> Iterator[psycopg.Connection]:
        with self._pool.connection() as conn:
            yield conn

    @contextmanager
    def _tx(self) -> Iterator[psycopg.Connection]:
        with self._pool.connection() as conn, conn.transaction():
            yield conn

    def _all(self, query: Any, params: Sequence[Any] = (), binary: bool = False) -> list[dict]:
        with self._conn() as conn, conn.cursor(binary=binary) as cur:
            return cur.execute(query, params).fetchall()

    def _one(self, query: Any, params: Sequence[Any] = ()) -> dict | None:
        with self._conn() as conn:
            return conn.execute(query, params).fetchone()

    def close(self) -> None:
        self._pool.close()

    # ------------------------------------------------------------ videos
    def add_video(
        self, owner_id: str, filename: str, original_key: str, size_bytes: int, sha256: str | None
    ) -> Video:
        now, video_id = time.time(), new_id()
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO videos (id, owner_id, filename, original_key, size_bytes, sha256, state,"
                " created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    video_id,
                    owner_id,
                    filename,
                    original_key.format(video_id=video_id),
                    size_bytes,
                    sha256,
                    VideoState.QUEUED.value,
                    now,
                    now,
                ),
            )
        return self.get_video(video_id)

    def get_video(self, video_id: str, owner_id: str | None = None) -> Video:
        row = self._one("SELECT * FROM videos WHERE id = %s", (video_id,))
        if row is None or (owner_id is not None and row["owner_id"] != owner_id):
            raise NotFoundError(f"no video {video_id!r}")
        return self._video(row)

    def find_video_by_hash(self, owner_id: str, sha256: str) -> Video | None:
        row = self._one(
            "SELECT * FROM videos WHERE owner_id = %s AND sha256 = %s ORDER BY created_at LIMIT 1",
            (owner_id, sha256),
        )
        return self._video(row) if row else None

    def list_videos(self, owner_id: str, state: VideoState | None = None) -> list[Video]:
        query, params = "SELECT * FROM videos WHERE owner_id = %s", [owner_id]
        if state is not None:
            query += " AND state = %s"
            params.append(VideoState(state).value)
        rows = self._all(query + ' ORDER BY created_at, id COLLATE "C"', params)
        return [self._video(r) for r in rows]

    def set_video_state(self, video_id: str, state: VideoState, error: str | None = None) -> None:
        with self._tx() as conn:
            conn.execute(
                "UPDATE videos SET state = %s, error = %s, updated_at = %s WHERE id = %s",
                (VideoState(state).value, error, time.time(), video_id),
            )

    def set_video_info(self, video_id: str, info: MediaInfo) -> None:
        with self._tx() as conn:
            conn.execute(
                "UPDATE videos SET info = %s, updated_at = %s WHERE id = %s",
                (info.model_dump_json(), time.time(), video_id),
            )

    def delete_video(self, video_id: str) -> None:
        # ON DELETE CASCADE reaches the ledger, scenes, vectors, tags, faces and face matches.
        with self._tx() as conn:
            conn.execute("DELETE FROM videos WHERE id = %s", (video_id,))

    @staticmethod
    def _video(row: dict) -> Video:
        return Video(
            id=row["id"],
            owner_id=row["owner_id"],
            filename=row["filename"],
            original_key=row["original_key"],
            size_bytes=row["size_bytes"],
            sha256=row["sha256"],
            state=VideoState(row["state"]),
            error=row["error"],
            info=MediaInfo.model_validate(row["info"]) if row["info"] else None,
            language=row["language"],
            scene_count=row["scene_count"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            claimed_by=row["claimed_by"] if (row["claim_expires"] or 0) > time.time() else None,
        )

    # ------------------------------------------------------------ claims
    # Expiry uses the database server's clock (_NOW), so workers on machines whose clocks drift apart
    # still agree on when a lease has run out.
    _NOW = "extract(epoch from clock_timestamp())"

    def claim_video(self, video_id: str, worker_id: str, lease_s: float) -> bool:
        with self._tx() as conn:
            cur = conn.execute(
                f"UPDATE videos SET claimed_by = %s, claim_expires = {self._NOW} + %s WHERE id = %s"
                f" AND (claimed_by IS NULL OR claimed_by = %s OR claim_expires < {self._NOW})",
                (worker_id, lease_s, video_id, worker_id),
            )
            return cur.rowcount == 1

    def renew_claim(self, video_id: str, worker_id: str, lease_s: float) -> bool:
        with self._tx() as conn:
            cur = conn.execute(
                f"UPDATE videos SET claim_expires = {self._NOW} + %s WHERE id = %s AND claimed_by = %s",
                (lease_s, video_id, worker_id),
            )
            return cur.rowcount == 1

    def release_claim(self, video_id: str, worker_id: str) -> None:
        with self._tx() as conn:
            conn.execute(
                "UPDATE videos SET claimed_by = NULL, claim_expires = NULL WHERE id = %s AND claimed_by = %s",
                (video_id, worker_id),
            )

    # ------------------------------------------------------------ the job ledger
    def stage_records(self, video_id: str) -> list[StageRecord]:
        rows = self._all(
            'SELECT * FROM stage_runs WHERE video_id = %s ORDER BY stage COLLATE "C"', (video_id,)
        )
        return [
            StageRecord(
                stage=r["stage"],
                state=StageState(r["state"]),
                attempts=r["attempts"],
                duration_s=r["duration_s"],
                error=r["error"],
                started_at=r["started_at"],
                finished_at=r["finished_at"],
            )
            for r in rows
        ]

    def stage_started(self, video_id: str, stage: str) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO stage_runs (video_id, stage, state, attempts, started_at)"
                " VALUES (%s, %s, %s, 1, %s)"
                " ON CONFLICT (video_id, stage) DO UPDATE SET state = excluded.state,"
                " attempts = stage_runs.attempts + 1, started_at = excluded.started_at, error = NULL",
                (video_id, stage, StageState.RUNNING.value, time.time()),
            )

    def stage_done(self, video_id: str, stage: str, duration_s: float) -> None:
        self._finish_stage(video_id, stage, StageState.DONE, duration_s, None)

    def stage_failed(self, video_id: str, stage: str, duration_s: float, error: str) -> None:
        self._finish_stage(video_id, stage, StageState.FAILED, duration_s, error)

    def _finish_stage(
        self, video_id: str, stage: str, state: StageState, duration_s: float, error: str | None
    ) -> None:
        with self._tx() as conn:
            conn.execute(
                "UPDATE stage_runs SET state = %s, duration_s = %s, error = %s, finished_at = %s"
                " WHERE video_id = %s AND stage = %s",
                (state.value, duration_s, error, time.time(), video_id, stage),
            )

    def reset_stages(self, video_id: str) -> None:
        with self._tx() as conn:
            conn.execute("DELETE FROM stage_runs WHERE video_id = %s", (video_id,))

    # ------------------------------------------------------------ commit
    def ensure_vector_index(self, kind: str, model: str, dim: int) -> None:
        """Create the HNSW index for one (kind, model, dim), once; safe from many processes at once."""
        name = _index_name(kind, model, dim)
        with self._indexes_lock:
            if name in self._indexes:
                return
            with self._tx() as conn:
                self.create_vector_index(conn, kind, model, dim)
            self._indexes.add(name)

    @staticmethod
    def create_vector_index(conn: psycopg.Connection, kind: str, model: str, dim: int) -> None:
        """The partial HNSW index of one (kind, model, dim), on `conn` (whose settings, e.g. a larger
        maintenance_work_mem for a rebuild after a bulk load, apply)."""
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_INDEX_LOCK_ID,))
        table, of_kind = _vector_table(kind)
        conn.execute(
            sql.SQL(
                "CREATE INDEX IF NOT EXISTS {name} ON {table}"
                " USING hnsw ((vector::vector({dim})) vector_cosine_ops)"
                " WHERE {of_kind} model = {model} AND dim = {dim}"
            ).format(
                name=sql.Identifier(_index_name(kind, model, dim)),
                table=sql.Identifier(table),
                of_kind=sql.SQL(of_kind).format(kind=sql.Literal(kind)),
                dim=sql.Literal(int(dim)),
                model=sql.Literal(model),
            )
        )

    def commit_video(self, bundle: CommitBundle, person_matches: dict[int, FaceMatch]) -> None:
        text = bundle.text_vectors
        if len(text.vectors) != len(bundle.scenes):
            raise ValueError("one text vector per scene is required")
        if bundle.scenes:
            # before the transaction: index DDL would otherwise hold a table lock until commit ends
            self.ensure_vector_index("text", text.model, text.dim)
            if bundle.windows is not None:
                self.ensure_vector_index(WINDOW, bundle.windows.vectors.model, bundle.windows.vectors.dim)
        with self._tx() as conn:
            video = conn.execute(
                "SELECT id, owner_id FROM videos WHERE id = %s FOR UPDATE", (bundle.video_id,)
            ).fetchone()
            if video is None:
                raise NotFoundError(f"no video {bundle.video_id!r}")
            # scenes cascade to their vectors, tags, faces and face matches
            conn.execute("DELETE FROM scenes WHERE video_id = %s", (video["id"],))
            scene_pks = self._insert_scenes(conn, video, bundle)
            self._insert_faces(conn, video, bundle, scene_pks, person_matches)
            conn.execute(
                "UPDATE videos SET state = %s, error = NULL, language = %s, scene_count = %s, updated_at = %s"
                " WHERE id = %s",
                (VideoState.INDEXED.value, bundle.language, len(bundle.scenes), time.time(), video["id"]),
            )
        with self._vocabulary_lock:  # this process's searches see the new words at once
            self._vocabulary.pop(video["owner_id"], None)

    @staticmethod
    def _returning(cur: psycopg.Cursor) -> list[int]:
        """The pk each statement of an executemany(returning=True) produced, in order."""
        pks = []
        while True:
            pks.append(int(cur.fetchone()["pk"]))
            if not cur.nextset():
                return pks

    def _insert_scenes(self, conn: psycopg.Connection, video: dict, bundle: CommitBundle) -> dict[int, int]:
        if not bundle.scenes:
            return {}
        text = bundle.text_vectors
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO scenes (id, video_id, owner_id, idx, start_s, end_s, transcript, words,"
                " ocr_text, tags_text, thumbnail_key, sidecar_key)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING pk",
                [
                    (
                        f"{video['id']}-{d.index:04d}",
                        video["id"],
                        video["owner_id"],
                        d.index,
                        d.start_s,
                        d.end_s,
                        d.transcript,
                        json.dumps([w.model_dump() for w in d.words]),
                        d.ocr_text,
                        " ".join(t.label for t in d.tags),
                        d.thumbnail_key,
                        d.sidecar_key,
                    )
                    for d in bundle.scenes
                ],
                returning=True,
            )
            pks = self._returning(cur)
            cur.executemany(
                "INSERT INTO scene_vectors (scene_pk, kind, model, dim, vector)"
                " VALUES (%s, 'text', %s, %s, %b)",
                [(pk, text.model, text.dim, _vector(v)) for pk, v in zip(pks, text.vectors, strict=True)],
            )
            if bundle.windows is not None:
                windows = bundle.windows.vectors
                pk_of = {d.index: pk for d, pk in zip(bundle.scenes, pks, strict=True)}
                cur.executemany(
                    "INSERT INTO scene_windows (scene_pk, part, model, dim, vector)"
                    " VALUES (%s, %s, %s, %s, %b)",
                    [
                        (pk_of[index], part, windows.model, windows.dim, _vector(v))
                        for part, (index, v) in enumerate(
                            zip(bundle.windows.scenes, windows.vectors, strict=True)
                        )
                    ],
                )
            # last tag wins when a label repeats, as INSERT OR REPLACE does in SQLite
            cur.executemany(
                "INSERT INTO scene_tags (scene_pk, label, score, source) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (scene_pk, label)"
                " DO UPDATE SET score = excluded.score, source = excluded.source",
                [
                    (pk, t.label, t.score, t.source)
                    for pk, d in zip(pks, bundle.scenes, strict=True)
                    for t in d.tags
                ],
            )
            cur.executemany(
                "INSERT INTO label_vectors (label, model, dim, vector) VALUES (%s, %s, %s, %b)"
                " ON CONFLICT (label, model) DO NOTHING",
                [
                    (label, text.model, int(np.shape(v)[0]), _vector(v))
                    for label, v in bundle.label_vectors.items()
                ],
            )
        return {d.index: pk for d, pk in zip(bundle.scenes, pks, strict=True)}

    def _insert_faces(
        self,
        conn: psycopg.Connection,
        video: dict,
        bundle: CommitBundle,
        scene_pks: dict[int, int],
        person_matches: dict[int, FaceMatch],
    ) -> None:
        if not bundle.faces:
            return
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO faces (scene_pk, video_id, owner_id, t_s, box, score, model, embedding)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %b) RETURNING pk",
                [
                    (
                        scene_pks[f.scene_index],
                        video["id"],
                        video["owner_id"],
                        f.t_s,
                        f.box.model_dump_json(),
                        f.score,
                        f.model,
                        _vector(f.embedding),
                    )
                    for f in bundle.faces
                ],
                returning=True,
            )
            face_pks = self._returning(cur)
            cur.executemany(
                "INSERT INTO face_matches (face_pk, person_id, distance, possible) VALUES (%s, %s, %s, %s)",
                [
                    (face_pks[i], match.person_id, match.distance, match.possible)
                    for i, match in person_matches.items()
                ],
            )

    # ------------------------------------------------------------ scenes
    _NAMES_SQL = (
        '(SELECT array_agg(DISTINCT p.name COLLATE "C" ORDER BY p.name COLLATE "C") FROM faces f'
        " JOIN face_matches m ON m.face_pk = f.pk JOIN people p ON p.id = m.person_id"
        " WHERE f.scene_pk = s.pk AND {})"
    )
    _SCENE_SQL = (
        f"SELECT s.*, {_NAMES_SQL.format(SURE_MATCH)} AS people_names,"
        f" {_NAMES_SQL.format(POSSIBLE_MATCH)} AS possible_names FROM scenes s"
    )

    def scenes_by_pk(self, scene_pks: Sequence[int]) -> dict[int, Scene]:
        if not scene_pks:
            return {}
        rows = self._all(f"{self._SCENE_SQL} WHERE s.pk = ANY(%s)", ([int(pk) for pk in scene_pks],))
        tags = self._tags_for([r["pk"] for r in rows])
        return {r["pk"]: self._scene(r, tags.get(r["pk"], [])) for r in rows}

    def list_scenes(self, video_id: str) -> list[Scene]:
        rows = self._all(f"{self._SCENE_SQL} WHERE s.video_id = %s ORDER BY s.idx", (video_id,))
        tags = self._tags_for([r["pk"] for r in rows])
        return [self._scene(r, tags.get(r["pk"], [])) for r in rows]

    def scene_count(self, owner_id: str) -> int:
        return int(self._one("SELECT count(*) AS n FROM scenes WHERE owner_id = %s", (owner_id,))["n"])

    def _tags_for(self, scene_pks: Sequence[int]) -> dict[int, list[Tag]]:
        out: dict[int, list[Tag]] = {}
        if not scene_pks:
            return out
        rows = self._all(
            'SELECT * FROM scene_tags WHERE scene_pk = ANY(%s) ORDER BY score DESC, label COLLATE "C"',
            (list(scene_pks),),
        )
        for row in rows:
            out.setdefault(row["scene_pk"], []).append(
                Tag(label=row["label"], score=row["score"], source=row["source"])
            )
        return out

    @staticmethod
    def _scene(row: dict, tags: list[Tag]) -> Scene:
        return Scene(
            id=row["id"],
            video_id=row["video_id"],
            index=row["idx"],
            start_s=row["start_s"],
            end_s=row["end_s"],
            transcript=row["transcript"],
            words=[Word(**w) for w in row["words"]],
            ocr_text=row["ocr_text"],
            tags=tags,
            people=list(row["people_names"] or []),
            possible_people=only_possible(row["possible_names"] or [], row["people_names"] or []),
            thumbnail_key=row["thumbnail_key"],
            sidecar_key=row["sidecar_key"],
        )

    # ------------------------------------------------------------ retrieval channels
    @staticmethod
    def _filter_sql(flt: SceneFilter) -> tuple[str, list[Any]]:
        """WHERE conditions on scenes `s` and videos `v` for a filter (same semantics as sqlite.py)."""
        conds, params = ["s.owner_id = %s"], [flt.owner_id]
        if flt.video_ids:
            conds.append("s.video_id = ANY(%s)")
            params.append(list(flt.video_ids))
        if flt.created_from is not None:
            conds.append("v.created_at >= %s")
            params.append(flt.created_from)
        if flt.created_to is not None:
            conds.append("v.created_at <= %s")
            params.append(flt.created_to)
        for person_id in flt.person_ids:
            conds.append(
                "EXISTS (SELECT 1 FROM faces f JOIN face_matches m ON m.face_pk = f.pk"
                f" WHERE f.scene_pk = s.pk AND m.person_id = %s AND {LIVE_MATCH})"
            )
            params.append(person_id)
        return " AND ".join(conds), params

    def full_text(
        self, flt: SceneFilter, terms: Sequence[str], phrases: Sequence[str], limit: int
    ) -> list[ScoredScene]:
        # PostgreSQL refuses NUL in any text value; other control characters are spaces to it anyway
        terms = [t for t in map(strip_controls, terms) if t.strip()]
        phrases = [p for p in map(strip_controls, phrases) if p.strip()]
        if not terms and not phrases:
            return []
        optional = " || ".join("heimdex_term_query(%s)" for _ in terms)
        required = " && ".join("heimdex_phrase_query(%s)" for _ in phrases)
        # Phrases must all match; loose terms only add to the rank (SQLite: `P AND (t1 OR t2 OR P)`).
        match, match_params = (required, phrases) if phrases else (optional, terms)
        rank = f"({required}) || ({optional})" if phrases and terms else match
        rank_params = [*phrases, *terms] if phrases and terms else match_params
        where, params = self._filter_sql(flt)
        rows = self._all(
            f"SELECT s.pk, ts_rank_cd('{RANK_WEIGHTS}', s.fts, {rank}, 1) AS rank"
            " FROM scenes s JOIN videos v ON v.id = s.video_id"
            f" WHERE s.fts @@ ({match}) AND {where} ORDER BY rank DESC, s.pk LIMIT %s",
            [*rank_params, *match_params, *params, limit],
        )
        return [ScoredScene(int(r["pk"]), float(r["rank"])) for r in rows]

    def scene_texts(self, scene_pks: Sequence[int]) -> dict[int, str]:
        if not scene_pks:
            return {}
        rows = self._all(
            "SELECT s.pk, s.transcript, s.ocr_text,"
            " (SELECT string_agg(t.label, ', ') FROM scene_tags t WHERE t.scene_pk = s.pk) AS labels"
            " FROM scenes s WHERE s.pk = ANY(%s)",
            (list(scene_pks),),
        )
        return {
            int(r["pk"]): "\n".join(filter(None, (r["transcript"], r["ocr_text"], r["labels"]))) for r in rows
        }

    def vocabulary(self, owner_id: str) -> Sequence[str]:
        """The owner's lexemes (folded words and their English stems). ts_stat reads every scene of
        the owner, so the list is kept VOCABULARY_TTL_S: a word committed meanwhile by another process
        is found by near-word lookups a little later (exact search finds it at once)."""
        now = time.monotonic()
        with self._vocabulary_lock:
            cached = self._vocabulary.get(owner_id)
            if cached is not None and now - cached[0] < VOCABULARY_TTL_S:
                return cached[1]
        rows = self._all(
            "SELECT word FROM ts_stat(format('SELECT fts FROM scenes WHERE owner_id = %%L', %s::text))",
            (owner_id,),
        )
        words = tuple(r["word"] for r in rows)
        with self._vocabulary_lock:
            self._vocabulary[owner_id] = (now, words)
        return words

    def term_counts(self, owner_id: str, terms: Sequence[str], cap: int) -> dict[str, int]:
        terms = list(dict.fromkeys(terms))
        clean = [strip_controls(t) for t in terms]
        wanted = [c for c in clean if c.strip()]
        rows = (
            self._all(  # one round trip for all the terms (a search pays this)
                "SELECT w.term, (SELECT count(*) FROM (SELECT 1 FROM scenes s"
                " WHERE s.fts @@ heimdex_term_query(w.term) AND s.owner_id = %s LIMIT %s) c) AS n"
                " FROM unnest(%s::text[]) AS w (term)",
                (owner_id, cap, wanted),
            )
            if wanted
            else []
        )
        found = {r["term"]: int(r["n"]) for r in rows}
        return {term: found.get(c, 0) for term, c in zip(terms, clean, strict=True)}

    def dense_text(self, flt: SceneFilter, model: str, query: np.ndarray, limit: int) -> list[ScoredScene]:
        query = _vector(query)
        dim = int(query.shape[0])
        if dim == 0 or limit <= 0:
            return []
        # Video and person filters, and small owners, keep few scenes: an exact scan of those is
        # cheap, while the graph walk would visit many other owners' scenes to find them.
        selective = bool(flt.video_ids or flt.person_ids) or self._owns_few_scenes(flt.owner_id)
        hits = [] if selective else self._dense(flt, model, query, limit, approximate=True)
        if len(hits) < limit:  # the graph walk gave up (or the filter kept few rows): be exact
            hits = self._dense(flt, model, query, limit, approximate=False)
        return hits

    def _owns_few_scenes(self, owner_id: str) -> bool:
        # Counting 5000 index entries costs ~3 ms, so a large owner is remembered for a minute; if it
        # shrank meanwhile, the graph walk comes back short and dense_text falls back to exact anyway.
        if time.monotonic() - self._large_owners.get(owner_id, -BIG_OWNER_TTL_S) < BIG_OWNER_TTL_S:
            return False
        row = self._one(  # LIMIT bounds the count's cost however many scenes the owner has
            "SELECT count(*) AS n FROM (SELECT 1 FROM scenes WHERE owner_id = %s LIMIT %s) AS few",
            (owner_id, EXACT_BELOW),
        )
        if int(row["n"]) < EXACT_BELOW:
            return True
        self._large_owners[owner_id] = time.monotonic()
        return False

    def _dense(
        self, flt: SceneFilter, model: str, query: np.ndarray, limit: int, approximate: bool
    ) -> list[ScoredScene]:
        """The best scenes by their best vector: the whole scene's, or one of its windows' (a scene
        has a few windows, so a few times `limit` of them hold the best windows of `limit` scenes)."""
        best: dict[int, ScoredScene] = {}
        for kind, rows_wanted in (("text", limit), (WINDOW, limit * WINDOWS_PER_SCENE)):
            statement, params = self.dense_sql(flt, model, query, rows_wanted, approximate, kind)
            for row in self._all(statement, params):
                pk, score = int(row["scene_pk"]), 1.0 - float(row["distance"])
                if pk not in best or score > best[pk].score:
                    best[pk] = ScoredScene(pk, score, row["part"])
        return sorted(best.values(), key=lambda s: (-s.score, s.scene_pk))[:limit]

    def dense_sql(
        self,
        flt: SceneFilter,
        model: str,
        query: np.ndarray,
        limit: int,
        approximate: bool,
        kind: str = "text",
    ) -> tuple[sql.Composed, list[Any]]:
        """The dense query over one kind of vector; public so that tests and benchmarks can EXPLAIN it."""
        dim = int(query.shape[0])
        # The cast expression matches the partial HNSW index; the plain column cannot use it: exact.
        column = "(sv.vector::vector({dim}))" if approximate else "sv.vector"
        # A tie-breaker after the distance would stop the index scan from providing the order.
        order = "distance" if approximate else "distance, sv.scene_pk"
        where, params = self._filter_sql(flt)
        table, of_kind = _vector_table(kind, "sv.")
        statement = sql.SQL(
            f"SELECT sv.scene_pk, {'sv.part' if kind == WINDOW else 'NULL::integer'} AS part,"
            f" {column} <=> %s::vector({{dim}}) AS distance"
            " FROM {table} sv JOIN scenes s ON s.pk = sv.scene_pk JOIN videos v ON v.id = s.video_id"
            f" WHERE {of_kind} sv.model = {{model}} AND sv.dim = {{dim}}"
            f" AND {where} ORDER BY {order} LIMIT %s"
        ).format(
            dim=sql.Literal(dim),
            model=sql.Literal(model),
            table=sql.Identifier(table),
            kind=sql.Literal(kind),
        )
        return statement, [_vector(query), *params, limit]

    def label_vectors(self, model: str) -> tuple[list[str], np.ndarray]:
        rows = self._all(
            'SELECT label, dim, vector FROM label_vectors WHERE model = %s ORDER BY label COLLATE "C"',
            (model,),
            binary=True,
        )
        dim = rows[0]["dim"] if rows else 0
        return [r["label"] for r in rows], _matrix([r["vector"] for r in rows], dim)

    def scenes_with_labels(
        self, flt: SceneFilter, label_weights: dict[str, float], limit: int
    ) -> list[ScoredScene]:
        if not label_weights:
            return []
        where, params = self._filter_sql(flt)
        rows = self._all(
            "SELECT s.pk, max(t.score * w.weight) AS score"
            " FROM unnest(%s::text[], %s::float8[]) AS w (label, weight)"
            " JOIN scene_tags t ON t.label = w.label JOIN scenes s ON s.pk = t.scene_pk"
            f" JOIN videos v ON v.id = s.video_id WHERE {where}"
            " GROUP BY s.pk ORDER BY score DESC, s.pk LIMIT %s",
            [list(label_weights), [float(w) for w in label_weights.values()], *params, limit],
        )
        return [ScoredScene(int(r["pk"]), float(r["score"])) for r in rows]

    _RANKED_DISTANCE = "CASE WHEN m.verdict = 'confirmed' THEN 0.0 ELSE m.distance END"  # as sqlite.py

    def scenes_with_people(self, flt: SceneFilter, limit: int) -> list[ScoredScene]:
        if not flt.person_ids:
            return []
        where, params = self._filter_sql(flt)
        rows = self._all(
            f"SELECT s.pk, min({self._RANKED_DISTANCE}) AS distance FROM scenes s"
            " JOIN videos v ON v.id = s.video_id JOIN faces f ON f.scene_pk = s.pk"
            " JOIN face_matches m ON m.face_pk = f.pk"
            f" WHERE m.person_id = ANY(%s) AND {LIVE_MATCH} AND {where}"
            ' GROUP BY s.pk ORDER BY distance, s.video_id COLLATE "C", s.idx LIMIT %s',
            [list(flt.person_ids), *params, limit],
        )
        return [ScoredScene(int(r["pk"]), 1.0 - float(r["distance"])) for r in rows]

    # ------------------------------------------------------------ people and faces
    _PERSON_SQL = (
        "SELECT p.*, (SELECT count(*) FROM person_photos ph WHERE ph.person_id = p.id) AS photo_count,"
        " (SELECT count(DISTINCT f.scene_pk) FROM face_matches m JOIN faces f ON f.pk = m.face_pk"
        f"  WHERE m.person_id = p.id AND {SURE_MATCH}) AS scene_count,"
        " (SELECT count(DISTINCT f.scene_pk) FROM face_matches m JOIN faces f ON f.pk = m.face_pk"
        f"  WHERE m.person_id = p.id AND {POSSIBLE_MATCH}) AS possible_count FROM people p"
    )

    def add_person(self, owner_id: str, name: str) -> Person:
        name = name.strip()
        if not name:
            raise ValueError("a person needs a name")
        try:
            with self._tx() as conn:
                conn.execute(
                    "INSERT INTO people (id, owner_id, name, created_at) VALUES (%s, %s, %s, %s)",
                    (new_id(), owner_id, name, time.time()),
                )
        except psycopg.errors.UniqueViolation as exc:
            raise ConflictError(f"a person named {name!r} already exists") from exc
        return self.get_person(owner_id, name)

    def get_person(self, owner_id: str, name_or_id: str) -> Person:
        row = self._one(
            f"{self._PERSON_SQL} WHERE p.owner_id = %s AND (p.id = %s OR lower(p.name) = lower(%s))",
            (owner_id, name_or_id, name_or_id.strip()),
        )
        if row is None:
            raise NotFoundError(f"no person {name_or_id!r}")
        return self._person(row)

    def list_people(self, owner_id: str) -> list[Person]:
        rows = self._all(
            f'{self._PERSON_SQL} WHERE p.owner_id = %s ORDER BY lower(p.name) COLLATE "C"', (owner_id,)
        )
        return [self._person(r) for r in rows]

    def rename_person(self, owner_id: str, person_id: str, name: str) -> Person:
        person = self.get_person(owner_id, person_id)
        try:
            with self._tx() as conn:
                conn.execute("UPDATE people SET name = %s WHERE id = %s", (name.strip(), person.id))
        except psycopg.errors.UniqueViolation as exc:
            raise ConflictError(f"a person named {name!r} already exists") from exc
        return self.get_person(owner_id, person.id)

    def delete_person(self, owner_id: str, person_id: str) -> None:
        person = self.get_person(owner_id, person_id)
        with self._tx() as conn:  # photos and face matches cascade
            conn.execute("DELETE FROM people WHERE id = %s", (person.id,))

    @staticmethod
    def _person(row: dict) -> Person:
        return Person(
            id=row["id"],
            owner_id=row["owner_id"],
            name=row["name"],
            photo_count=row["photo_count"],
            scene_count=row["scene_count"],
            possible_count=row["possible_count"],
            created_at=row["created_at"],
        )

    def add_person_photo(self, person_id: str, blob_key: str, model: str, embedding: np.ndarray) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO person_photos (person_id, blob_key, model, embedding, created_at)"
                " VALUES (%s, %s, %s, %b, %s)",
                (person_id, blob_key, model, _vector(embedding), time.time()),
            )

    def person_embeddings(self, owner_id: str, model: str) -> tuple[list[str], np.ndarray]:
        rows = self._all(
            "SELECT ph.person_id, ph.embedding FROM person_photos ph JOIN people p ON p.id = ph.person_id"
            " WHERE p.owner_id = %s AND ph.model = %s ORDER BY ph.id",
            (owner_id, model),
            binary=True,
        )
        dim = rows[0]["embedding"].dimensions() if rows else 0
        return [r["person_id"] for r in rows], _matrix([r["embedding"] for r in rows], dim)

    def face_embeddings(self, owner_id: str, model: str) -> tuple[list[int], np.ndarray]:
        rows = self._all(
            "SELECT pk, embedding FROM faces WHERE owner_id = %s AND model = %s ORDER BY pk",
            (owner_id, model),
            binary=True,
        )
        dim = rows[0]["embedding"].dimensions() if rows else 0
        return [int(r["pk"]) for r in rows], _matrix([r["embedding"] for r in rows], dim)

    def replace_person_matches(self, person_id: str, matches: Sequence[tuple[int, float, bool]]) -> None:
        with self._tx() as conn:
            conn.execute("DELETE FROM face_matches WHERE person_id = %s AND verdict IS NULL", (person_id,))
            with conn.cursor() as cur:
                cur.executemany(  # a judged match of the same face stays as the owner left it
                    "INSERT INTO face_matches (face_pk, person_id, distance, possible)"
                    " VALUES (%s, %s, %s, %s)"
                    " ON CONFLICT (face_pk, person_id) DO NOTHING",
                    [(int(pk), person_id, float(dist), bool(possible)) for pk, dist, possible in matches],
                )

    def judged_faces(self, owner_id: str) -> set[int]:
        rows = self._all(
            "SELECT m.face_pk FROM face_matches m JOIN people p ON p.id = m.person_id"
            " WHERE p.owner_id = %s AND m.verdict IS NOT NULL",
            (owner_id,),
        )
        return {int(r["face_pk"]) for r in rows}

    def person_matches(
        self, owner_id: str, person_id: str, *, possible_only: bool = False
    ) -> list[MatchView]:
        rows = self._all(
            "SELECT m.face_pk, m.distance, m.possible, m.verdict, f.t_s, s.id AS scene_id, s.idx,"
            " s.thumbnail_key, v.id AS video_id, v.filename FROM face_matches m"
            " JOIN people p ON p.id = m.person_id JOIN faces f ON f.pk = m.face_pk"
            " JOIN scenes s ON s.pk = f.scene_pk JOIN videos v ON v.id = s.video_id"
            f" WHERE p.owner_id = %s AND m.person_id = %s{' AND ' + POSSIBLE_MATCH if possible_only else ''}"
            ' ORDER BY m.distance, v.id COLLATE "C", s.idx, m.face_pk',
            (owner_id, person_id),
        )
        return [match_view(r) for r in rows]

    def set_match_verdict(self, owner_id: str, person_id: str, face_pk: int, verdict: str | None) -> None:
        check_verdict(verdict)
        with self._tx() as conn:
            cur = conn.execute(
                "UPDATE face_matches SET verdict = %s WHERE face_pk = %s AND person_id = %s"
                " AND person_id IN (SELECT id FROM people WHERE owner_id = %s)",
                (verdict, int(face_pk), person_id, owner_id),
            )
            if cur.rowcount != 1:
                raise NotFoundError(f"no face {face_pk} linked to person {person_id!r}")
