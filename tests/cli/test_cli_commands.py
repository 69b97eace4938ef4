"""The real `heimdex` CLI in subprocesses on a real home folder, every command checked by its exit code
and by what the library holds afterwards.

One small real clip (Jesper's face, then a cat under the caption LIGHTHOUSE TOUR) is indexed once
for the module. On it: `status ID`, `index` again (skipped) and `index --force`, `reprocess`,
`people add/list/rename/remove`, `users create/list`, and last `delete`. Other clips meet the
length limit (a 4 h 02 min file, made in a fraction of a second from one frame a minute) and the size
limit (HEIMDEX_MAX_FILE_BYTES). `migrate` runs on SQLite and on a real PostgreSQL database.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from heimdex.accounts import Accounts, open_account_store
from heimdex.pipeline.graph import STAGES
from heimdex.settings import Settings
from tests import assets, services
from tests.assets import keyframes
from tests.cli.run import heimdex

CAPTION = "LIGHTHOUSE TOUR"
PASSWORD = "correct horse battery"
NO_SUCH_ID = "0123456789abcdef"


def clip() -> Path:
    """Four seconds, two hard-cut scenes without speech: a face (scene 0), a captioned cat (scene 1)."""
    return assets.narrated_video(
        "cli-commands",
        [
            {"image": assets.kphotoalbum_photo("jesper_2.jpg"), "say": None, "seconds": 2.0},
            {"image": assets.skimage_photo("chelsea"), "say": None, "text": CAPTION, "seconds": 2.0},
        ],
    )


def long_clip() -> Path:
    """4 h 02 min of H.264, one 64x64 frame a minute: 242 frames, a few KB, made in well under a second."""
    args = ["-f", "lavfi", "-i", "color=c=gray:size=64x64:rate=1/60", "-t", "14520"]
    return assets.ffmpeg_clip("gray-4h02m.mp4", [*args, "-c:v", "libx264", "-pix_fmt", "yuv420p"])


def ok(home: Path, *args: str, **env: str) -> str:
    proc = heimdex(home, *args, **env)
    assert proc.returncode == 0, (
        f"heimdex {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}"
    )
    return proc.stdout


def refused(home: Path, *args: str, reason: str, **env: str) -> None:
    """The command fails as a user error: exit code 2 and `error: <reason>`, no traceback."""
    proc = heimdex(home, *args, **env)
    assert proc.returncode == 2, (args, proc.returncode, proc.stdout, proc.stderr)
    assert "error:" in proc.stderr and reason in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def videos(home: Path) -> dict[str, dict]:
    return {v["id"]: v for v in json.loads(ok(home, "status", "--json"))}


def stages(home: Path, video_id: str) -> list[dict]:
    detail = json.loads(ok(home, "status", video_id, "--json"))
    assert detail["video"]["id"] == video_id
    return detail["stages"]


def search(home: Path, query: str) -> list[dict]:
    return json.loads(ok(home, "search", query, "--json", "--all"))


@dataclass(frozen=True)
class Library:
    home: Path
    path: Path
    video_id: str


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Library:
    home = tmp_path_factory.mktemp("cli-commands") / "home"
    path = clip()
    assert ok(home, "index", str(path)).splitlines()[-1] == "indexed 1"
    (video,) = videos(home).values()
    assert video["state"] == "indexed" and video["scene_count"] == 2, video
    return Library(home, path, video["id"])


def all_done_once(records: list[dict]) -> bool:
    return [(r["stage"], r["state"], r["attempts"]) for r in records] == [(s, "done", 1) for s in STAGES]


def test_status_of_one_video_shows_each_stage(library) -> None:
    out = ok(library.home, "status", library.video_id)
    assert f"cli-commands.mp4 ({library.video_id}): indexed" in out
    rows = {cells[0]: cells[1:] for cells in _table_rows(out)}
    assert list(rows) == list(STAGES), out
    assert all(cells[0] == "done" and cells[1] == "1" and float(cells[2]) >= 0 for cells in rows.values())
    assert all_done_once(stages(library.home, library.video_id))
    refused(library.home, "status", NO_SUCH_ID, reason=f"no video '{NO_SUCH_ID}'")


def test_index_skips_what_is_indexed_and_force_indexes_again(library) -> None:
    before = stages(library.home, library.video_id)
    assert ok(library.home, "index", str(library.path)).splitlines()[-1] == "indexed 0, already indexed 1"
    assert stages(library.home, library.video_id) == before, "a skipped file ran no stage"

    assert ok(library.home, "index", "--force", str(library.path)).splitlines()[-1] == "indexed 1"
    after = stages(library.home, library.video_id)
    assert all_done_once(after)
    last_run_ended = max(r["finished_at"] for r in before)
    assert all(r["started_at"] >= last_run_ended for r in after), "every stage ran again"
    listed = videos(library.home)
    assert list(listed) == [library.video_id], "the same file is still one video"
    assert listed[library.video_id]["state"] == "indexed" and listed[library.video_id]["scene_count"] == 2
    assert {h["video_id"] for h in search(library.home, CAPTION.lower())} == {library.video_id}


def test_reprocess_indexes_the_video_from_scratch(library) -> None:
    before = stages(library.home, library.video_id)
    out = ok(library.home, "reprocess", library.video_id)
    assert out.splitlines()[-1] == "cli-commands.mp4: indexed"
    after = stages(library.home, library.video_id)
    assert all_done_once(after)
    assert all(r["started_at"] >= max(b["finished_at"] for b in before) for r in after)
    hits = search(library.home, CAPTION.lower())
    assert hits and {h["video_id"] for h in hits} == {library.video_id}
    assert any(CAPTION in h["ocr_text"].upper() for h in hits)
    refused(library.home, "reprocess", NO_SUCH_ID, reason=f"no video '{NO_SUCH_ID}'")


def test_people_list_rename_and_remove(library) -> None:
    home = library.home
    photo = assets.kphotoalbum_photo("jesper.jpg")  # another photo of the face in scene 0
    assert ok(home, "people", "add", "Jesper", str(photo)).strip() == "Jesper: 1 photos, seen in 1 scenes"
    (listed,) = json.loads(ok(home, "people", "list", "--json"))
    assert (listed["name"], listed["photo_count"], listed["scene_count"]) == ("Jesper", 1, 1)
    table = _table_rows(ok(home, "people", "list"))
    assert table == [["Jesper", "1", "1", "", listed["id"]]], table
    (hit,) = search(home, "person:Jesper")
    assert (hit["video_id"], hit["scene_index"], hit["people"]) == (library.video_id, 0, ["Jesper"])

    assert ok(home, "people", "rename", "Jesper", "Jesper Hansen").strip() == "renamed to Jesper Hansen"
    assert [p["name"] for p in json.loads(ok(home, "people", "list", "--json"))] == ["Jesper Hansen"]
    (hit,) = search(home, 'person:"Jesper Hansen"')
    assert (hit["scene_index"], hit["people"]) == (0, ["Jesper Hansen"])
    refused(home, "search", "person:Jesper", reason="no enrolled person called 'Jesper'")
    # One line, however narrow the terminal (rich wrapped it inside "Mary Ann"), and the user's
    # [brackets] printed, not read as markup.
    hint = 'person: needs a name after the colon, as in person:Donna or person:"Mary Ann"'
    refused(home, "search", "person: garden", reason=hint, COLUMNS="60")
    refused(home, "search", 'person:"[bold]Jo"', reason="no enrolled person called '[bold]Jo'")
    donna = assets.kphotoalbum_photo("donna.jpg")
    ok(home, "people", "add", "Donna", str(donna))
    refused(
        home, "people", "rename", "Jesper Hansen", "Donna", reason="a person named 'Donna' already exists"
    )
    people = {p["name"]: p["id"] for p in json.loads(ok(home, "people", "list", "--json"))}
    assert sorted(people) == ["Donna", "Jesper Hansen"], "the refused rename changed nothing"

    assert ok(home, "people", "remove", "Jesper Hansen").strip() == "removed Jesper Hansen"
    donna_id = people["Donna"]
    assert ok(home, "people", "remove", donna_id).strip() == f"removed {donna_id}"  # by id too
    assert json.loads(ok(home, "people", "list", "--json")) == []
    assert not (home / "blobs" / "people" / listed["id"]).exists(), "his photo went with him"
    refused(home, "search", 'person:"Jesper Hansen"', reason="no enrolled person")
    hits = search(home, CAPTION.lower())
    assert hits and all(h["people"] == [] for h in hits), "no scene still names him"
    refused(home, "people", "remove", "Jesper Hansen", reason="no person 'Jesper Hansen'")


def test_a_video_over_4_hours_is_refused_with_its_length(library) -> None:
    home, path = library.home, long_clip()
    proc = heimdex(home, "index", str(path))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[-1] == "indexed 0, failed 1"
    reason = "video is 4:02:00 long; the limit is 4:00:00"  # the default limit: no setting changed
    assert f"{path}: upload_validate: {reason}" in proc.stderr, proc.stderr
    (failed,) = [v for v in videos(home).values() if v["filename"] == path.name]
    assert failed["state"] == "failed" and failed["error"] == f"upload_validate: {reason}"
    records = stages(home, failed["id"])
    assert [(r["stage"], r["state"]) for r in records] == [("upload_validate", "failed")], "nothing else ran"
    assert ok(home, "delete", failed["id"]).strip() == f"deleted {path.name} ({failed['id']})"


def test_the_file_size_limit_refuses_a_byte_over_and_takes_a_file_at_the_limit(library) -> None:
    home, path = library.home, assets.tiny_clip()
    size = path.stat().st_size
    proc = heimdex(home, "index", str(path), HEIMDEX_MAX_FILE_BYTES=str(size - 1))
    assert proc.returncode == 1 and proc.stdout.splitlines()[-1] == "indexed 0, failed 1", proc.stderr
    (failed,) = [v for v in videos(home).values() if v["filename"] == path.name]
    assert failed["state"] == "failed" and "the limit is" in failed["error"], failed
    assert failed["error"].startswith("upload_validate: file is")
    assert [(r["stage"], r["state"]) for r in stages(home, failed["id"])] == [("upload_validate", "failed")]

    # At the limit the file is taken: `index` tries a failed file again.
    out = ok(home, "index", str(path), HEIMDEX_MAX_FILE_BYTES=str(size))
    assert out.splitlines()[-1] == "indexed 1"
    again = videos(home)[failed["id"]]
    assert again["state"] == "indexed" and again["error"] is None and again["info"]["size_bytes"] == size
    ok(home, "delete", failed["id"])


def test_the_size_limit_reason_tells_the_file_from_the_limit(tmp_path) -> None:
    """Someone who sets HEIMDEX_MAX_FILE_BYTES to half a file's size is told two different sizes."""
    path = assets.tiny_clip()
    limit = path.stat().st_size // 2
    proc = heimdex(tmp_path / "home", "index", str(path), HEIMDEX_MAX_FILE_BYTES=str(limit))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    (failed,) = videos(tmp_path / "home").values()
    sizes = re.fullmatch(r"upload_validate: file is (.+); the limit is (.+)", failed["error"])
    assert sizes is not None, failed["error"]
    assert sizes[1] != sizes[2], f"the file is twice the limit, yet: {failed['error']!r}"


