"""The application: what the CLI and the API call. It wires settings to the store, blobs, models,
pipeline and search, and holds the few rules that span them (de-duplication, enrolment)."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from heimdex import corrections, faceclusters, subtitles
from heimdex.blobs import BlobStore, open_blob_store
from heimdex.blobs.keys import original_key_template, person_photo_key, person_prefix, video_prefix
from heimdex.domain import (
    ClusterFace,
    FaceCluster,
    Person,
    Scene,
    StageRecord,
    TranscriptEdit,
    Video,
    VideoState,
    Word,
)
from heimdex.errors import ConflictError, HeimdexError, InvalidMediaError, InvalidRequestError, NotFoundError
from heimdex.korean import index_terms
from heimdex.logging import ensure_logging, get_logger, register_secrets
from heimdex.matching import match_faces
from heimdex.ml.base import IMAGE_VECTOR_MODEL
from heimdex.ml.registry import Models
from heimdex.pipeline.context import Artifacts
from heimdex.pipeline.events import EventFn
from heimdex.pipeline.stages.text import embed_scenes
from heimdex.private_files import private_dir
from heimdex.search.clip_coverage import ClipCoverage, clip_coverage
from heimdex.search.engine import SearchEngine, SearchRequest, SearchResult
from heimdex.settings import Settings
from heimdex.store import MatchView, Store, open_store
from heimdex.store.base import CorrectedText, VectorSet

if TYPE_CHECKING:
    from heimdex.media.clips import Clip
    from heimdex.ml.clip import OnnxClipEmbedder
    from heimdex.pipeline.runner import PipelineRunner

log = get_logger(__name__)

LOCAL_OWNER = "local"  # the single user of the embedded CLI
# An owner's CLIP coverage (which model's frame vectors serve their searches) is counted again at most
# this often: counting reads every frame row of theirs. This process's indexing and re-embedding
# count again at once; another process's show within this time.
COVERAGE_TTL_S = 5.0
REEMBED_LEASE = "reembed"  # the store's lease one process at a time re-embeds the library under
VIDEO_SUFFIXES = frozenset(
    ".mp4 .m4v .mov .mkv .webm .avi .wmv .flv .mpg .mpeg .ts .mts .m2ts .3gp .ogv .vob .mxf .asf".split()
)


@dataclass(frozen=True)
class AddedVideo:
    video: Video
    is_new: bool


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def expand_inputs(paths: Iterable[Path]) -> Iterator[Path]:
    """Files as given; folders walked recursively for video files, in a stable order."""
    for path in paths:
        if path.is_dir():
            yield from sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES
            )
        else:
            yield path


@functools.lru_cache(maxsize=1024)
def _clip_text_vector(clip: OnnxClipEmbedder, text: str) -> np.ndarray:
    """A query's CLIP text vector, remembered (the web app runs a query again for every page)."""
    vector = clip.embed_texts([text])[0]
    vector.flags.writeable = False  # shared by every search of the same words
    return vector


def _label(photo: Path | bytes) -> str:
    return "photo" if isinstance(photo, bytes) else str(photo)


