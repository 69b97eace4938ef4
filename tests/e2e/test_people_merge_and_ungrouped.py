"""Faces in no group, and two named people who are one, on both backends, with the real pipeline and
KPhotoAlbum's photos (the library of test_unnamed_people.py, fresh: nobody named yet).

In it the 41-pixel faces of grand_canyon_2.jpg (Jesper, small) and the 45-pixel ones of the woman at
the left edge of bar55.jpg can seed no group and are near none: they are listed as faces in no group,
to be given to a person or a group by hand. Anne Helene is
enrolled by photo as "Anne" and, from the group of her faces in the second video, named
"Anne Helene": merging the two people finds both sets of scenes under the kept name."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from heimdex.blobs.keys import person_photo_key, person_prefix
from heimdex.domain import StageState
from heimdex.errors import InvalidRequestError, NotFoundError
from heimdex.pipeline.events import StageEvent
from heimdex.service import Heimdex
from tests import assets
from tests.api.backends import blob_keys
from tests.e2e.conftest import BACKENDS, PEOPLE_FIRST, PEOPLE_SECOND, backend_settings
from tests.e2e.test_unnamed_people import ALICE, BOB, Library, index, photo_of, photos_of


@pytest.fixture(scope="module", params=BACKENDS)
def library(request, tmp_path_factory, models) -> Iterator[Library]:
    home = tmp_path_factory.mktemp(f"merge-{request.param}")
    with backend_settings(request.param, home) as settings:
        app = Heimdex(settings, models=models)
        try:
            progress: list[float] = []

            def faces_running(event: StageEvent) -> None:
                if event.stage == "faces_enroll_match" and event.state is StageState.RUNNING:
                    progress.append(event.fraction)

            first = index(app, "people-first", PEOPLE_FIRST, faces_running)
            second = index(app, "people-second", PEOPLE_SECOND)
            yield Library(app, first, second, [], progress)
        finally:
            app.close()


def group_with(library: Library, photos: set[str]):
    return next(g for g in library.app.face_groups(ALICE) if photos <= photos_of(library, g.id))


def scenes_of(app: Heimdex, name: str) -> set[tuple[str, int]]:
    hits = app.search(f'person:"{name}"', owner_id=ALICE, all_scenes=True, limit=50).hits
    return {(h.video_id, h.scene_index) for h in hits if name in h.people}


def test_the_second_looks_at_full_size_move_the_progress_bar_to_its_end(library: Library) -> None:
    """bar55.jpg's woman at the left edge is found by a second look (below): the faces stage counts
    those looks too, so its fraction rises at every look and reaches 1 before the stage is done."""
    fractions = [f for f in library.face_progress if f > 0]
    assert len(fractions) >= 2 and fractions == sorted(set(fractions)), fractions
    assert fractions[-1] == 1.0, fractions


def test_faces_in_no_group_are_listed_and_given_to_a_person_or_a_group(library: Library) -> None:
    app = library.app
    ungrouped = app.ungrouped_faces(ALICE)
    by_photo: dict[str, list[int]] = {}
    for face in ungrouped:
        by_photo.setdefault(photo_of(library, face.video_id, face.t_s), []).append(face.face_pk)
    # Jesper far off in grand_canyon_2.jpg, and the woman at the bar's left edge in bar55.jpg (found
    # by the second look inside her person box): each small, each seen in two frames.
    assert {photo: len(faces) for photo, faces in by_photo.items()} == {
        "grand_canyon_2.jpg": 2,
        "bar55.jpg": 2,
    }
    assert all(f.cluster_id is None and f.size_px < 56 for f in ungrouped)
    waiting = [f for f in ungrouped if f.face_pk in by_photo["grand_canyon_2.jpg"]]
    assert all(f.video_id == library.second for f in waiting)
    assert app.face_image(waiting[0].face_pk, ALICE)[:3] == b"\xff\xd8\xff"  # its crop, a JPEG
    scene = (library.second, waiting[0].scene_index)

    jesper = group_with(library, {"jesper_2.jpg", "jesper.jpg"})
    person = app.name_group(jesper.id, "Jesper", ALICE)
    assert app.assign_face(waiting[0].face_pk, ALICE, person="Jesper") == jesper.id, "into his group"
    verdicts = {m.face_pk: m.verdict for m in app.person_matches("Jesper", ALICE)}
    assert verdicts[waiting[0].face_pk] == "confirmed"
    assert scene in scenes_of(app, "Jesper"), "found in search at once, no reprocessing"
    assert app.person(ALICE, "Jesper").scene_count >= person.scene_count

    # Neither group nor person: a group of its own, an unnamed person to name or merge later.
    own = app.assign_face(waiting[1].face_pk, ALICE)
    assert [f.face_pk for f in app.face_group_faces(own, ALICE)] == [waiting[1].face_pk]
    assert own in {g.id for g in app.face_groups(ALICE)}
    assert [f.face_pk for f in app.ungrouped_faces(ALICE)] == by_photo["bar55.jpg"], "hers still wait"
    with pytest.raises(InvalidRequestError):
        app.assign_face(waiting[1].face_pk, ALICE, group_id=jesper.id, person="Jesper")
    with pytest.raises(NotFoundError):
        app.assign_face(waiting[1].face_pk, ALICE, group_id="0000000000000000")
    with pytest.raises(NotFoundError):
        app.assign_face(waiting[1].face_pk, ALICE, person="Nobody")
    assert app.face_group_faces(own, ALICE)[0].face_pk == waiting[1].face_pk, "nothing moved"

    # Another owner sees none of them and can give none away.
    assert app.ungrouped_faces(BOB) == []
    for attempt in (
        lambda: app.face_image(waiting[1].face_pk, BOB),
        lambda: app.assign_face(waiting[1].face_pk, BOB),
        lambda: app.assign_face(waiting[1].face_pk, BOB, group_id=own),
    ):
        with pytest.raises(NotFoundError):
            attempt()
    assert app.face_group_faces(own, ALICE)[0].face_pk == waiting[1].face_pk


def test_a_rejected_face_leaves_their_group_and_merging_does_not_bring_it_back(library: Library) -> None:
    app = library.app
    jesper = next(g for g in app.face_groups(ALICE, named=True) if g.person_name == "Jesper")
    stray = app.face_group_faces(jesper.id, ALICE)[-1].face_pk
    app.judge_match("Jesper", stray, "rejected", ALICE)
    left_for = app.store.face_cluster(ALICE, stray)
    assert left_for != jesper.id and app.face_group(left_for, ALICE).person_id is None
    # Merging a group into his confirms the faces it brings, but never one rejected for him (the
    # word on one face outweighs the word on a group): merged with his group, it leaves again.
    small = next(g for g in app.face_groups(ALICE) if photos_of(library, g.id) == {"grand_canyon_2.jpg"})
    for group in (left_for, small.id):
        merged = app.merge_groups(group, jesper.id, ALICE)
        assert stray not in {f.face_pk for f in app.face_group_faces(merged.id, ALICE)}
    verdicts = {m.face_pk: m.verdict for m in app.person_matches("Jesper", ALICE)}
    assert verdicts[stray] == "rejected" and verdicts[small.best_faces[0].face_pk] == "confirmed"
    assert app.store.face_cluster(ALICE, stray) not in (None, jesper.id)
    app.rematch_people(ALICE)
    assert {m.face_pk: m.verdict for m in app.person_matches("Jesper", ALICE)}[stray] == "rejected"


def test_a_person_enrolled_by_photo_and_a_named_group_merge_into_one(library: Library) -> None:
    app = library.app
    anne = group_with(library, {"bar55.jpg", "bar55_2.jpg"})
    # Her faces of the second video go to a group of their own. She is enrolled by photo as "Anne",
    # and her faces of the first video confirmed on her page; the other group is named "Anne Helene".
    later = [f.face_pk for f in app.face_group_faces(anne.id, ALICE) if f.video_id == library.second]
    split = app.assign_face(later[0], ALICE)
    for face in later[1:]:
        app.move_face(anne.id, face, split, ALICE)
    photo = assets.kphotoalbum_photo("anne_helene.jpg")
    gone = app.enrol("Anne", [photo], ALICE)
    assert app.face_group(anne.id, ALICE).person_name == "Anne", "the enrolment joined her group"
    earlier = [m.face_pk for m in app.person_matches("Anne", ALICE) if m.video_id == library.first]
    assert earlier, "her photo finds her in the first video"
    for face in earlier:
        app.judge_match("Anne", face, "confirmed", ALICE)
    kept = app.name_group(split, "Anne Helene", ALICE)
    by_photo, by_name = scenes_of(app, "Anne"), scenes_of(app, "Anne Helene")
    assert {v for v, _ in by_photo} == {library.first} and {v for v, _ in by_name} == {library.second}

    with pytest.raises(NotFoundError):  # another owner's people, either way round
        app.merge_people(gone.id, kept.id, BOB)
    bobs = app.add_person(BOB, "Anne")
    with pytest.raises(NotFoundError):
        app.merge_people(bobs.id, kept.id, BOB)
    with pytest.raises(InvalidRequestError):
        app.merge_people(kept.id, kept.id, ALICE)

    merged = app.merge_people("Anne", "Anne Helene", ALICE)
    assert merged.id == kept.id and merged.name == "Anne Helene" and merged.photo_count == 1
    assert scenes_of(app, "Anne Helene") >= by_photo | by_name, "both sets of scenes, at once"
    assert [p.name for p in app.people(ALICE)] == ["Anne Helene", "Jesper"]
    with pytest.raises(NotFoundError):
        app.person(ALICE, gone.id)
    assert {g.person_name for g in app.face_groups(ALICE, named=True) if g.id in (anne.id, split)} == {
        "Anne Helene"
    }
    assert app.blobs.get_bytes(person_photo_key(kept.id, 0)) == photo.read_bytes()
    assert blob_keys(app.blobs, person_prefix(gone.id)) == [], "the merged person's photos moved"
    assert app.people(BOB) == [bobs]


def test_two_named_groups_merge_their_people(library: Library) -> None:
    app = library.app
    jim, wayne = [g for g in app.face_groups(ALICE) if photos_of(library, g.id) == {"qt-logo.jpg"}][:2]
    app.name_group(jim.id, "Jim", ALICE)
    app.name_group(wayne.id, "Wayne", ALICE)
    merged = app.merge_groups(jim.id, wayne.id, ALICE)  # once a conflict: now the same person
    assert merged.person_name == "Wayne" and merged.face_count == jim.face_count + wayne.face_count
    with pytest.raises(NotFoundError):
        app.person(ALICE, "Jim")
    faces = {f.face_pk for f in app.face_group_faces(wayne.id, ALICE)}
    confirmed = {m.face_pk for m in app.person_matches("Wayne", ALICE) if m.verdict == "confirmed"}
    assert faces <= confirmed