def test_users_create_and_list(library) -> None:
    home = library.home
    out = ok(home, "users", "create", "Root@Example.com", "--admin", HEIMDEX_PASSWORD=PASSWORD)
    root_id = re.fullmatch(r"created admin root@example\.com \((\w+)\)", out.strip())
    assert root_id, out
    out = ok(home, "users", "create", "bob@example.com", "--password", PASSWORD)
    bob_id = re.fullmatch(r"created bob@example\.com \((\w+)\)", out.strip())
    assert bob_id, out
    refused(home, "users", "create", "BOB@example.com", "--password", PASSWORD, reason="already exists")
    refused(
        home, "users", "create", "carl@example.com", "--password", "short", reason="at least 8 characters"
    )

    assert _table_rows(ok(home, "users", "list")) == [
        ["root@example.com", "yes", root_id[1]],
        ["bob@example.com", "", bob_id[1]],
    ]
    listed = json.loads(ok(home, "users", "list", "--json"))
    assert [(u["email"], u["is_admin"]) for u in listed] == [
        ("root@example.com", True),
        ("bob@example.com", False),
    ]
    # The accounts are real: they log in to the server that `heimdex serve` would run on this home.
    settings = Settings(home=home)
    accounts = Accounts(settings, open_account_store(settings.resolved_database_url))
    session = accounts.login("bob@example.com", PASSWORD, "127.0.0.1")
    assert session.user.id == bob_id[1] and not session.user.is_admin
    assert accounts.login("root@example.com", PASSWORD, "127.0.0.1").user.is_admin


