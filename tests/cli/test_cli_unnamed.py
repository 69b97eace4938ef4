"""`heimdex people unnamed|name|merge|move|hide|cluster|ungrouped|assign` on a real library of
KPhotoAlbum's photos."""

from __future__ import annotations

import json

import pytest

from tests import assets
from tests.cli.test_cli_commands import ok, refused, search
from tests.e2e.conftest import (
    BACKENDS,
    PEOPLE_FIRST,
    PEOPLE_SECOND,
    backend_settings,
    people_video,
    settings_env,
)


def hits(home, query: str, **env: str) -> list[dict]:
    return json.loads(ok(home, "search", query, "--json", "--all", **env))


def groups(home, *flags: str, **env: str) -> list[dict]:
    return json.loads(ok(home, "people", "unnamed", "--json", *flags, **env))


def test_unnamed_people_from_the_command_line(tmp_path) -> None:
    home = tmp_path / "home"
    assert ok(home, "index", str(people_video("people-first", PEOPLE_FIRST))).splitlines()[-1] == "indexed 1"
    found = groups(home)
    assert [g["face_count"] for g in found] == sorted((g["face_count"] for g in found), reverse=True)
    jesper, *others = found
    assert len(others) >= 3  # Jim, Wayne, Anne Helene
    table = ok(home, "people", "unnamed")
    assert jesper["id"] in table and "people-first.mp4" in table
    assert ok(home, "people", "cluster").strip() == "0 new groups", "every face is in a group already"

    assert ok(home, "people", "name", jesper["id"], "Jesper").strip() == "Jesper: seen in 3 scenes"
    assert {h["scene_index"] for h in search(home, "person:Jesper")} == {0, 1, 2}
    assert jesper["id"] not in {g["id"] for g in groups(home)}
    assert jesper["id"] in {g["id"] for g in groups(home, "--all")}

    qt_logo = [g for g in groups(home) if all(2 <= f["t_s"] < 4 for f in g["best_faces"])]
    a, b = qt_logo[:2]  # Jim and Wayne, from the photo shown from 0:02 to 0:04
    assert ok(home, "people", "merge", a["id"], b["id"]).startswith(f"{b['id']}: ")
    refused(home, "people", "merge", a["id"], b["id"], reason=f"no unnamed person '{a['id']}'")
    face = json.loads(ok(home, "people", "unnamed", "--json"))
    merged = next(g for g in face if g["id"] == b["id"])
    assert merged["face_count"] == a["face_count"] + b["face_count"]
    moved = ok(home, "people", "move", b["id"], str(merged["best_faces"][0]["face_pk"])).strip()
    new_group = moved.rsplit(" ", 1)[-1]
    assert new_group in {g["id"] for g in groups(home)}
    assert ok(home, "people", "hide", new_group).strip() == f"{new_group}: hidden"
    assert new_group not in {g["id"] for g in groups(home)}
    ok(home, "people", "hide", new_group, "--show")
    assert new_group in {g["id"] for g in groups(home)}

    # Judging a named person's faces: review lists them, reject / confirm / unjudge set the verdict.
    def verdicts() -> dict[int, str | None]:
        listed = json.loads(ok(home, "people", "review", "Jesper", "--all", "--json"))
        return {m["face_pk"]: m["verdict"] for m in listed}

    linked = verdicts()
    confirmed = sorted(face for face, verdict in linked.items() if verdict == "confirmed")
    assert confirmed, "a named group's faces are confirmed (the matcher links others: no verdict)"
    face = str(confirmed[0])
    assert f"face {face}: rejected" in ok(home, "people", "reject", "Jesper", face)
    assert verdicts()[int(face)] == "rejected"
    assert f"face {face}: confirmed" in ok(home, "people", "confirm", "Jesper", face)
    assert verdicts()[int(face)] == "confirmed"
    ok(home, "people", "unjudge", "Jesper", face)
    assert verdicts().get(int(face)) is None, "the matcher decides it again"
    refused(home, "people", "confirm", "Nobody", face, reason="Nobody")


@pytest.mark.parametrize("backend", BACKENDS)
def test_faces_in_no_group_and_merging_people_from_the_command_line(tmp_path, backend) -> None:
    """On the second video alone Jesper's 41-px faces (grand_canyon_2.jpg, from 0:06) start no group;
    on "server" the CLI uses PostgreSQL and S3 through the environment."""
    home = tmp_path / "home"
    with backend_settings(backend, home) as settings:
        env = settings_env(settings)
        assert ok(home, "index", str(people_video("people-second", PEOPLE_SECOND)), **env).endswith(
            "indexed 1\n"
        )
        crops = tmp_path / "crops"
        waiting = json.loads(ok(home, "people", "ungrouped", "--json", "--crops", str(crops), **env))
        assert len(waiting) == 2 and all(6 <= f["t_s"] < 8 and f["cluster_id"] is None for f in waiting)
        assert sorted(p.name for p in crops.iterdir()) == sorted(f"{f['face_pk']}.jpg" for f in waiting)
        assert (crops / f"{waiting[0]['face_pk']}.jpg").read_bytes()[:3] == b"\xff\xd8\xff"
        table = ok(home, "people", "ungrouped", **env)
        assert str(waiting[0]["face_pk"]) in table and "people-second.mp4" in table and "0:06" in table

        # One face to a new person (a group of theirs), the other into Jesper's group, named.
        ok(home, "people", "add", "Jesper Kanal", str(assets.kphotoalbum_photo("jesper.jpg")), **env)
        face, other = (str(f["face_pk"]) for f in waiting)
        assert "now in group" in ok(home, "people", "assign", face, "--person", "Jesper Kanal", **env)
        jesper = groups(home, **env)[0]
        ok(home, "people", "assign", other, "--to", jesper["id"], **env)
        assert ok(home, "people", "ungrouped", **env).strip() == "every face is in a group"
        refused(
            home,
            "people",
            "assign",
            other,
            "--to",
            jesper["id"],
            "--person",
            "Jesper Kanal",
            **env,
            reason="a group or to a person, not both",
        )
        ok(home, "people", "name", jesper["id"], "Jesper", **env)

        # Two people who are one: the kept name finds the scenes of both.
        before = {h["scene_index"] for h in hits(home, "person:Jesper", **env)}
        merged = ok(home, "people", "merge", "Jesper Kanal", "Jesper", **env).strip()
        assert merged.startswith("Jesper: 1 photos, seen in ")
        assert [p["name"] for p in json.loads(ok(home, "people", "list", "--json", **env))] == ["Jesper"]
        assert {h["scene_index"] for h in hits(home, "person:Jesper", **env)} >= before | {3}
        refused(
            home,
            "people",
            "merge",
            "Jesper Kanal",
            "Jesper",
            **env,
            reason="no unnamed person 'Jesper Kanal'",
        )
        refused(home, "people", "merge", "Jesper", "Jesper", **env, reason="merged into themselves")
