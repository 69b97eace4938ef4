"""The player's captions follow the video's language: a Korean video's track is Korean, in real
Chromium. The voice is espeak-ng's Korean, which Whisper's language detection calls Thai, so the
server is told the language (HEIMDEX_ASR_LANGUAGE), as a Korean deployment would be."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import assets
from tests.api.live import PASSWORD, LiveServer, upload, wait_for
from tests.web.test_browser import DESKTOP


@pytest.fixture(scope="module")
def korean_server(tmp_path_factory) -> Iterator[LiveServer]:
    with LiveServer(tmp_path_factory.mktemp("web-korean-home"), asr_language="ko") as live:
        yield live


def counting_video():
    return assets.narrated_video(
        "web-korean-counting",
        [{"image": assets.skimage_photo("coffee"), "say": "하나, 둘, 셋, 넷, 다섯.", "voice": "ko"}],
    )


def test_a_korean_videos_captions_are_a_korean_track(browser, korean_server) -> None:
    path = counting_video()  # made before the client opens: no idle connection while it is built
    with korean_server.user("minji@example.com") as client:
        video = wait_for(client, upload(client, path, "숫자 세기.mp4").json()["videos"][0]["id"])
    assert video["state"] == "indexed" and video["language"] == "ko", video
    context = browser.new_context(viewport=DESKTOP, base_url=korean_server.url, bypass_csp=True)
    page = context.new_page()
    page.goto(f"/app/watch/{video['id']}")
    page.fill("input[name=email]", "minji@example.com")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"**/app/watch/{video['id']}")
    track = page.locator("#player track#captions")
    assert (track.get_attribute("srclang"), track.get_attribute("label")) == ("ko", "Transcript (Korean)")
    page.click("#captions-toggle")
    page.wait_for_function(
        "(() => { const t = document.getElementById('player').textTracks[0];"
        " return t.mode === 'showing' && t.language === 'ko' && t.cues && t.cues.length >= 1; })()"
    )
    cues = page.evaluate("Array.from(document.getElementById('player').textTracks[0].cues, c => c.text)")
    assert any(any("\uac00" <= ch <= "\ud7a3" for ch in cue) for cue in cues), cues
    context.close()