def test_migrate_on_sqlite_has_nothing_to_do(library) -> None:
    out = ok(library.home, "migrate")
    assert "SQLite databases are created and upgraded automatically; nothing to do." in out
    assert list(videos(library.home)) == [library.video_id], "the library is untouched"


def test_migrate_creates_and_upgrades_a_postgres_schema(tmp_path) -> None:
    from heimdex.db.postgres import head_revision

    home = tmp_path / "home"
    with services.fresh_postgres(migrated=False) as url:
        assert _tables(url) == set()
        out = ok(home, "migrate", "--url", url)
        assert out.strip() == f"database is at schema revision {head_revision()}"
        assert _revision(url) == head_revision()
        assert {"videos", "scenes", "users", "scene_windows"} <= _tables(url)
        deployment = {"HEIMDEX_DATABASE_URL": url}
        ok(home, "users", "create", "ann@example.com", "--password", PASSWORD, **deployment)

        # A database one revision behind (0006 only adds scene_windows), with an account in it, is
        # brought to the head, keeping the account.
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DROP TABLE scene_windows")
            conn.execute("UPDATE alembic_version SET version_num = '0005'")
        out = ok(home, "migrate", **deployment)  # the URL from HEIMDEX_DATABASE_URL
        assert out.strip() == f"database is at schema revision {head_revision()}"
        assert _revision(url) == head_revision() and "scene_windows" in _tables(url)
        assert [u["email"] for u in json.loads(ok(home, "users", "list", "--json", **deployment))] == [
            "ann@example.com"
        ]
        tables = _tables(url)
        ok(home, "migrate", "--url", url)  # once more: nothing to do, nothing lost
        assert _tables(url) == tables and _revision(url) == head_revision()

    proc = heimdex(home, "migrate", "--url", "postgresql://heimdex:s3cret-pw@127.0.0.1:1/nowhere")
    assert proc.returncode == 2 and "could not migrate the PostgreSQL database" in proc.stderr, proc.stderr
    assert "s3cret-pw" not in proc.stdout + proc.stderr, "the password is not printed"


