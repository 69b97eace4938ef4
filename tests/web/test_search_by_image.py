"""Search by photo and "more like this" in Chromium: a photo chosen or dropped on the search page,
the "More like this" link of a scene card, a bad file, and another user's scene."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest

from tests import assets
from tests.api.live import PASSWORD, LiveServer, upload, wait_for
from tests.e2e.test_more_like_this import LIBRARY, library_video

DESKTOP = {"width": 1280, "height": 900}


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> Iterator[tuple[LiveServer, dict]]:
    with LiveServer(tmp_path_factory.mktemp("web-image-home")) as server:
        with server.user("looker@example.com") as client:
            r = upload(client, library_video(), "holiday.mp4")
            assert r.status_code == 201, r.text
            video = wait_for(client, r.json()["videos"][0]["id"])
            assert video["state"] == "indexed", video["error"]
            scenes = client.get(f"/videos/{video['id']}/scenes").json()
        server.user("other@example.com").close()
        yield server, {[*LIBRARY, "coffee"][s["index"]]: s for s in scenes}


def logged_in(browser, server: LiveServer, email: str):
    context = browser.new_context(viewport=DESKTOP, base_url=server.url, bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto("/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/app")
    return context, page


def first_scene(page) -> str:
    page.wait_for_selector("#results .scene-card")
    return page.locator("#results .scene-card").first.get_attribute("data-scene")


def test_choose_or_drop_a_photo_then_more_like_this(browser, live, screenshots) -> None:
    server, scenes = live
    context, page = logged_in(browser, server, "looker@example.com")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto("/app/search?min_confidence=low")
        page.set_input_files("#image-input", str(assets.kphotoalbum_photo("bar55_2.jpg")))
        assert first_scene(page) == scenes["bar55"]["id"]
        assert "look" in page.locator("#results .scene-card .why").first.inner_text()
        assert "look like your photo" in page.inner_text("#result-count")
        page.screenshot(path=screenshots / "search-by-photo.png")

        # Dropped rather than chosen: the same search.
        photo = base64.b64encode(assets.kphotoalbum_photo("spiff_2.jpg").read_bytes()).decode()
        page.evaluate(
            """(b64) => {
                const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
                const dt = new DataTransfer();
                dt.items.add(new File([bytes], "spiff.jpg", { type: "image/jpeg" }));
                document.getElementById("image-drop").dispatchEvent(
                    new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));
            }""",
            photo,
        )
        page.wait_for_function(
            f"document.querySelector('#results .scene-card')?.dataset.scene === {scenes['spiff']['id']!r}"
        )

        # More like this: the card's link searches by that scene, which is left out of its results.
        page.locator("#results .scene-card").first.locator("a.more-like-this").click()
        page.wait_for_url("**/app/search?like=**")
        page.wait_for_selector("#like-example")
        shown = page.eval_on_selector_all("#results .scene-card", "cards => cards.map(c => c.dataset.scene)")
        assert scenes["spiff"]["id"] not in shown and shown
        page.screenshot(path=screenshots / "more-like-this.png")

        # Not a photo: the reason, in place of the results.
        page.set_input_files(
            "#image-input", files=[{"name": "notes.jpg", "mimeType": "image/jpeg", "buffer": b"not a photo"}]
        )
        page.wait_for_selector("#search-error")
        assert "not a supported image" in page.inner_text("#search-error")
    finally:
        context.close()
    assert not errors, errors


def test_another_users_scene_is_not_found(browser, live) -> None:
    server, scenes = live
    context, page = logged_in(browser, server, "other@example.com")
    try:
        page.goto(f"/app/search?like={scenes['pool']['id']}")
        assert "no scene" in page.inner_text(".error")
        assert page.locator("#results .scene-card").count() == 0
    finally:
        context.close()