class Heimdex:
    def __init__(
        self,
        settings: Settings | None = None,
        *,
        store: Store | None = None,
        blobs: BlobStore | None = None,
        models: Models | None = None,
    ) -> None:
        self.settings = settings or Settings()
        ensure_logging(self.settings.log_level, self.settings.log_json)
        register_secrets(self.settings.secret_values())
        private_dir(self.settings.home)  # 0700: the database, blobs and secret key live here
        self.store = store or open_store(
            self.settings.resolved_database_url,
            hnsw_ef_search=self.settings.hnsw_ef_search,
            idle_transaction_timeout_s=self.settings.queue_lease_s,
        )
        self.blobs = blobs or open_blob_store(self.settings.resolved_storage_url, self.settings)
        self.models = models or Models(self.settings)
        self._coverage: dict[str, tuple[float, ClipCoverage]] = {}  # owner -> (when counted, coverage)
        self.search_engine = SearchEngine(
            self.store,
            lambda: self.models.text,
            self.thumbnail_ref,
            cache_dir=self.settings.model_cache_dir,
            clip_query=self._clip_query,
        )

    def close(self) -> None:
        self.store.close()

    # ------------------------------------------------------------ videos
    def add_file(self, path: Path, owner_id: str = LOCAL_OWNER, filename: str | None = None) -> AddedVideo:
        """Register a local file as a video. The same content twice is the same video."""
        if not path.is_file():
            raise InvalidMediaError(f"{path}: no such file")
        digest = sha256_of(path)
        existing = self.store.find_video_by_hash(owner_id, digest)
        if existing is not None:
            return AddedVideo(existing, is_new=False)
        suffix = path.suffix.lower()[:10] if path.suffix else ".bin"
        video = self.store.add_video(
            owner_id,
            filename or path.name,
            original_key_template(suffix),
            path.stat().st_size,
            digest,
        )
        self._store_original(path, video.original_key)
        return AddedVideo(video, is_new=True)

    def add_uploaded(self, key: str, owner_id: str, filename: str) -> Video:
        """Register a file a browser uploaded straight to object storage (a presigned upload at `key`)
        as a video, moving it to where originals live. Its content hash is unknown without reading it
        back, so such uploads are not de-duplicated."""
        if not self.blobs.exists(key):
            raise NotFoundError("nothing was uploaded at that key")
        suffix = Path(filename).suffix.lower()[:10] or ".bin"
        video = self.store.add_video(
            owner_id, filename, original_key_template(suffix), self.blobs.size(key), None
        )
        self.blobs.move(key, video.original_key)
        return video

    def _store_original(self, path: Path, key: str) -> None:
        """Keep our own reference to the original. On the same disk a hard link costs no space."""
        local = getattr(self.blobs, "path", None)
        if local is not None:
            target = local(key)
            private_dir(target.parent)
            try:
                target.unlink(missing_ok=True)
                os.link(path.resolve(), target)  # resolve: link the file, not a symlink to it
                return
            except OSError:
                pass  # another filesystem, or links not allowed: copy instead
        self.blobs.put_file(key, path)

    def runner(
        self,
        on_event: EventFn | None = None,
        keep_going: Callable[[], bool] | None = None,
        claim: str | None = None,
    ) -> PipelineRunner:
        from heimdex.pipeline.runner import PipelineRunner  # decoders and stages: not needed to search

        return PipelineRunner(
            self.settings,
            self.store,
            self.blobs,
            self.models,
            on_event,
            parallel=self.settings.pipeline_parallelism,
            keep_going=keep_going,
            claim=claim,
        )

    def process(self, video_id: str, on_event: EventFn | None = None) -> Video:
        video = self.runner(on_event).run(video_id)
        self.forget_coverage(video.owner_id)  # its frames count from now on
        return video

    def reprocess(self, video_id: str, owner_id: str = LOCAL_OWNER) -> Video:
        """Forget every stage so the next run indexes the video from scratch (old scenes stay visible
        until the new ones are committed). ConflictError while a worker is indexing the video:
        clearing its work files and ledger under it would fail its run, or mix the two runs. Once the
        video reads indexed or failed, the worker only acknowledges the job (and queues it again if
        a stage message arriving for it later is a no-op): that is no conflict."""
        video = self.store.get_video(owner_id, video_id)
        if video.claimed_by is not None and video.state not in (VideoState.INDEXED, VideoState.FAILED):
            raise ConflictError("the video is being indexed right now; reprocess it when that finishes")
        Artifacts(self.blobs, video.id).clear()
        return self.store.requeue_video(owner_id, video.id)

    def delete_video(self, video_id: str, owner_id: str = LOCAL_OWNER) -> None:
        video = self.store.get_video(owner_id, video_id)
        self.store.delete_video(owner_id, video.id)
        self.blobs.delete_prefix(video_prefix(video.id))

    def videos(self, owner_id: str = LOCAL_OWNER, state: VideoState | None = None) -> list[Video]:
        return self.store.list_videos(owner_id, state)

    def video(self, video_id: str, owner_id: str = LOCAL_OWNER) -> Video:
        return self.store.get_video(owner_id, video_id)

    def scenes(self, owner_id: str, video_id: str) -> list[Scene]:
        """The video's scenes in order; NotFoundError unless the video is the owner's."""
        return self.store.list_scenes(owner_id, self.store.get_video(owner_id, video_id).id)

    def scene(self, owner_id: str, scene_id: str) -> Scene:
        """One scene of the owner's; NotFoundError otherwise, never a hint that it exists."""
        return self.store.get_scene(owner_id, scene_id)

    def subtitles(self, owner_id: str, video_id: str, fmt: str = "vtt") -> str:
        """The video's speech as a WebVTT or SubRip document, timed by the recognised words.
        ConflictError while the video has no committed scenes (an empty document: no speech)."""
        video = self.store.get_video(owner_id, video_id)
        if video.state != VideoState.INDEXED and not video.scene_count:
            raise ConflictError("the video is not indexed yet: subtitles come from its transcript")
        words = [w for scene in self.scenes(owner_id, video.id) for w in scene.words]
        return subtitles.render(subtitles.cues(words), fmt)

    def clip(
        self, owner_id: str, video_id: str, start_s: float, end_s: float, out: Path, *, exact: bool = False
    ) -> Clip:
        """Cut the video between two times into `out` (an MP4): copied from the last keyframe, or
        `exact` (encoded again). InvalidRequestError for times outside the video, a clip too long."""
        video = self.store.get_video(owner_id, video_id)
        if video.info is None:
            raise ConflictError("the video has not been read yet: clips come once it is validated")
        end_s = min(end_s, video.info.duration_s)
        if not 0 <= start_s < end_s:
            raise InvalidRequestError(
                f"a clip runs from 0 to {video.info.duration_s:.2f} s, with start before end"
            )
        if end_s - start_s > self.settings.clip_max_s:
            raise InvalidRequestError(f"a clip may be at most {self.settings.clip_max_s:.0f} s long")
        from heimdex.media.clips import cut_clip  # decoders: not needed to search

        with self.blobs.local_path(video.original_key) as path:
            return cut_clip(path, start_s, end_s, out, exact=exact)

    def scene_clip(self, owner_id: str, scene_id: str, out: Path, *, exact: bool = False) -> Clip:
        scene = self.store.get_scene(owner_id, scene_id)
        return self.clip(owner_id, scene.video_id, scene.start_s, scene.end_s, out, exact=exact)

    def scene_count(self, owner_id: str) -> int:
        return self.store.scene_count(owner_id)

    def stages(self, video_id: str, owner_id: str = LOCAL_OWNER) -> list[StageRecord]:
        return self.store.video_stages(owner_id, video_id)

    def thumbnail_ref(self, key: str) -> str | None:
        """Where a thumbnail can be fetched: a (presigned) URL from object storage, else a local path."""
        url = self.blobs.url(key)
        if url is not None:
            return url
        local = getattr(self.blobs, "path", None)
        return str(local(key)) if local is not None else None

    # ------------------------------------------------------------ transcript corrections
    def transcript_edits(self, owner_id: str, video_id: str) -> list[TranscriptEdit]:
        return self.store.transcript_edits(owner_id, video_id)

    def correct_line(
        self, owner_id: str, video_id: str, start_s: float, end_s: float, text: str
    ) -> TranscriptEdit:
        """Read the transcript between two times (a line of the player) as `text`: the scene's words,
        full text and vectors change now, and a reprocess keeps the correction."""
        video = self._correctable(owner_id, video_id)
        scene = corrections.scene_of(self.scenes(owner_id, video.id), start_s, end_s)
        edit, replaced = corrections.new_edit(
            video.id,
            scene,
            start_s,
            end_s,
            corrections.clean_text(text),
            self.transcript_edits(owner_id, video.id),
        )
        words = corrections.corrected(scene.words, scene.start_s, scene.end_s, [edit])
        self.store.correct_scene(
            owner_id, scene.id, self._corrected_text(scene, words), edit, [e.id for e in replaced]
        )
        log.info("transcript corrected", video_id=video.id, edit_id=edit.id, replaced=len(replaced))
        return edit

    def take_back_correction(self, owner_id: str, video_id: str, edit_id: str) -> None:
        """Forget a correction: its scene reads the recognised words again."""
        video = self._correctable(owner_id, video_id)
        edit = next((e for e in self.transcript_edits(owner_id, video.id) if e.id == edit_id), None)
        if edit is None:
            raise NotFoundError(f"no correction {edit_id!r} of this video")
        scene = corrections.scene_at(self.scenes(owner_id, video.id), (edit.start_s + edit.end_s) / 2)
        words = corrections.taken_back(scene.words, edit)
        self.store.correct_scene(owner_id, scene.id, self._corrected_text(scene, words), None, [edit.id])
        log.info("transcript correction taken back", video_id=video.id, edit_id=edit.id)

    def _correctable(self, owner_id: str, video_id: str) -> Video:
        video = self.store.get_video(owner_id, video_id)
        if video.state != VideoState.INDEXED:
            raise ConflictError(
                f"the video is {video.state.value}: correct its transcript once it is indexed"
            )
        return video

    def _corrected_text(self, scene: Scene, words: list[Word]) -> CorrectedText:
        draft = corrections.with_words(scene, words)
        model = self.models.text
        vectors = embed_scenes(model, [draft])
        return CorrectedText(
            words=draft.words,
            transcript=draft.transcript,
            index_terms=index_terms(draft.transcript, draft.ocr_text),
            text=VectorSet(model.name, vectors.scenes),
            windows=VectorSet(model.name, vectors.windows),
        )

    # ------------------------------------------------------------ search
    def search(
        self,
        query: str,
        *,
        owner_id: str = LOCAL_OWNER,
        limit: int = 10,
        offset: int = 0,
        per_video: int | None = None,
        all_scenes: bool = False,
        image: Path | bytes | None = None,
        like: str | None = None,
        **filters,
    ) -> SearchResult:
        """At most `per_video` hits per video (None: the results_per_video setting), or with
        `all_scenes` no cap at all; not both. With `image` (a photo) or `like` (a scene id), scenes
        are ranked by how they look (search_image, more_like_this) and `query` only filters."""
        request = self._request(query, owner_id, limit, offset, per_video, all_scenes, **filters)
        if image is not None and like is not None:
            raise InvalidRequestError("search by an image or like a scene, not both")
        if image is not None:
            return self.search_image(image, request)
        if like is not None:
            return self.more_like_this(like, request)
        return self.search_engine.search(request)

    def search_image(self, photo: Path | bytes, request: SearchRequest) -> SearchResult:
        """Scenes that look like the photo (by their best frame), by the image vectors of the
        CLIP-style model serving the owner (clip_coverage) when one does, else the tagger's;
        InvalidMediaError when the photo cannot be read or has too many pixels."""
        image = self._decode_photo(photo)
        clip = self.clip_for(request.owner_id)
        if clip is not None:
            return self.search_engine.search_image(request, clip.name, clip.embed_images([image])[0])
        vector = self.models.tagger.image_vector(image)
        return self.search_engine.search_image(request, IMAGE_VECTOR_MODEL, vector)

    def more_like_this(self, scene_id: str, request: SearchRequest) -> SearchResult:
        """Scenes that look like one of the owner's scenes, the scene itself left out (it would always
        come first); the example is the mean of its frames' vectors, those of the CLIP-style model
        serving the owner (clip_coverage: no encoder needed, so an earlier model's vectors serve even
        where the model itself is gone) when the scene has them, else the tagger's. NotFoundError for
        another owner's scene or one indexed before image vectors existed (reprocess it)."""
        for model in self._image_models(request.owner_id):
            frames = self.store.scene_frame_vectors(request.owner_id, scene_id, model)
            if len(frames):
                mean = frames.mean(axis=0)
                vector = mean / max(float(np.linalg.norm(mean)), 1e-12)
                request = replace(request, exclude_scene=scene_id)
                return self.search_engine.search_image(request, model, vector)
        raise NotFoundError(f"scene {scene_id!r} has no image vectors yet; reprocess its video")

    def _image_models(self, owner_id: str) -> list[str]:
        """The image models whose frame vectors serve the owner's search by image, preferred first."""
        serving = self.clip_coverage(owner_id).serving if self.models.clip_configured else None
        return [serving, IMAGE_VECTOR_MODEL] if serving else [IMAGE_VECTOR_MODEL]

    def clip_coverage(self, owner_id: str) -> ClipCoverage:
        """How many of the owner's frames have a vector of the configured CLIP-style model, and whose
        vectors serve their searches meanwhile (search/clip_coverage.py); see COVERAGE_TTL_S."""
        now = time.monotonic()
        cached = self._coverage.get(owner_id)
        if cached is not None and now - cached[0] < COVERAGE_TTL_S:
            return cached[1]
        clip = self.models.clip
        found = clip_coverage(self.store.frame_vector_counts(owner_id), clip.name if clip else None)
        self._coverage[owner_id] = (now, found)
        return found

    def reembedding(self) -> str | None:
        """Which process re-embeds the library now under the store's lease (reembed.LibraryReembed),
        if one does."""
        return self.store.lease_holder(REEMBED_LEASE)

    def forget_coverage(self, owner_id: str) -> None:
        """Count the owner's CLIP coverage again on its next use (their frames changed)."""
        self._coverage.pop(owner_id, None)

    def clip_for(self, owner_id: str) -> OnnxClipEmbedder | None:
        """The CLIP-style model serving the owner's searches, loaded; None when none does (none is
        configured, the owner's frames are not all embedded with it and no earlier model's vectors
        are there, or the earlier model cannot be loaded here)."""
        if not self.models.clip_configured:
            return None
        serving = self.clip_coverage(owner_id).serving
        return self.models.clip_named(serving) if serving else None

    def _clip_query(self, owner_id: str, text: str) -> tuple[str, np.ndarray] | None:
        """For the engine's clip channel: the serving model and the query's text vector by it."""
        clip = self.clip_for(owner_id)
        return None if clip is None else (clip.name, _clip_text_vector(clip, text))

    def _request(
        self,
        query: str,
        owner_id: str,
        limit: int,
        offset: int,
        per_video: int | None,
        all_scenes: bool,
        **filters,
    ) -> SearchRequest:
        if all_scenes and per_video is not None:
            raise ValueError("per_video and all_scenes exclude each other")
        if per_video is None and not all_scenes:
            per_video = self.settings.results_per_video
        return SearchRequest(
            owner_id=owner_id, query=query, limit=limit, offset=offset, per_video=per_video, **filters
        )

    # ------------------------------------------------------------ people
    def people(self, owner_id: str = LOCAL_OWNER) -> list[Person]:
        return self.store.list_people(owner_id)

    def person(self, owner_id: str, name_or_id: str) -> Person:
        return self.store.get_person(owner_id, name_or_id)

    def add_person(self, owner_id: str, name: str) -> Person:
        """A new person without photos (ConflictError if the owner has one of that name)."""
        return self.store.add_person(owner_id, name)

    def enrol(self, name: str, photos: Iterable[Path | bytes], owner_id: str = LOCAL_OWNER) -> Person:
        """Add photos of a person (or a pet), creating them if new, then find them in every video
        already indexed, without reprocessing any video."""
        identities = [self._photo_identity(photo) for photo in photos]
        try:
            person = self.store.get_person(owner_id, name)
        except NotFoundError:
            person = self.store.add_person(owner_id, name)
        for i, (data, model, embedding) in enumerate(identities):
            key = person_photo_key(person.id, person.photo_count + i)
            self.blobs.put_bytes(key, data)
            self.store.add_person_photo(owner_id, person.id, key, model, embedding)
        self.rematch_people(owner_id)
        return self.store.get_person(owner_id, person.id)

    def _photo_identity(self, photo: Path | bytes) -> tuple[bytes, str, np.ndarray]:
        """(photo bytes, model, identity vector) of the most prominent face, or else animal, in a photo."""
        data = photo if isinstance(photo, bytes) else Path(photo).read_bytes()
        label = _label(photo)
        image = self._decode_photo(data, label)
        for model in (self.models.faces, self.models.appearance):
            found = model.analyze(image)
            if found:  # group photos are common: take the biggest
                biggest = max(found, key=lambda f: f.box.w * f.box.h)
                return data, model.name, np.asarray(biggest.embedding, dtype=np.float32)
        raise InvalidMediaError(f"{label}: no face (or animal) found; use a clear photo of the face")

    def _decode_photo(self, photo: Path | bytes, label: str | None = None) -> np.ndarray:
        """A photo as RGB, within max_image_pixels; InvalidMediaError names it when it cannot be read."""
        from heimdex.media import decode_image  # decoders: not needed to search by text

        try:
            data = photo if isinstance(photo, bytes) else Path(photo).read_bytes()
            return decode_image(data, max_pixels=self.settings.max_image_pixels)
        except FileNotFoundError as exc:
            raise InvalidMediaError(f"{photo}: no such file") from exc
        except InvalidMediaError as exc:  # decoding bytes cannot know the file's name: say it here
            raise InvalidMediaError(f"{label or _label(photo)}: {exc}") from exc

    def rematch_people(self, owner_id: str) -> dict[str, int]:
        """Link every enrolled person to the faces in the owner's videos that are theirs (or possibly
        theirs). Returns person id -> faces linked.

        All people are matched together because a face belongs to one person at most: enrolling a
        closer match for someone else must take the face away from the first person. Faces and pets'
        appearance vectors are matched separately, each against photos embedded by the same model.
        A face the owner confirmed or rejected is theirs to decide and is left out.
        """
        per_person: dict[str, list[tuple[int, float, bool]]] = {
            p.id: [] for p in self.store.list_people(owner_id)
        }
        judged = self.store.judged_faces(owner_id)
        for model in (self.models.faces.name, self.models.appearance.name):
            face_pks, face_vectors = self.store.face_embeddings(owner_id, model)
            person_ids, photos = self.store.person_embeddings(owner_id, model)
            matches = match_faces(
                face_vectors,
                person_ids,
                photos,
                self.models.match_distance(model),
                self.models.possible_distance(model),
                rejected=self.store.rejected_embeddings(owner_id, model),
            )
            for row, match in matches.items():
                if face_pks[row] not in judged:
                    per_person[match.person_id].append((face_pks[row], match.distance, match.possible))
        for person_id, links in per_person.items():
            self.store.replace_person_matches(owner_id, person_id, links)
        faceclusters.attach_matched_clusters(self.store, owner_id)  # an enrolment joins its cluster
        return {pid: len(links) for pid, links in per_person.items()}

    def person_matches(
        self, name_or_id: str, owner_id: str = LOCAL_OWNER, *, possible_only: bool = False
    ) -> list[MatchView]:
        """The faces linked to a person, nearest first, for review (possible ones only if asked)."""
        person = self.store.get_person(owner_id, name_or_id)
        return self.store.person_matches(owner_id, person.id, possible_only=possible_only)

    def judge_match(
        self, name_or_id: str, face_pk: int, verdict: str | None, owner_id: str = LOCAL_OWNER
    ) -> Person:
        """Confirm or reject that a face is the person ("confirmed", "rejected"; None: undo)."""
        person = self.store.get_person(owner_id, name_or_id)
        self.store.set_match_verdict(owner_id, person.id, face_pk, verdict)
        if verdict == "rejected":
            self._leave_their_group(owner_id, person.id, face_pk)
        log.info("person.match_judged", person_id=person.id, face_pk=face_pk, verdict=verdict)
        return self.store.get_person(owner_id, person.id)

    def _leave_their_group(self, owner_id: str, person_id: str, face_pk: int) -> None:
        """A face rejected for a person leaves their group for one of its own: left in it, the face
        would be confirmed again the next time the group is named or merged."""
        group = self.store.face_cluster(owner_id, face_pk)
        if group is not None and self._group_person(owner_id, group) == person_id:
            self.store.move_face(owner_id, face_pk, None)

    def merge_people(self, source: str, into: str, owner_id: str = LOCAL_OWNER) -> Person:
        """Two people who are one (say "Donna", enrolled by photo, and a group named "Donna Smith"):
        `into` keeps its name and takes `source`'s photos, judged faces and groups, and `source` is
        gone. Matching then runs again with the examples of both, so that a search for `into` finds
        the scenes of both at once."""
        kept = self._absorb_person(source, into, owner_id)
        self.rematch_people(owner_id)
        return self.store.get_person(owner_id, kept)

    def _absorb_person(self, source: str, into: str, owner_id: str) -> str:
        """merge_people without the re-matching; returns the kept person's id."""
        src, dst = self.store.get_person(owner_id, source), self.store.get_person(owner_id, into)
        if src.id == dst.id:
            raise InvalidRequestError("a person cannot be merged into themselves")
        photos = self.store.person_photo_keys(owner_id, src.id)
        moved = {old: person_photo_key(dst.id, dst.photo_count + i) for i, old in enumerate(photos)}
        for old, new in moved.items():  # copied first: a failure leaves a spare copy, never a lost photo
            self.blobs.put_bytes(new, self.blobs.get_bytes(old))
        self.store.merge_people(owner_id, src.id, dst.id, moved)
        self.blobs.delete_prefix(person_prefix(src.id))
        log.info("person.merged", person_id=src.id, into=dst.id, photos=len(moved))
        return dst.id

    # ------------------------------------------------------------ unnamed people (face clusters)
    def cluster_faces(self, owner_id: str = LOCAL_OWNER) -> list[str]:
        """Cluster the owner's faces that are in no cluster yet (commit does it for each new video);
        returns the new clusters' ids."""
        made = faceclusters.cluster_new_faces(
            self.store, owner_id, self.models.faces.name, self.settings.face_cluster_distance
        )
        faceclusters.attach_matched_clusters(self.store, owner_id)
        return made

    def face_groups(
        self, owner_id: str = LOCAL_OWNER, *, named: bool = False, hidden: bool = False
    ) -> list[FaceCluster]:
        """Unnamed people, largest first (with `named` the named clusters too; `hidden` adds the
        hidden ones)."""
        groups = self.store.list_clusters(owner_id, hidden=hidden)
        return [g for g in groups if named or g.person_id is None]

    def face_group(self, group_id: str, owner_id: str = LOCAL_OWNER) -> FaceCluster:
        return self.store.get_cluster(owner_id, group_id)

    def face_group_faces(self, group_id: str, owner_id: str = LOCAL_OWNER) -> list[ClusterFace]:
        return self.store.cluster_faces(owner_id, group_id)

    def name_group(self, group_id: str, name: str, owner_id: str = LOCAL_OWNER) -> Person:
        """Name an unnamed person: they become (or join) the enrolled person of that name, whose
        examples are the cluster's faces, so that search finds their scenes at once. Matching then
        runs again, with those examples, for faces elsewhere."""
        group = self.store.get_cluster(owner_id, group_id)
        try:
            person = self.store.get_person(owner_id, name)
        except NotFoundError:
            person = self.store.add_person(owner_id, name)
        self.store.set_cluster_person(owner_id, group.id, person.id)
        self._confirm_group(owner_id, group.id, person.id)
        log.info("people.group_named", group_id=group.id, person_id=person.id)
        return self.store.get_person(owner_id, person.id)

    def _confirm_group(self, owner_id: str, group_id: str, person_id: str) -> None:
        """The group's faces are the person's: confirmed (examples for matching), but for those the
        owner rejected for them, which leave the group (a rejected face is never theirs again). Then
        matching runs again with the new examples."""
        matches = self.store.person_matches(owner_id, person_id)
        rejected = {m.face_pk for m in matches if m.verdict == "rejected"}
        faces = [f.face_pk for f in self.store.cluster_faces(owner_id, group_id)]
        for face_pk in rejected.intersection(faces):
            self.store.move_face(owner_id, face_pk, None)
        self.store.confirm_faces(owner_id, person_id, [pk for pk in faces if pk not in rejected])
        self.rematch_people(owner_id)

    def merge_groups(self, source_id: str, target_id: str, owner_id: str = LOCAL_OWNER) -> FaceCluster:
        """Merge two people (clusters) into `target`. The merged one keeps target's name, or else
        source's; when both are named, source's person is merged into target's (merge_people)."""
        source = self.store.get_cluster(owner_id, source_id)
        target = self.store.get_cluster(owner_id, target_id)
        if source.id == target.id:
            raise InvalidRequestError("a person cannot be merged into themselves")
        if source.person_id and target.person_id and source.person_id != target.person_id:
            self._absorb_person(source.person_id, target.person_id, owner_id)
        self.store.merge_clusters(owner_id, source.id, target.id)
        person_id = target.person_id or source.person_id
        if person_id is not None:
            self.store.set_cluster_person(owner_id, target.id, person_id)
            self._confirm_group(owner_id, target.id, person_id)
        return self.store.get_cluster(owner_id, target.id)

    def move_face(
        self, group_id: str, face_pk: int, to_group: str | None = None, owner_id: str = LOCAL_OWNER
    ) -> str:
        """Move a wrongly clustered face out of its group: into `to_group`, or a new unnamed person of
        its own. Returns the face's new group."""
        group = self.store.get_cluster(owner_id, group_id, best=0)
        face = self.store.get_face(owner_id, face_pk)
        if face.cluster_id != group.id:
            raise NotFoundError(f"no face {face_pk} in that group")
        if to_group is not None:
            self.store.get_cluster(owner_id, to_group, best=0)  # NotFoundError before anything changes
        return self._refile(owner_id, face, to_group)

    def ungrouped_faces(self, owner_id: str = LOCAL_OWNER) -> list[ClusterFace]:
        """Faces in no group: too small or blurred to start one, and near none yet. Largest first."""
        return self.store.unclustered_faces(owner_id, self.models.faces.name)

    def assign_face(
        self,
        face_pk: int,
        owner_id: str = LOCAL_OWNER,
        *,
        group_id: str | None = None,
        person: str | None = None,
    ) -> str:
        """Put a face (one in no group, say) where the owner says it belongs: into a group, to a person
        (into their largest group, or a new group of theirs), or with neither into a group of its own.
        Returns the face's group."""
        if group_id is not None and person is not None:
            raise InvalidRequestError("a face goes to a group or to a person, not both")
        face = self.store.get_face(owner_id, face_pk)
        if person is not None:
            person_id = self.store.get_person(owner_id, person).id
            return self._refile(owner_id, face, self._person_group(owner_id, person_id), person_id)
        if group_id is not None:
            self.store.get_cluster(owner_id, group_id, best=0)  # NotFoundError before anything changes
        return self._refile(owner_id, face, group_id)

    def _group_person(self, owner_id: str, group_id: str | None) -> str | None:
        """Whose the group is (None: unnamed, or no group)."""
        return self.store.get_cluster(owner_id, group_id, best=0).person_id if group_id else None

    def _person_group(self, owner_id: str, person_id: str) -> str | None:
        """The person's largest group, if they have one."""
        groups = self.store.list_clusters(owner_id, hidden=True, best=0)  # largest first
        return next((g.id for g in groups if g.person_id == person_id), None)

    def _refile(
        self, owner_id: str, face: ClusterFace, to_group: str | None, person_id: str | None = None
    ) -> str:
        """Move a face into `to_group`, or (None) a new group, named `person_id` if given. If it left a
        named person, its match to them is rejected (matching keeps it away from them); the person
        it joins, if any, has it confirmed (an example for matching)."""
        before = self._group_person(owner_id, face.cluster_id)
        moved_to = self.store.move_face(owner_id, face.face_pk, to_group)
        if person_id is not None:
            self.store.set_cluster_person(owner_id, moved_to, person_id)
        after = person_id or self._group_person(owner_id, moved_to)
        if before and before != after:
            self._reject_face(owner_id, before, face.face_pk)
        if after is not None:
            self.store.confirm_faces(owner_id, after, [face.face_pk])
        log.info("people.face_moved", face_pk=face.face_pk, group_id=moved_to, person_id=after)
        return moved_to

    def _reject_face(self, owner_id: str, person_id: str, face_pk: int) -> None:
        with contextlib.suppress(NotFoundError):  # never linked to them: nothing to undo
            self.store.set_match_verdict(owner_id, person_id, face_pk, "rejected")

    def face_crop(self, group_id: str, face_pk: int, owner_id: str = LOCAL_OWNER) -> bytes:
        """The JPEG crop of one face of a group (NotFoundError for another group's face)."""
        if self.store.face_cluster(owner_id, face_pk) != group_id:
            raise NotFoundError(f"no crop of face {face_pk}")
        return self.face_image(face_pk, owner_id)

    def face_image(self, face_pk: int, owner_id: str = LOCAL_OWNER) -> bytes:
        """The JPEG crop of one of the owner's faces (NotFoundError for none kept: faces indexed before
        crops were kept have none until their video is reprocessed)."""
        face = self.store.get_face(owner_id, face_pk)
        if face.crop_key is None or not self.blobs.exists(face.crop_key):
            raise NotFoundError(f"no crop of face {face_pk}")
        return self.blobs.get_bytes(face.crop_key)

    def hide_group(self, group_id: str, hidden: bool = True, owner_id: str = LOCAL_OWNER) -> FaceCluster:
        """Hide an unnamed person (strangers in the background): not listed unless asked."""
        self.store.set_cluster_hidden(owner_id, group_id, hidden)
        return self.store.get_cluster(owner_id, group_id)

    def remove_person(self, name_or_id: str, owner_id: str = LOCAL_OWNER) -> None:
        person = self.store.get_person(owner_id, name_or_id)
        self.store.delete_person(owner_id, person.id)
        self.blobs.delete_prefix(person_prefix(person.id))

    def rename_person(self, name_or_id: str, new_name: str, owner_id: str = LOCAL_OWNER) -> Person:
        person = self.store.get_person(owner_id, name_or_id)
        return self.store.rename_person(owner_id, person.id, new_name)


__all__ = ["LOCAL_OWNER", "AddedVideo", "Heimdex", "HeimdexError", "expand_inputs"]
