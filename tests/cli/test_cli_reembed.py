"""`heimdex reembed`, run as the real command after HEIMDEX_CLIP_MODEL changes (tiny generated
models, tests/tiny_clip.py: plumbing only)."""

from __future__ import annotations

import json

from tests import tiny_clip
from tests.cli.run import heimdex
from tests.cli.test_cli_commands import ok, refused
from tests.e2e.test_clip import cards_video


def _clip_channel(home, query: str, **env: str) -> dict:
    hits = json.loads(ok(home, "search", query, "--json", "--all", "--min-confidence", "low", **env))
    return next(h["channels"]["clip"] for h in hits if "clip" in h["channels"])


def test_reembed_after_a_model_change(tmp_path) -> None:
    a = {"HEIMDEX_CLIP_MODEL": str(tiny_clip.write_immich(tmp_path / "a"))}
    b = {"HEIMDEX_CLIP_MODEL": str(tiny_clip.write_flat(tmp_path / "b", "model-b", axes=(3, 4, 5), bias=0.6))}
    home = tmp_path / "home"
    refused(home, "reembed", reason="no CLIP-style model is configured: set HEIMDEX_CLIP_MODEL")
    ok(home, "index", str(cards_video(tmp_path)), **a)
    by_a = _clip_channel(home, "green", **a)
    assert _clip_channel(home, "green", **b) == by_a, "B configured, not yet embedded: A's vectors serve"
    done = heimdex(home, "reembed", **b)
    assert done.returncode == 0, done.stderr
    frames = int(done.stdout.split()[1])
    assert frames > 0 and done.stdout.splitlines() == [
        f"embedded {frames} frames with model-b",
        "every frame has its vector: searches use it",
    ]
    assert f"{frames}/{frames} frames" in done.stderr, "the progress bar"
    assert _clip_channel(home, "green", **b) != by_a
    again = ok(home, "reembed", **b)
    assert again.startswith("embedded 0 frames with model-b")