def test_export_subtitles_and_clips(library, tmp_path) -> None:
    import av

    # The clip has no speech: valid, empty subtitles.
    assert ok(library.home, "export", "subtitles", library.video_id) == "WEBVTT\n\n"
    srt_file = tmp_path / "out.srt"
    ok(library.home, "export", "subtitles", library.video_id, "--format", "srt", "-o", str(srt_file))
    assert srt_file.read_text() == ""
    refused(library.home, "export", "subtitles", NO_SUCH_ID, reason=f"no video '{NO_SUCH_ID}'")

    def length(path: Path) -> float:
        with av.open(str(path)) as container:
            times = [frame.time for frame in container.decode(video=0)]
            return times[-1] + 1 / float(container.streams.video[0].average_rate)

    scene = json.loads(ok(library.home, "search", CAPTION.lower(), "--json"))[0]
    assert scene["scene_id"].startswith(f"{library.video_id}-")
    exact = tmp_path / "scene.mp4"
    proc = heimdex(library.home, "export", "clip", scene["scene_id"], "--exact", "-o", str(exact))
    assert proc.returncode == 0 and "re-encoded" in proc.stderr, proc.stderr
    assert length(exact) == pytest.approx(scene["end_s"] - scene["start_s"], abs=0.1)
    between = tmp_path / "between.mp4"
    ok(
        library.home,
        "export",
        "clip",
        library.video_id,
        "--start",
        "0.5",
        "--end",
        "1.5",
        "--exact",
        "-o",
        str(between),
    )
    assert length(between) == pytest.approx(1.0, abs=0.1)

    # By default the clip is copied: it starts on the source's last keyframe at or before the scene
    # (up to one keyframe interval early, as documented) and says where it really runs.
    later = next(h for h in search(library.home, CAPTION.lower()) if h["scene_index"] == 1)  # from 2 s
    copied = tmp_path / "copied.mp4"
    proc = heimdex(library.home, "export", "clip", later["scene_id"], "-o", str(copied))
    assert proc.returncode == 0 and "copied from the keyframe" in proc.stderr, proc.stderr
    said = re.search(r": ([\d.]+)-([\d.]+) s of the video", proc.stderr)
    start, end = float(said[1]), float(said[2])
    before = [k for k in keyframes(library.path) if k <= later["start_s"] + 1e-3]
    assert start == pytest.approx(before[-1], abs=0.01), (start, before)
    assert later["end_s"] - 0.05 <= end <= later["end_s"] + 0.5, (end, later)
    assert length(copied) == pytest.approx(end - start, abs=0.1)
    refused(
        library.home, "export", "clip", library.video_id, "--start", "1", "-o", str(between), reason="--end"
    )
    refused(
        library.home,
        "export",
        "clip",
        library.video_id,
        "--start",
        "3",
        "--end",
        "1",
        "-o",
        str(between),
        reason="start before end",
    )


