"""The server store: PostgreSQL with pgvector for vectors and tsvector/GIN for full text.

Same contract and same results as sqlite.py, for many processes and threads at once; the queries
both share are in sql.py. Here:
- one psycopg_pool.ConnectionPool per store (the API server is multi-threaded); the schema is
  Alembic's (heimdex/db/migrations, see db/postgres.py);
- dense search uses one HNSW index per (model, dimension): an HNSW index needs a fixed dimension
  while scene_vectors keeps every model in one column, so each index is a partial expression index
  `((vector::vector(DIM)) vector_cosine_ops) WHERE kind = .. AND model = .. AND dim = ..`, created
  when the model is first committed. Queries repeat the same expression and the same literal WHERE,
  which is what lets the planner prove that the partial index applies.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import psycopg
from pgvector.psycopg import register_vector
from psycopg import sql

from heimdex.db.base import Row
from heimdex.db.postgres import PostgresDatabase, open_pool, open_schema, placeholders
from heimdex.domain import TranscriptEdit
from heimdex.matching import FaceMatch
from heimdex.store.base import LIVE_MATCH, CommitBundle, CorrectedText, SceneFilter, ScoredScene, StoredFrame
from heimdex.store.sql import FACE_COLUMNS, SCENE_COLUMNS, SqlStore
from heimdex.validation import strip_controls

# HNSW candidate list per query (hnsw.ef_search, pgvector's maximum is 1000). Measured at 1M synthetic
# clustered 384-d scenes (docs/PERFORMANCE.md): recall@10 0.85 at 100, 0.93 at 400, 0.96 at 800, with
# dense p95 29 / 31 / 45 ms. 800 is what meets recall >= 0.95 there; smaller collections barely notice.
EF_SEARCH = 800
# Owners with fewer scenes than this get exact dense search: a few ms, and recall 1.
EXACT_BELOW = 5000
BIG_OWNER_TTL_S = 60.0
SMALL_OWNER_TTL_S = 5.0
VOCABULARY_OWNERS = 256  # owners whose word lists are kept (a few hundred kB each)
# Larger owners' vectors are kept in memory, up to this many bytes for all owners together, for an
# exact search in numpy. With 1,000 owners on a server, the graph walk filtered to one owner's 1-12 %
# of the vectors found 0.86-0.96 of the true top 10 in 90-180 ms (docs/PERFORMANCE.md); a matrix
# product over the owner's 120k vectors takes ~15 ms. Owners past the budget use the graph walk.
DENSE_CACHE_BYTES = 1 << 30
# ts_rank_cd weights for {D, C, B, A} = {-, tags, on-screen text, transcript}, as SQLite's bm25 weights.
RANK_WEIGHTS = "{0.1, 0.4, 0.9, 1.0}"
# Full text ranks at most this many matching scenes (plus as many holding every term): ts_rank_cd
# reads and scores each row it ranks, ~3 us a row, so a word in 100k scenes cost 342-383 ms at p95.
# Below it (every library of the tests) the ranking is exact.
RANK_POOL = 2000
_INDEX_LOCK_ID = 0x48455658  # advisory lock serialising on-demand index creation across processes


def _index_name(kind: str, model: str, dim: int) -> str:
    # model names are free text: hash them into a valid, bounded identifier
    digest = hashlib.sha1(f"{kind}\x1f{model}\x1f{dim}".encode()).hexdigest()[:16]
    return f"scene_vectors_hnsw_{digest}"


def _no_rows(dim: int) -> np.ndarray:
    return np.zeros((0, dim), dtype=np.float32)


WINDOW = "window"  # the kind of the vectors of scene windows, kept in their own table
FRAME = "frame"  # the kind of the image vectors of sampled frames, kept in their own table


WINDOWS_PER_SCENE = 4  # window rows fetched per scene wanted (a long scene has a few windows)
FRAMES_PER_SCENE = 4  # frame rows fetched per scene wanted (two tagged frames per shot, a few shots)
# The graph walk's tries: rows per scene wanted, fewer first (docs/PERFORMANCE.md, "Search by image").
FRAME_ROWS_PER_SCENE = (2, FRAMES_PER_SCENE)


class _OwnerMatrix:
    """One owner's scene and window vectors of one model, by video, and their concatenation."""

    def __init__(self) -> None:
        self.videos: dict[str, tuple[Any, ...]] = {}  # video id -> (updated_at, scene_count) loaded
        self.parts: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}  # id -> pks, windows, rows
        self.pks = np.zeros(0, dtype=np.int64)
        self.windows = np.zeros(0, dtype=np.int64)  # the window of each row, -1 for a scene's own vector
        self.matrix = np.zeros((0, 0), dtype=np.float32)  # unit rows
        self.tags: dict[str, tuple[np.ndarray, list[str], np.ndarray]] = {}  # id -> pks, labels, scores
        self.tag_pks = np.zeros(0, dtype=np.int64)
        # each tag's label as a number (np.isin over 360k label strings cost ~20 ms a search)
        self.label_codes: dict[str, int] = {}
        self.tag_labels = np.zeros(0, dtype=np.int32)
        self.tag_scores = np.zeros(0, dtype=np.float64)

    @property
    def nbytes(self) -> int:
        return int(self.matrix.nbytes + self.pks.nbytes * 2 + self.tag_pks.nbytes * 3)

    def rebuild(self) -> None:
        parts, tags = list(self.parts.values()), list(self.tags.values())
        self.pks = np.concatenate([p[0] for p in parts]) if parts else self.pks[:0]
        self.windows = np.concatenate([p[1] for p in parts]) if parts else self.windows[:0]
        self.matrix = np.vstack([p[2] for p in parts]) if parts else self.matrix[:0]
        self.tag_pks = np.concatenate([t[0] for t in tags]) if tags else self.tag_pks[:0]
        codes = self.label_codes
        self.tag_labels = np.array(
            [codes.setdefault(label, len(codes)) for t in tags for label in t[1]], dtype=np.int32
        )
        self.tag_scores = np.concatenate([t[2] for t in tags]) if tags else self.tag_scores[:0]

    def with_labels(
        self, label_weights: dict[str, float], limit: int, among: np.ndarray | None = None
    ) -> list[ScoredScene]:
        """scenes_with_labels over the owner's tags: each scene's best tag score times its label's
        weight, best first (ties by pk), in float64 as PostgreSQL computes it; with `among`, of those
        scenes (pks) only."""
        weight_of = np.zeros(len(self.label_codes), dtype=np.float64)
        wanted = [self.label_codes[label] for label in label_weights if label in self.label_codes]
        weight_of[wanted] = [label_weights[label] for label in label_weights if label in self.label_codes]
        mask = np.isin(self.tag_labels, wanted)
        if among is not None:
            mask &= np.isin(self.tag_pks, among)
        if not mask.any():
            return []
        weights = weight_of[self.tag_labels[mask]]
        scores, pks = self.tag_scores[mask] * weights, self.tag_pks[mask]
        order = np.lexsort((-scores, pks))  # by pk, best first within a pk
        first = np.ones(len(order), dtype=bool)
        first[1:] = pks[order][1:] != pks[order][:-1]
        best = order[first]
        best = best[np.lexsort((pks[best], -scores[best]))][:limit]
        return [ScoredScene(int(pks[i]), float(scores[i])) for i in best]

    def best(self, query: np.ndarray, limit: int, among: np.ndarray | None = None) -> list[ScoredScene]:
        """The `limit` scenes whose best vector is nearest the query by cosine, exactly: if the top k
        rows hold `limit` distinct scenes, no row below them can be a better scene's best. With
        `among`, only those scenes (pks) count."""
        rows = np.flatnonzero(np.isin(self.pks, among)) if among is not None else None
        pks, windows = (self.pks, self.windows) if rows is None else (self.pks[rows], self.windows[rows])
        if not len(pks) or limit <= 0:
            return []
        norm = float(np.linalg.norm(query))
        matrix = self.matrix if rows is None else self.matrix[rows]
        sims = matrix @ (query / norm if norm else query)
        k = min(len(sims), limit * (WINDOWS_PER_SCENE + 1))
        while True:
            top = np.argpartition(-sims, k - 1)[:k] if k < len(sims) else np.arange(len(sims))
            top = top[np.lexsort((pks[top], -sims[top]))]
            best: dict[int, ScoredScene] = {}
            for i in top.tolist():
                pk = int(pks[i])
                if pk not in best:
                    window = int(windows[i])
                    best[pk] = ScoredScene(pk, float(sims[i]), None if window < 0 else window)
            if len(best) >= limit or k >= len(sims):
                return list(best.values())[:limit]
            k = min(len(sims), k * 4)


