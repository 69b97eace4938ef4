"""Blob key layouts: stored data depends on them, so each is pinned to the exact string."""

from __future__ import annotations

from heimdex.blobs import keys


def test_video_keys_are_the_stored_layout():
    assert keys.video_prefix("ab12") == "videos/ab12/"
    assert keys.original_key("ab12", ".mp4") == "videos/ab12/original.mp4"
    assert keys.original_key_template(".mov") == "videos/{video_id}/original.mov"
    assert keys.original_key_template(".mov").format(video_id="ab12") == "videos/ab12/original.mov"
    assert keys.CSP_PROBE_KEY == "videos/csp-probe/original.mp4"


def test_work_keys():
    assert keys.work_prefix("ab12") == "videos/ab12/work/"
    assert keys.work_key("ab12", "media_info.json") == "videos/ab12/work/media_info.json"
    assert keys.frame_key("ab12", 1.5) == "videos/ab12/work/frames/000001500.jpg"
    assert keys.frame_key("ab12", 0.0) == "videos/ab12/work/frames/000000000.jpg"
    assert keys.frame_key("ab12", 3601.2345) == "videos/ab12/work/frames/003601234.jpg"


def test_run_keys():
    assert keys.run_prefix("ab12", "0f0f0f0f") == "videos/ab12/runs/0f0f0f0f/"
    assert keys.thumbnail_key("ab12", "0f0f0f0f", 7) == "videos/ab12/runs/0f0f0f0f/thumbs/0007.webp"
    assert keys.sidecar_key("ab12", "0f0f0f0f", 12) == "videos/ab12/runs/0f0f0f0f/scenes/0012.json"
    assert keys.thumbnail_key("ab12", "r", 12345) == "videos/ab12/runs/r/thumbs/12345.webp"


def test_run_prefix_of_finds_the_run_a_key_lies_under():
    for made in (keys.thumbnail_key("ab12", "r1", 3), keys.sidecar_key("ab12", "r1", 3)):
        assert keys.run_prefix_of(made) == keys.run_prefix("ab12", "r1")
    assert keys.run_prefix_of("") == ""
    assert keys.run_prefix_of("videos/ab12/original.mp4") == ""
    assert keys.run_prefix_of("thumbs/x.jpg") == ""


def test_people_and_upload_keys():
    assert keys.person_prefix("p1") == "people/p1/"
    assert keys.person_photo_key("p1", 0) == "people/p1/0000.jpg"
    assert keys.person_photo_key("p1", 13) == "people/p1/0013.jpg"
    assert keys.upload_prefix("u1") == "uploads/u1/"
    assert keys.upload_key("u1", "abc123", ".mkv") == "uploads/u1/abc123/original.mkv"
    assert keys.upload_key("u1", "abc123", ".mkv").startswith(keys.upload_prefix("u1"))
