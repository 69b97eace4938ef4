"""`heimdex people unnamed|name|merge|move|hide|cluster` on a real library of KPhotoAlbum's photos."""

from __future__ import annotations

import json

from tests.cli.test_cli_commands import ok, refused, search
from tests.e2e.conftest import PEOPLE_FIRST, people_video


def groups(home, *flags: str) -> list[dict]:
    return json.loads(ok(home, "people", "unnamed", "--json", *flags))


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
