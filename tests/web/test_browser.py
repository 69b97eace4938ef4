"""The web app in real headless Chromium: log in, upload, watch indexing, search, play, transcript,
people, delete; screenshots of every page (desktop and phone) go to docs/screenshots/."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import assets
from tests.api.live import PASSWORD

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def tour_video() -> Path:
    return assets.narrated_video(
        "web-tour",
        [
            {
                "image": assets.kphotoalbum_photo("donna_2.jpg"),
                "say": "Welcome to the community garden. Today we plant tomatoes and basil along the fence.",
                "seconds": 4.0,
            },
            {
                "image": assets.skimage_photo("astronaut"),
                "say": "The astronaut waved from the launch pad. Then the rocket lifted off into the clouds.",
                "seconds": 4.0,
            },
        ],
    )


def small_video() -> Path:
    return assets.narrated_video(
        "web-small",
        [
            {"image": assets.skimage_photo("coffee"), "say": None, "seconds": 2.0},
            {"image": assets.skimage_photo("chelsea"), "say": None, "seconds": 2.0},
        ],
    )


@pytest.fixture(scope="module")
def page(browser, web_server):
    web_server.user("viewer@example.com").close()
    context = browser.new_context(viewport=DESKTOP, base_url=web_server.url)
    page = context.new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("dialog", lambda dialog: dialog.accept())
    yield page
    context.close()
    assert not errors, errors


def current_time(page) -> float:
    return page.evaluate("document.getElementById('player').currentTime")


def test_login_upload_index_search_play(page, web_server, screenshots) -> None:
    # Log in: the library redirects to the login page and back.
    page.goto("/app")
    assert "/login" in page.url
    page.screenshot(path=screenshots / "login.png")
    page.fill("input[name=email]", "viewer@example.com")
    page.fill("input[name=password]", "not the password")
    page.click("button[type=submit]")
    page.wait_for_selector("#auth-error:not([hidden])")
    assert "wrong email or password" in page.inner_text("#auth-error")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/app")

    # Upload two files at once; both get progress rows and cards that turn "indexed" live (SSE).
    page.set_input_files("#file-input", [str(tour_video()), str(small_video())])
    page.wait_for_selector(".uploads li .pct")
    page.wait_for_selector(".video-card[data-video]", state="attached")
    page.wait_for_function("document.querySelectorAll('.video-card').length === 2")
    page.screenshot(path=screenshots / "library-processing.png")
    page.wait_for_function(
        "document.querySelectorAll('.video-card.state-indexed').length === 2", timeout=180_000
    )
    page.wait_for_selector(".video-card.state-indexed .thumb img")
    tour = page.locator(".video-card", has_text="web-tour.mp4")
    assert "scenes" in tour.locator(".meta").inner_text()
    page.wait_for_timeout(300)  # thumbnails decode
    page.screenshot(path=screenshots / "library.png")

    # Delete a video with its button.
    page.locator(".video-card", has_text="web-small.mp4").locator("[data-action=delete]").click()
    page.wait_for_function("document.querySelectorAll('.video-card').length === 1")
    assert web_server.client().get("/health").status_code == 200

    # Search from the top bar; results are scene cards with thumbnail, time, snippet and why.
    page.fill(".topsearch input", "rocket launch")
    page.press(".topsearch input", "Enter")
    page.wait_for_selector("#results .scene-card")
    first = page.locator("#results .scene-card").first
    assert "rocket" in first.locator(".snippet").inner_html().lower()
    assert "<mark>" in first.locator(".snippet").inner_html()
    assert "Matched by" in first.locator(".why").inner_text()
    page.screenshot(path=screenshots / "search.png")

    # Open the hit: the player starts at the scene.
    href = first.locator("a.title").get_attribute("href")
    start = float(href.split("t=")[1])
    assert start > 1.0  # the rocket is the second scene
    first.locator("a.title").click()
    page.wait_for_url("**/app/watch/**")
    page.wait_for_function("document.getElementById('player').readyState >= 1")
    page.wait_for_function(f"Math.abs(document.getElementById('player').currentTime - {start}) < 0.25")
    page.wait_for_selector(".line.active")
    assert (
        "rocket" in page.inner_text(".tscene.current").lower()
        or "astronaut" in page.inner_text(".tscene.current").lower()
    )
    page.screenshot(path=screenshots / "player.png")

    # Click a line of the first scene: the player seeks there and the line is highlighted.
    line = page.locator(".line", has_text="garden").first
    line_start = float(line.get_attribute("data-start"))
    assert line_start < start
    line.click()
    page.wait_for_function(
        f"Math.abs(document.getElementById('player').currentTime - {line_start}) < 0.6"
        " && document.querySelector('.line.active') !== null"
    )
    page.evaluate("document.getElementById('player').pause()")
    assert abs(current_time(page) - line_start) < 1.5
    assert "garden" in page.locator(".line.active").inner_text().lower()


def test_people_enrol_and_pages(page, screenshots) -> None:
    page.goto("/app/people")
    page.fill("#new-person input[name=name]", "Donna")
    page.set_input_files("#new-person input[type=file]", str(assets.kphotoalbum_photo("donna.jpg")))
    page.click("#new-person button[type=submit]")
    page.wait_for_selector(".person-card[data-person]")
    card = page.locator(".person-card", has_text="Donna")
    assert "1 photo" in card.inner_text() and "seen in 1 scene" in card.inner_text()
    page.screenshot(path=screenshots / "people.png")
    card.locator("a.title").click()
    page.wait_for_selector(".scene-card")
    assert "Donna" in page.locator(".scene-card .chip.person").first.inner_text()
    page.screenshot(path=screenshots / "person.png")
    page.goto("/app/account")
    page.fill("#new-token input[name=name]", "backup script")
    page.click("#new-token button[type=submit]")
    page.wait_for_selector("#token-secret:not([hidden])")
    assert page.inner_text("#token-secret").startswith("hdx_")
    page.screenshot(path=screenshots / "account.png")


def test_phone_layout(browser, page, web_server, screenshots) -> None:
    # The same session (cookies) in a phone-sized viewport.
    context = browser.new_context(
        viewport=PHONE, base_url=web_server.url, is_mobile=True, has_touch=True, device_scale_factor=2
    )
    context.add_cookies(page.context.cookies())
    phone = context.new_page()
    for name, path in (("library", "/app"), ("search", "/app/search?q=garden"), ("people", "/app/people")):
        phone.goto(path)
        phone.wait_for_load_state("networkidle") if name != "library" else phone.wait_for_selector(
            ".video-card"
        )
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{name} scrolls sideways ({width}px)"
        phone.screenshot(path=screenshots / f"phone-{name}.png")
    phone.goto("/app")
    phone.locator(".video-card a.title").first.click()
    phone.wait_for_selector(".line")
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    phone.screenshot(path=screenshots / "phone-player.png")
    phone.goto("/login")
    phone.screenshot(path=screenshots / "phone-login.png")
    context.close()