def _vector_table(kind: str, alias: str = "") -> tuple[str, str]:
    """(table, SQL condition on {kind}) of a kind of vector: scene windows and frames have tables of
    their own."""
    own = {WINDOW: "scene_windows", FRAME: "frame_vectors"}
    return (own[kind], "") if kind in own else ("scene_vectors", f"{alias}kind = {{kind}} AND")


class PostgresStore(SqlStore):
    _for_update = " FOR UPDATE"  # commit holds the video row, so that a delete waits for it

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
        self.url = open_schema(url, auto_migrate)
        self.ef_search = int(ef_search)
        self.idle_transaction_timeout_ms = max(1, int(idle_transaction_timeout_s * 1000))
        self._indexes: set[str] = set()  # HNSW indexes known to exist (saves a catalog lookup per commit)
        self._indexes_lock = threading.Lock()
        self._large_owners: dict[str, float] = {}  # owner -> when it was last seen to own many scenes
        self._small_owners: dict[str, tuple[float, int]] = {}  # owner -> (when seen small, exact_below)
        self._vocabulary: dict[str, tuple[tuple[Any, ...], Sequence[str]]] = {}  # owner -> (version, words)
        self._vocabulary_lock = threading.Lock()
        # model -> (label count, labels, matrix): labels are only ever added, so a count tells if stale
        self._labels: dict[str, tuple[int, list[str], np.ndarray]] = {}
        self.exact_below = EXACT_BELOW
        self.dense_cache_bytes = DENSE_CACHE_BYTES
        self._matrices: dict[tuple[str, str, int], _OwnerMatrix] = {}  # (owner, model, dim), oldest first
        self._matrices_lock = threading.Lock()
        pool = open_pool(self.url, "heimdex", min_connections, max_connections, self._configure)
        super().__init__(PostgresDatabase(pool))

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

    def _all(self, query: Any, params: Sequence[Any] = (), binary: bool = False) -> list[Row]:
        return self.db.binary(query, params) if binary else self.db.all(query, params)

    def _vector_rows(self, query: str, params: Sequence[Any]) -> list[Row]:
        return self.db.binary(query, params)

    @staticmethod
    def _dim(rows: Sequence[Row]) -> int:
        return rows[0]["embedding"].dimensions() if rows else 0

    # ------------------------------------------------------------ commit
    def ensure_vector_index(self, kind: str, model: str, dim: int) -> None:
        """Create the HNSW index for one (kind, model, dim), once; safe from many processes at once."""
        name = _index_name(kind, model, dim)
        with self._indexes_lock:
            if name in self._indexes:
                return
            with self.db.tx() as s:
                self.create_vector_index(s.conn, kind, model, dim)
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
        if bundle.scenes:
            # before the transaction: index DDL would otherwise hold a table lock until commit ends
            self.ensure_vector_index("text", text.model, text.dim)
            if bundle.windows is not None:
                self.ensure_vector_index(WINDOW, bundle.windows.vectors.model, bundle.windows.vectors.dim)
            for frames in bundle.frames:
                if frames.scenes:
                    self.ensure_vector_index(FRAME, frames.vectors.model, frames.vectors.dim)
        with self.db.tx() as s:
            video = self._committed_video(s, bundle)
            # scenes cascade to their vectors, tags, faces and face matches
            s.execute("DELETE FROM scenes WHERE video_id = ?", (video["id"],))
            # Bulk inserts on the raw connection: executemany with RETURNING is psycopg's own.
            scene_pks = self._insert_scenes(s.conn, video, bundle)
            self._insert_faces(s.conn, video, bundle, scene_pks, person_matches)
            self._finish_commit(s, video, bundle)
        self._add_lexemes("s.video_id = ?", video["id"])
        with self._vocabulary_lock:  # this process's searches see the new words at once
            self._vocabulary.pop(video["owner_id"], None)

    def _add_lexemes(self, where: str, key: str) -> None:
        """List the words of some scenes as their owner's (owner_lexemes, see migration 0014). In a
        statement of its own after the commit, in lexeme order: two commits of one owner at once
        insert the same words, and inside their transactions, in any order, they could deadlock."""
        with self.db.tx() as s:
            s.execute(
                "INSERT INTO owner_lexemes (owner_id, lexeme) SELECT DISTINCT s.owner_id, w FROM scenes s,"
                f" unnest(tsvector_to_array(s.fts)) AS w WHERE {where} ORDER BY 1, 2 ON CONFLICT DO NOTHING",
                (key,),
            )

    def correct_scene(
        self,
        owner_id: str,
        scene_id: str,
        text: CorrectedText,
        save: TranscriptEdit | None,
        drop: Sequence[str] = (),
    ) -> None:
        super().correct_scene(owner_id, scene_id, text, save, drop)
        self._add_lexemes("s.id = ?", scene_id)
        with self._vocabulary_lock:
            self._vocabulary.pop(owner_id, None)

    def add_frame_vectors(
        self, owner_id: str, model: str, frames: Sequence[StoredFrame], vectors: np.ndarray
    ) -> int:
        if len(frames):  # before the transaction, as in commit_video
            self.ensure_vector_index(FRAME, model, int(vectors.shape[1]))
        return super().add_frame_vectors(owner_id, model, frames, vectors)

    @staticmethod
    def _returning(cur: psycopg.Cursor) -> list[int]:
        """The pk each statement of an executemany(returning=True) produced, in order."""
        pks = []
        while True:
            pks.append(int(cur.fetchone()["pk"]))
            if not cur.nextset():
                return pks

    def _insert_scenes(self, conn: psycopg.Connection, video: Row, bundle: CommitBundle) -> dict[int, int]:
        if not bundle.scenes:
            return {}
        text, vector = bundle.text_vectors, self.db.vector
        with conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO scenes ({SCENE_COLUMNS}) VALUES ({', '.join(['%s'] * 13)}) RETURNING pk",
                [self._scene_row(video, d) for d in bundle.scenes],
                returning=True,
            )
            pks = self._returning(cur)
            cur.executemany(
                "INSERT INTO scene_vectors (scene_pk, kind, model, dim, vector)"
                " VALUES (%s, 'text', %s, %s, %b)",
                [(pk, text.model, text.dim, vector(v)) for pk, v in zip(pks, text.vectors, strict=True)],
            )
            if bundle.windows is not None:
                windows = bundle.windows.vectors
                pk_of = {d.index: pk for d, pk in zip(bundle.scenes, pks, strict=True)}
                cur.executemany(
                    "INSERT INTO scene_windows (scene_pk, part, model, dim, vector)"
                    " VALUES (%s, %s, %s, %s, %b)",
                    [
                        (pk_of[index], part, windows.model, windows.dim, vector(v))
                        for part, (index, v) in enumerate(
                            zip(bundle.windows.scenes, windows.vectors, strict=True)
                        )
                    ],
                )
            cur.executemany(
                "INSERT INTO frame_vectors (scene_pk, part, t_s, model, dim, vector)"
                " VALUES (%s, %s, %s, %s, %s, %b)",
                self._frame_rows(bundle, {d.index: pk for d, pk in zip(bundle.scenes, pks, strict=True)}),
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
                    (label, text.model, int(np.shape(v)[0]), vector(v))
                    for label, v in bundle.label_vectors.items()
                ],
            )
        return {d.index: pk for d, pk in zip(bundle.scenes, pks, strict=True)}

    def _insert_faces(
        self,
        conn: psycopg.Connection,
        video: Row,
        bundle: CommitBundle,
        scene_pks: dict[int, int],
        person_matches: dict[int, FaceMatch],
    ) -> None:
        if not bundle.faces:
            return
        with conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO faces ({FACE_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %b, %s, %s, %s)"
                " RETURNING pk",
                [self._face_row(video, scene_pks[f.scene_index], f) for f in bundle.faces],
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

    # ------------------------------------------------------------ retrieval channels
    def full_text(
        self, flt: SceneFilter, terms: Sequence[str], phrases: Sequence[str], limit: int
    ) -> list[ScoredScene]:
        # PostgreSQL refuses NUL in any text value; other control characters are spaces to it anyway
        terms = [t for t in map(strip_controls, terms) if t.strip()]
        phrases = [p for p in map(strip_controls, phrases) if p.strip()]
        if not terms and not phrases:
            return []
        optional = " || ".join(map(_term_query, terms))
        every = " && ".join(map(_term_query, terms))
        required = " && ".join("heimdex_phrase_query(?)" for _ in phrases)
        # Phrases must all match; loose terms only add to the rank (SQLite: `P AND (t1 OR t2 OR P)`).
        match, match_params = (required, phrases) if phrases else (optional, terms)
        rank = f"({required}) || ({optional})" if phrases and terms else match
        rank_params = [*phrases, *terms] if phrases and terms else match_params
        # The scenes holding everything asked (all phrases and all terms): the best ranked, as a rule.
        strong = f"({required}) && ({every})" if phrases and terms else (required or every)
        strong_params = [*phrases, *terms]
        where, params = self._filter_sql(flt)

        # Bounded ranking: the first RANK_POOL matching scenes of the filter, in the order the index
        # gives them; when there are more, also up to RANK_POOL of those holding every term and
        # phrase. Only these are ranked. With RANK_POOL matches or fewer this is the exact ranking.
        def matching(query: str, only_if: str = "") -> str:
            return (
                "SELECT s.pk, s.fts FROM scenes s JOIN videos v ON v.id = s.video_id"
                f" WHERE s.fts @@ ({query}) AND {where}{only_if} LIMIT {RANK_POOL}"
            )

        pools, values = [f"pool AS MATERIALIZED ({matching(match)})"], [*match_params, *params]
        if strong != match:  # evaluated only when the pool is full (an InitPlan's one-time filter)
            full = f" AND (SELECT count(*) FROM pool) >= {RANK_POOL}"
            pools.append(f"strong AS MATERIALIZED ({matching(strong, full)})")
            values += [*strong_params, *params]
        candidates = " UNION ALL ".join(f"SELECT pk, fts FROM {p.split()[0]}" for p in pools)
        with self.db.tx() as s:
            # With a LIMIT the planner expects the matches early in a sequential scan of all scenes
            # (1 s at 100k for a word in 12k of the owner's); the indexes (GIN, owner) find them.
            s.execute("SET LOCAL enable_seqscan = off")
            rows = s.all(
                f"WITH {', '.join(pools)}"
                f" SELECT pk, ts_rank_cd('{RANK_WEIGHTS}', fts, {rank}, 1) AS rank"
                f" FROM (SELECT DISTINCT ON (pk) pk, fts FROM ({candidates}) c ORDER BY pk) c"
                " ORDER BY rank DESC, pk LIMIT ?",
                [*values, *rank_params, limit],
            )
        return [ScoredScene(int(r["pk"]), float(r["rank"])) for r in rows]

    def vocabulary(self, owner_id: str) -> Sequence[str]:
        """The owner's lexemes (folded words and their English stems), and those of videos since
        deleted: owner_lexemes, filled at commit (ts_stat over the owner's scenes took 40-70 ms for 900
        on a loaded machine). Kept until the owner's videos change: any commit or delete, in any
        process, changes their count, latest updated_at or scene total, read on each call through
        videos_by_owner (under a millisecond)."""
        version = self._owner_version(owner_id)
        with self._vocabulary_lock:
            cached = self._vocabulary.get(owner_id)
            if cached is not None and cached[0] == version:
                return cached[1]
        # one array, not a row per word: 9k dict rows cost more than the query
        row = self.db.one(
            "SELECT array_agg(lexeme) AS words FROM owner_lexemes WHERE owner_id = ?", (owner_id,)
        )
        words = tuple(row["words"] or ())
        with self._vocabulary_lock:
            self._vocabulary.pop(owner_id, None)
            self._vocabulary[owner_id] = (version, words)  # the newest last
            while len(self._vocabulary) > VOCABULARY_OWNERS:
                self._vocabulary.pop(next(iter(self._vocabulary)))
        return words

    def _owner_version(self, owner_id: str) -> tuple[Any, ...]:
        row = self.db.one(
            "SELECT count(*) AS n, max(updated_at) AS latest, sum(scene_count) AS scenes"
            " FROM videos WHERE owner_id = ?",
            (owner_id,),
        )
        return (row["n"], row["latest"], row["scenes"])

    def term_counts(self, owner_id: str, terms: Sequence[str], cap: int) -> dict[str, int]:
        terms = list(dict.fromkeys(terms))
        clean = [strip_controls(t) for t in terms]
        wanted = [c for c in clean if c.strip()]
        rows = (
            self._all(  # one round trip for all the terms (a search pays this)
                "SELECT w.term, (SELECT count(*) FROM (SELECT 1 FROM scenes s WHERE s.fts @@ (CASE WHEN"
                " strpos(w.term, ' ') > 0 THEN heimdex_phrase_query(w.term) ELSE heimdex_term_query(w.term)"
                " END) AND s.owner_id = ? LIMIT ?) c) AS n"
                " FROM unnest(?::text[]) AS w (term)",
                (owner_id, cap, wanted),
            )
            if wanted
            else []
        )
        found = {r["term"]: int(r["n"]) for r in rows}
        return {term: found.get(c, 0) for term, c in zip(terms, clean, strict=True)}

    def dense_text(self, flt: SceneFilter, model: str, query: np.ndarray, limit: int) -> list[ScoredScene]:
        query = self.db.vector(query)
        dim = int(query.shape[0])
        if dim == 0 or limit <= 0:
            return []
        # Video and person filters, and small owners, keep few scenes: an exact scan of those is
        # cheap, while the graph walk would visit many other owners' scenes to find them.
        few = self._owns_few_scenes(flt.owner_id)
        if not few and not flt.video_ids and flt.created_from is None and flt.created_to is None:
            # A large owner's vectors in memory, exact; with people named, only the scenes they are in
            # (the exact scan in SQL read every scene of the owner to test the filter on each).
            matrix = self._owner_matrix(flt.owner_id, model, dim)
            if matrix is not None:
                among = self._scenes_of_people(flt) if flt.person_ids else None
                return matrix.best(query, limit, among)
        selective = bool(flt.video_ids or flt.person_ids) or few
        hits = [] if selective else self._dense(flt, model, query, limit, approximate=True)
        if len(hits) < limit:  # the graph walk gave up (or the filter kept few rows): be exact
            hits = self._dense(flt, model, query, limit, approximate=False)
        return hits

    def _scenes_of_people(self, flt: SceneFilter) -> np.ndarray:
        """The pks of the owner's scenes where every person of the filter is seen (a live match), as
        _filter_sql's person conditions select them."""
        people = list(flt.person_ids)
        rows = self.db.all(
            "SELECT f.scene_pk FROM faces f JOIN face_matches m ON m.face_pk = f.pk"
            f" WHERE f.owner_id = ? AND m.person_id = ANY(?) AND {LIVE_MATCH}"
            " GROUP BY f.scene_pk HAVING count(DISTINCT m.person_id) = ?",
            (flt.owner_id, people, len(people)),
        )
        return np.array([r["scene_pk"] for r in rows], dtype=np.int64)

    def _owner_matrix(self, owner_id: str, model: str, dim: int) -> _OwnerMatrix | None:
        """The owner's vectors in memory, brought up to date first: the videos whose (updated_at,
        scene_count) changed since they were read (every commit and delete changes them, in any
        process) are read again, and deleted ones dropped. None past the memory budget."""
        key = (owner_id, model, dim)
        videos = {
            r["id"]: (r["updated_at"], r["scene_count"])
            for r in self.db.all(
                "SELECT id, updated_at, scene_count FROM videos WHERE owner_id = ? AND scene_count > 0",
                (owner_id,),
            )
        }
        with self._matrices_lock:
            cached = self._matrices.pop(key, None) or _OwnerMatrix()
            others = sum(m.nbytes for m in self._matrices.values())
            changed = [v for v, version in videos.items() if cached.videos.get(v) != version]
            gone = [v for v in cached.videos if v not in videos]
            wanted = sum(int(n) for _, n in videos.values()) * (dim * 4 + 16)  # scene vectors, at least
            if wanted > self.dense_cache_bytes:
                return None
            while self._matrices and others + wanted > self.dense_cache_bytes:  # the oldest make room
                others -= self._matrices.pop(next(iter(self._matrices))).nbytes
            if changed or gone:
                for v in gone:
                    cached.videos.pop(v, None)
                    cached.parts.pop(v, None)
                    cached.tags.pop(v, None)
                for v, part in self._read_vectors(changed, model, dim).items():
                    cached.parts[v] = part
                for v, tags in self._read_tags(changed).items():
                    cached.tags[v] = tags
                for v in changed:
                    cached.videos[v] = videos[v]
                    cached.parts.setdefault(v, (np.zeros(0, np.int64), np.zeros(0, np.int64), _no_rows(dim)))
                    cached.tags.setdefault(v, (np.zeros(0, np.int64), [], np.zeros(0, np.float64)))
                cached.rebuild()
            self._matrices[key] = cached  # the newest last
            return cached

    def _read_vectors(
        self, video_ids: list[str], model: str, dim: int
    ) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Scene and window vectors of some videos, as unit rows: video id -> (pks, windows, rows)."""
        out: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        for start in range(0, len(video_ids), 200):
            rows = self.db.binary(
                "SELECT s.video_id, s.pk, -1 AS part, sv.vector FROM scenes s"
                " JOIN scene_vectors sv ON sv.scene_pk = s.pk"
                " WHERE s.video_id = ANY(?) AND sv.kind = 'text' AND sv.model = ? AND sv.dim = ?"
                " UNION ALL SELECT s.video_id, s.pk, w.part, w.vector FROM scenes s"
                " JOIN scene_windows w ON w.scene_pk = s.pk"
                " WHERE s.video_id = ANY(?) AND w.model = ? AND w.dim = ?",
                (video_ids[start : start + 200], model, dim) * 2,
            )
            by_video: dict[str, list[Row]] = {}
            for r in rows:
                by_video.setdefault(r["video_id"], []).append(r)
            for video_id, mine in by_video.items():
                matrix = np.stack([r["vector"].to_numpy() for r in mine]).astype(np.float32, copy=False)
                norms = np.linalg.norm(matrix, axis=1, keepdims=True)
                out[video_id] = (
                    np.array([r["pk"] for r in mine], dtype=np.int64),
                    np.array([r["part"] for r in mine], dtype=np.int64),
                    matrix / np.where(norms > 0, norms, 1.0),
                )
        return out

    def _read_tags(self, video_ids: list[str]) -> dict[str, tuple[np.ndarray, list[str], np.ndarray]]:
        out: dict[str, tuple[np.ndarray, list[str], np.ndarray]] = {}
        for start in range(0, len(video_ids), 200):
            by_video: dict[str, list[Row]] = {}
            for r in self.db.all(
                "SELECT s.video_id, t.scene_pk, t.label, t.score FROM scenes s"
                " JOIN scene_tags t ON t.scene_pk = s.pk WHERE s.video_id = ANY(?)",
                (video_ids[start : start + 200],),
            ):
                by_video.setdefault(r["video_id"], []).append(r)
            for video_id, mine in by_video.items():
                out[video_id] = (
                    np.array([r["scene_pk"] for r in mine], dtype=np.int64),
                    [r["label"] for r in mine],
                    np.array([r["score"] for r in mine], dtype=np.float64),
                )
        return out

    def _owns_few_scenes(self, owner_id: str) -> bool:
        # Counting 5000 index entries costs ~3 ms, so a large owner is remembered for a minute; if it
        # shrank meanwhile, the graph walk comes back short and dense_text falls back to exact anyway.
        # A small owner is remembered for a few seconds, with the limit it was measured against: a
        # search asks twice (dense, tags). Either answer only picks a path; both give the same hits.
        now = time.monotonic()
        if now - self._large_owners.get(owner_id, -BIG_OWNER_TTL_S) < BIG_OWNER_TTL_S:
            return False
        seen, below = self._small_owners.get(owner_id, (-SMALL_OWNER_TTL_S, None))
        if now - seen < SMALL_OWNER_TTL_S and below == self.exact_below:
            return True
        row = self.db.one(  # LIMIT bounds the count's cost however many scenes the owner has
            "SELECT count(*) AS n FROM (SELECT 1 FROM scenes WHERE owner_id = ? LIMIT ?) AS few",
            (owner_id, self.exact_below),
        )
        if int(row["n"]) < self.exact_below:
            if len(self._small_owners) > 4096:  # old entries are useless: start again
                self._small_owners.clear()
            self._small_owners[owner_id] = (now, self.exact_below)
            return True
        self._large_owners[owner_id] = now
        return False

    def image_search(self, flt: SceneFilter, model: str, query: np.ndarray, limit: int) -> list[ScoredScene]:
        query = self.db.vector(query)
        if query.shape[0] == 0 or limit <= 0:
            return []
        # As dense_text: the HNSW walk for a large owner, exact when the filter or the owner is small.
        selective = bool(flt.video_ids or flt.person_ids) or self._owns_few_scenes(flt.owner_id)
        hits: list[ScoredScene] = []
        # Each candidate row costs a heap page and a distance: ask for two frames a scene first (the
        # tagger's two a shot), and for more only when those rows hold too few scenes. If the first
        # k rows hold `limit` scenes, no scene outside them can rank above those.
        for per_scene in () if selective else FRAME_ROWS_PER_SCENE:
            kinds = ((FRAME, per_scene),)
            hits = self._dense(flt, model, query, limit, approximate=True, kinds=kinds)
            if len(hits) >= limit:
                return hits
        return self._dense(flt, model, query, limit, approximate=False, kinds=((FRAME, FRAMES_PER_SCENE),))

    def _dense(
        self,
        flt: SceneFilter,
        model: str,
        query: np.ndarray,
        limit: int,
        approximate: bool,
        kinds: Sequence[tuple[str, int]] = (("text", 1), (WINDOW, WINDOWS_PER_SCENE)),
    ) -> list[ScoredScene]:
        """The best scenes by their best vector of the kinds: for text the whole scene's, or one of its
        windows' (a scene has a few windows or frames, so a few times `limit` of them hold the best of
        `limit` scenes)."""
        best: dict[int, ScoredScene] = {}
        parts, values = [], []
        for kind, per_scene in kinds:  # one statement for all kinds: one round trip
            statement, params = self.dense_sql(flt, model, query, limit * per_scene, approximate, kind)
            parts.append(sql.SQL("SELECT {kind} AS kind, q.* FROM ({q}) q").format(kind=kind, q=statement))
            values += params
        for row in self._all(sql.SQL(" UNION ALL ").join(parts), values):
            pk, score = int(row["scene_pk"]), 1.0 - float(row["distance"])
            if pk not in best or score > best[pk].score:
                best[pk] = ScoredScene(pk, score, row["part"] if row["kind"] == WINDOW else None)
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
        where, params = self._filter_sql(flt)
        table, of_kind = _vector_table(kind, "sv.")
        part = "NULL::integer" if kind == "text" else "sv.part"
        if approximate:
            # The cast expression matches the partial HNSW index (the plain column cannot use it), and a
            # tie-breaker after the distance would stop the index scan from providing the order.
            template = (
                f"SELECT sv.scene_pk, {part} AS part, (sv.vector::vector({{dim}})) <=> ?::vector({{dim}})"
                " AS distance FROM {table} sv JOIN scenes s ON s.pk = sv.scene_pk"
                f" JOIN videos v ON v.id = s.video_id WHERE {of_kind} sv.model = {{model}}"
                f" AND sv.dim = {{dim}} AND {where} ORDER BY distance LIMIT ?"
            )
            values = [self.db.vector(query), *params, limit]
        else:
            # Exact: the filter's scenes first (the owner's index), then each one's vectors by primary
            # key. OFFSET 0 keeps both subqueries apart: joined freely, the planner read every window of
            # every owner (a sequential scan, 69 ms at 100k scenes) to hash-join a few hundred.
            template = (
                "SELECT m.pk AS scene_pk, w.part, w.distance FROM (SELECT s.pk FROM scenes s"
                f" JOIN videos v ON v.id = s.video_id WHERE {where} OFFSET 0) m"
                f" CROSS JOIN LATERAL (SELECT {part} AS part, sv.vector <=> ?::vector({{dim}}) AS distance"
                f" FROM {{table}} sv WHERE sv.scene_pk = m.pk AND {of_kind} sv.model = {{model}}"
                " AND sv.dim = {dim} OFFSET 0) w ORDER BY w.distance, m.pk LIMIT ?"
            )
            values = [*params, self.db.vector(query), limit]
        statement = sql.SQL(placeholders(template)).format(
            dim=sql.Literal(dim),
            model=sql.Literal(model),
            table=sql.Identifier(table),
            kind=sql.Literal(kind),
        )
        return statement, values

    def label_vectors(self, model: str) -> tuple[list[str], np.ndarray]:
        """Kept in memory, as SQLite does: reading ~1000 label vectors back cost ~27 ms a search. Labels
        are only ever added (never changed or removed), so their count says when the copy is stale."""
        row = self.db.one("SELECT count(*) AS n FROM label_vectors WHERE model = ?", (model,))
        count = int(row["n"])
        cached = self._labels.get(model)
        if cached is not None and cached[0] == count:
            return cached[1], cached[2]
        names, matrix = super().label_vectors(model)
        self._labels[model] = (len(names), names, matrix)
        return names, matrix

    def scenes_with_labels(
        self, flt: SceneFilter, label_weights: dict[str, float], limit: int
    ) -> list[ScoredScene]:
        if not label_weights:
            return []
        if not flt.video_ids and flt.created_from is None and flt.created_to is None:
            with self._matrices_lock:
                cached = next((key for key in self._matrices if key[0] == flt.owner_id), None)
            # a large owner whose vectors dense_text keeps: its tags are there too (brought up to date)
            matrix = self._owner_matrix(*cached) if cached else None
            if matrix is not None:
                among = self._scenes_of_people(flt) if flt.person_ids else None
                return matrix.with_labels(label_weights, limit, among)
        where, params = self._filter_sql(flt)
        labels, weights = list(label_weights), [float(w) for w in label_weights.values()]
        if self._owns_few_scenes(flt.owner_id):
            # From the owner's scenes to their tags (a few thousand rows): from the labels, 24 of them
            # reach ~72k tags of all owners at 1M scenes, each joined to its scene only to be dropped.
            rows = self._all(
                "SELECT m.pk, max(t.score * w.weight) AS score FROM (SELECT s.pk FROM scenes s"
                f" JOIN videos v ON v.id = s.video_id WHERE {where} OFFSET 0) m"
                " JOIN scene_tags t ON t.scene_pk = m.pk"
                " JOIN unnest(?::text[], ?::float8[]) AS w (label, weight) ON w.label = t.label"
                " GROUP BY m.pk ORDER BY score DESC, m.pk LIMIT ?",
                [*params, labels, weights, limit],
            )
            return [ScoredScene(int(r["pk"]), float(r["score"])) for r in rows]
        rows = self._all(
            "SELECT s.pk, max(t.score * w.weight) AS score"
            " FROM unnest(?::text[], ?::float8[]) AS w (label, weight)"
            " JOIN scene_tags t ON t.label = w.label JOIN scenes s ON s.pk = t.scene_pk"
            f" JOIN videos v ON v.id = s.video_id WHERE {where}"
            " GROUP BY s.pk ORDER BY score DESC, s.pk LIMIT ?",
            [labels, weights, *params, limit],
        )
        return [ScoredScene(int(r["pk"]), float(r["score"])) for r in rows]


def _term_query(term: str) -> str:
    """A loose term's tsquery: two words (a compound the library writes apart, search/spelling.py) are
    a phrase, as in SQLite's FTS5, where every term is quoted."""
    return "heimdex_phrase_query(?)" if " " in term.strip() else "heimdex_term_query(?)"