def test_export_a_reel_of_both_scenes(library, tmp_path) -> None:
    import av

    reel = tmp_path / "reel.mp4"
    scenes = [f"{library.video_id}-0001", f"{library.video_id}-0000"]
    proc = heimdex(library.home, "export", "reel", *scenes, "--no-fade", "-o", str(reel))
    assert proc.returncode == 0 and "2 scenes" in proc.stderr, proc.stderr
    assert re.search(r"reel .*━+ +100%", proc.stderr), "a progress bar, at its end: " + proc.stderr
    with av.open(str(reel)) as container:
        brightness = [float(f.to_ndarray(format="gray").mean()) for f in container.decode(video=0)]
        rate = float(container.streams.video[0].average_rate)
    assert len(brightness) / rate == pytest.approx(4.0, abs=0.2), "both scenes of the 4 s clip"
    boundary = round(2.0 * rate)  # scene 1 lasts 2 s
    assert min(brightness[:3] + brightness[boundary - 2 : boundary + 2]) > 30, "hard cuts: no black"
    refused(library.home, "export", "reel", NO_SUCH_ID + "-0000", "-o", str(reel), reason="no scene")


def test_export_a_reel_of_one_searchs_hits(library, tmp_path) -> None:
    import av

    hits = json.loads(ok(library.home, "search", CAPTION.lower(), "--json", "--limit", "5"))
    assert hits, "the caption is found"
    reel = tmp_path / "searched.mp4"
    proc = heimdex(library.home, "export", "reel", "--search", CAPTION.lower(), "-o", str(reel))
    assert proc.returncode == 0 and f"{len(hits)} scenes" in proc.stderr, proc.stderr
    with av.open(str(reel)) as container:
        frames = sum(1 for _ in container.decode(video=0))
        seconds = frames / float(container.streams.video[0].average_rate)
    assert seconds == pytest.approx(sum(h["end_s"] - h["start_s"] for h in hits), abs=0.2)
    refused(library.home, "export", "reel", "-o", str(reel), reason="give scene ids or --search")
    both = ("export", "reel", f"{library.video_id}-0000", "--search", "cat", "-o", str(reel))
    refused(library.home, *both, reason="one of them")


def test_delete_removes_the_video_from_status_search_and_storage(library) -> None:
    # Last in this module: the video is gone after it.
    """Last: the module's video goes."""
    home, video_id = library.home, library.video_id
    assert (home / "blobs" / "videos" / video_id).is_dir()
    assert ok(home, "delete", video_id).strip() == f"deleted cli-commands.mp4 ({video_id})"
    assert video_id not in videos(home)
    assert "0 videos in" in ok(home, "status")
    refused(home, "status", video_id, reason=f"no video '{video_id}'")
    assert search(home, CAPTION.lower()) == []
    assert not (home / "blobs" / "videos" / video_id).exists(), "its files went with it"
    refused(home, "delete", video_id, reason=f"no video '{video_id}'")


def _table_rows(out: str) -> list[list[str]]:
    """The body rows of a rich table, as stripped cells."""
    return [
        [cell.strip() for cell in line.strip("│").split("│")]
        for line in out.splitlines()
        if line.startswith("│")
    ]


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
    return {name for (name,) in rows}


def _revision(url: str) -> str:
    with psycopg.connect(url) as conn:
        (revision,) = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    return revision
