"""Unnamed people on both backends, with the real pipeline and KPhotoAlbum's photos of named people:
faces cluster as videos come in (incrementally), and naming, merging, moving a face out, hiding,
possible matches and enrolment by photo act on the clusters. Another owner reaches none of it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from heimdex.domain import FaceCluster
from heimdex.errors import InvalidRequestError, NotFoundError
from heimdex.pipeline.events import EventFn
from heimdex.service import Heimdex
from tests import assets
from tests.e2e.conftest import BACKENDS, PEOPLE_FIRST, PEOPLE_SECOND, backend_settings, people_video

ALICE, BOB = "alice", "bob"


@dataclass
class Library:
    app: Heimdex
    first: str  # video ids
    second: str
    after_first: list[FaceCluster]  # the groups as the first video left them
    face_progress: list[float] = field(default_factory=list)  # the first video's faces stage, as it ran


def photo_of(library: Library, video_id: str, t_s: float) -> str:
    photos = PEOPLE_FIRST if video_id == library.first else PEOPLE_SECOND
    return photos[int(t_s // 2.0)]


def photos_of(library: Library, group_id: str, video_id: str | None = None) -> set[str]:
    faces = library.app.face_group_faces(group_id, ALICE)
    return {photo_of(library, f.video_id, f.t_s) for f in faces if video_id in (None, f.video_id)}


def index(app: Heimdex, name: str, photos: tuple[str, ...], on_event: EventFn | None = None) -> str:
    added = app.add_file(people_video(name, photos), owner_id=ALICE)
    video = app.process(added.video.id, on_event)
    assert video.state.value == "indexed", video.error
    return video.id


@pytest.fixture(scope="module", params=BACKENDS)
def library(request, tmp_path_factory, models) -> Iterator[Library]:
    home = tmp_path_factory.mktemp(f"unnamed-{request.param}")
    with backend_settings(request.param, home) as settings:
        # A wide margin of possible matches, so that a named person has faces to review.
        app = Heimdex(settings.model_copy(update={"possible_match_margin": 0.3}), models=models)
        try:
            first = index(app, "people-first", PEOPLE_FIRST)
            after_first = app.face_groups(ALICE)
            second = index(app, "people-second", PEOPLE_SECOND)
            yield Library(app, first, second, after_first)
        finally:
            app.close()


def jesper_group(library: Library) -> FaceCluster:
    return max(library.app.face_groups(ALICE, named=True), key=lambda g: g.face_count)


def test_faces_cluster_into_people_largest_first_and_incrementally(library: Library) -> None:
    groups = library.after_first
    assert [g.face_count for g in groups] == sorted((g.face_count for g in groups), reverse=True)
    jesper = groups[0]
    assert photos_of(library, jesper.id, library.first) == set(PEOPLE_FIRST), "Jesper is in all three"
    assert jesper.scene_count == 3 and all(f.crop_key for f in jesper.best_faces)
    qt_only = [g for g in groups if photos_of(library, g.id, library.first) == {"qt-logo.jpg"}]
    assert len(qt_only) == 2, "Jim and Wayne: a group each"
    crop = library.app.face_crop(jesper.id, jesper.best_faces[0].face_pk, ALICE)
    assert crop[:3] == b"\xff\xd8\xff"  # a JPEG

    # The second video joined the groups there were (same ids), and Jesper's grew into it.
    now = {g.id: g for g in library.app.face_groups(ALICE)}
    assert {g.id for g in groups} <= set(now)
    assert {"jesper.jpg", "bar55_2.jpg"} <= photos_of(library, jesper.id)
    assert now[jesper.id].scene_count >= 5
    # The 41-pixel face of grand_canyon_2.jpg seeds no group of its own.
    assert all(photos_of(library, g) != {"grand_canyon_2.jpg"} for g in now)


def test_naming_finds_them_at_once_and_lists_possible_faces(library: Library) -> None:
    app, jesper = library.app, jesper_group(library)
    assert jesper.person_id is None
    person = app.name_group(jesper.id, "Jesper", ALICE)
    assert person.name == "Jesper" and person.scene_count >= jesper.scene_count
    assert jesper.id not in {g.id for g in app.face_groups(ALICE)}
    assert app.face_group(jesper.id, ALICE).person_name == "Jesper"

    hits = app.search("person:Jesper", owner_id=ALICE, all_scenes=True, limit=50).hits
    assert {h.video_id for h in hits} == {library.first, library.second}, "no reprocessing needed"
    assert all("Jesper" in h.people + h.possible_people for h in hits)

    # The named person's faces are confirmed; faces near the threshold are possible, to review.
    matches = app.person_matches("Jesper", ALICE)
    named = {f.face_pk for f in app.face_group_faces(jesper.id, ALICE)}
    assert all(m.verdict == "confirmed" for m in matches if m.face_pk in named)
    possible = app.person_matches("Jesper", ALICE, possible_only=True)
    assert possible and all(m.face_pk not in named for m in possible)

    # Each decision teaches the matcher: a confirmed face is one more example (undone here).
    examples = lambda: len(app.store.person_embeddings(ALICE, app.models.faces.name)[0])  # noqa: E731
    before = examples()
    confirmed = app.judge_match("Jesper", possible[0].face_pk, "confirmed", ALICE)
    assert examples() == before + 1 and confirmed.possible_count == person.possible_count - 1
    app.judge_match("Jesper", possible[0].face_pk, None, ALICE)
    assert examples() == before

    # A rejected face keeps its look-alikes away: the same face in the other frame of its photo too.
    def photo(m) -> tuple[str, int]:
        return m.video_id, int(m.t_s // 2)

    pairs = [(a, b) for a in possible for b in possible if a.face_pk != b.face_pk and photo(a) == photo(b)]
    assert pairs, "each photo is seen in two frames: a possible face has its twin"
    rejected, twin = pairs[0]
    app.judge_match("Jesper", rejected.face_pk, "rejected", ALICE)
    app.rematch_people(ALICE)
    left = {m.face_pk: m for m in app.person_matches("Jesper", ALICE)}
    assert left[rejected.face_pk].verdict == "rejected", "a rejection survives re-matching"
    assert twin.face_pk not in left, "its twin is no longer possibly Jesper"


def test_merge_two_people_and_move_a_face_out(library: Library) -> None:
    app = library.app
    jim, wayne = [g for g in app.face_groups(ALICE) if photos_of(library, g.id) == {"qt-logo.jpg"}][:2]
    merged = app.merge_groups(jim.id, wayne.id, ALICE)
    assert merged.id == wayne.id and merged.face_count == jim.face_count + wayne.face_count
    with pytest.raises(NotFoundError):
        app.face_group(jim.id, ALICE)
    with pytest.raises(InvalidRequestError):
        app.merge_groups(wayne.id, wayne.id, ALICE)

    face = app.face_group_faces(wayne.id, ALICE)[0].face_pk
    own = app.move_face(wayne.id, face, owner_id=ALICE)
    assert own != wayne.id and [f.face_pk for f in app.face_group_faces(own, ALICE)] == [face]
    assert app.face_group(wayne.id, ALICE).face_count == merged.face_count - 1
    with pytest.raises(NotFoundError):  # the face is no longer in that group
        app.move_face(wayne.id, face, owner_id=ALICE)

    # Moving a face out of a named person rejects it for them.
    jesper = next(g for g in app.face_groups(ALICE, named=True) if g.person_name == "Jesper")
    stray = app.face_group_faces(jesper.id, ALICE)[-1].face_pk
    app.move_face(jesper.id, stray, own, ALICE)
    verdicts = {m.face_pk: m.verdict for m in app.person_matches("Jesper", ALICE)}
    assert verdicts[stray] == "rejected"
    assert stray in {f.face_pk for f in app.face_group_faces(own, ALICE)}


def test_hide_a_group(library: Library) -> None:
    app = library.app
    group = app.face_groups(ALICE)[-1]
    assert app.hide_group(group.id, owner_id=ALICE).hidden
    assert group.id not in {g.id for g in app.face_groups(ALICE)}
    assert group.id in {g.id for g in app.face_groups(ALICE, hidden=True)}
    app.hide_group(group.id, hidden=False, owner_id=ALICE)
    assert group.id in {g.id for g in app.face_groups(ALICE)}


def test_enrolment_by_photo_joins_its_cluster(library: Library) -> None:
    app = library.app
    anne = next(g for g in app.face_groups(ALICE) if {"bar55.jpg", "bar55_2.jpg"} <= photos_of(library, g.id))
    person = app.enrol("Anne Helene", [assets.kphotoalbum_photo("anne_helene.jpg")], ALICE)
    assert person.scene_count >= 2
    assert app.face_group(anne.id, ALICE).person_name == "Anne Helene"
    assert anne.id not in {g.id for g in app.face_groups(ALICE)}


def test_another_owner_reaches_none_of_it(library: Library) -> None:
    app = library.app
    assert app.face_groups(BOB, named=True, hidden=True) == []
    group = app.face_groups(ALICE, named=True)[0]
    face = app.face_group_faces(group.id, ALICE)[0].face_pk
    for attempt in (
        lambda: app.face_group(group.id, BOB),
        lambda: app.face_group_faces(group.id, BOB),
        lambda: app.face_crop(group.id, face, BOB),
        lambda: app.name_group(group.id, "Mine", BOB),
        lambda: app.merge_groups(group.id, app.face_groups(ALICE)[0].id, BOB),
        lambda: app.move_face(group.id, face, owner_id=BOB),
        lambda: app.hide_group(group.id, owner_id=BOB),
    ):
        with pytest.raises(NotFoundError):
            attempt()
    assert app.cluster_faces(BOB) == [] and app.people(BOB) == []
    assert app.face_group(group.id, ALICE).face_count == group.face_count
