"""The web app in real headless Chromium: log in, upload, watch indexing, search, play, transcript,
people, delete; screenshots of every page (desktop and phone) go to build/screenshots/
(`make screenshots` refreshes the committed ones in docs/screenshots/)."""

from __future__ import annotations

import re
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import av
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
    # Playwright's wait_for_function evaluates its expression with eval(), which the app's
    # Content-Security-Policy forbids; test_no_page_breaks_the_content_security_policy checks the policy.
    context = browser.new_context(viewport=DESKTOP, base_url=web_server.url, bypass_csp=True)
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
    params = parse_qs(urlsplit(href).query)
    start = float(params["t"][0])
    assert params["q"] == ["rocket launch"], "the player gets the query, to mark its matches"
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
    # The highlight follows the player's `seeked` and `timeupdate` events: wait for it to reach the
    # clicked line, not for any line to be active (the previous one still is for a moment).
    page.wait_for_function(
        f"Math.abs(document.getElementById('player').currentTime - {line_start}) < 0.6"
        f" && document.querySelector('.line.active')?.dataset.start === {line.get_attribute('data-start')!r}"
    )
    page.evaluate("document.getElementById('player').pause()")
    assert abs(current_time(page) - line_start) < 1.5
    assert "garden" in page.locator(".line.active").inner_text().lower()


def test_watch_page_marks_matches_shows_captions_and_shares_a_moment(
    page, browser, web_server, screenshots, tmp_path
) -> None:
    page.goto("/app")
    page.locator(".video-card", has_text="web-tour.mp4").locator("a.title").click()
    page.wait_for_url("**/app/watch/**")
    video_id = urlsplit(page.url).path.rsplit("/", 1)[1]

    # Search in this video: the matches are marked on a timeline; next and previous jump to them.
    page.fill("#in-video-q", "rocket garden")
    page.press("#in-video-q", "Enter")
    page.wait_for_selector(".hit-marker")
    assert (
        urlsplit(page.url).path == f"/app/watch/{video_id}"
        and page.input_value("#in-video-q") == "rocket garden"
    )
    starts = [float(s) for s in page.eval_on_selector_all(".hit-marker", "ms => ms.map(m => m.dataset.seek)")]
    assert starts == sorted(starts) and len(starts) == 2, "one match per scene: the garden, then the rocket"
    assert page.inner_text("#hit-count") == "2 matches"
    page.wait_for_function("document.getElementById('player').readyState >= 1")

    def at(t: float) -> None:
        page.wait_for_function(f"Math.abs(document.getElementById('player').currentTime - {t}) < 0.3")

    # From the start: next (button) is the second match, next (key) wraps to the first; previous
    # (key) from the first wraps to the last, previous (button) goes back to the first.
    for move, expected in (("#next-hit", 1), ("n", 0), ("p", 1), ("#prev-hit", 0)):
        page.click(move) if move.startswith("#") else page.keyboard.press(move)
        at(starts[expected])
    page.evaluate("document.getElementById('player').pause()")
    page.screenshot(path=screenshots / "player-matches.png")

    # The box searches with video:ID, the search syntax of the whole library; "List them" is that
    # search on the search page, which lists the same scenes.
    listed = page.get_attribute("#in-video-list", "href")
    assert parse_qs(urlsplit(listed).query)["q"] == [f"video:{video_id} rocket garden"], listed
    page.goto(listed)
    page.wait_for_selector("#results .scene-card")
    times = page.eval_on_selector_all("#results .scene-card a.title", "as => as.map(a => a.href)")
    assert sorted(float(parse_qs(urlsplit(t).query)["t"][0]) for t in times) == starts, times
    page.go_back()
    page.wait_for_selector(".hit-marker")

    # Every scene of the transcript has a clip to download: an MP4 of that scene, opened with PyAV.
    sections = page.locator(".tscene")
    assert sections.count() == 2 and page.locator(".tscene a.clip-link").count() == 2
    second = sections.nth(1)
    with page.expect_download() as download:
        second.locator("a.clip-link").click()
    clip = tmp_path / download.value.suggested_filename
    download.value.save_as(clip)
    scene_length = float(second.get_attribute("data-end")) - float(second.get_attribute("data-start"))
    with av.open(str(clip)) as container:
        seconds = float(container.duration) / av.time_base
        assert container.streams.video and container.streams.audio
    assert clip.suffix == ".mp4" and abs(seconds - scene_length) < 0.5, (seconds, scene_length)

    # Captions: the transcript as a subtitle track in the video's language, off until asked for,
    # toggled by button and key.
    track = page.locator("#player track#captions")
    assert (track.get_attribute("srclang"), track.get_attribute("label")) == ("en", "Transcript (English)")
    page.wait_for_function("document.getElementById('player').textTracks[0]?.mode === 'hidden'")
    assert page.evaluate("document.getElementById('player').textTracks[0].language") == "en"
    page.click("#captions-toggle")
    page.wait_for_function(
        "(() => { const t = document.getElementById('player').textTracks[0];"
        " return t.mode === 'showing' && t.cues && t.cues.length >= 2; })()"
    )
    cues = page.evaluate("Array.from(document.getElementById('player').textTracks[0].cues, c => c.text)")
    assert any("garden" in c.lower() for c in cues) and any("rocket" in c.lower() for c in cues), cues
    assert page.get_attribute("#captions-toggle", "aria-pressed") == "true"
    page.keyboard.press("c")
    page.wait_for_function("document.getElementById('player').textTracks[0].mode === 'hidden'")

    # Subtitle downloads, with the page's own session.
    for link, head in (("WebVTT", "WEBVTT"), ("SubRip", "1\n")):
        href = page.get_attribute(f".player-tools a:text('{link}')", "href")
        r = page.request.get(href)
        assert (
            r.status == 200 and r.text().startswith(head) and "attachment" in r.headers["content-disposition"]
        )

    # A link to this moment, to the second, copied to the clipboard by the button.
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.evaluate(f"document.getElementById('player').currentTime = {starts[1]}")
    page.click("#share-moment")
    page.wait_for_function("document.getElementById('share-moment').dataset.link")
    link = page.get_attribute("#share-moment", "data-link")
    assert re.fullmatch(rf"http://[^/]+/app/watch/{video_id}\?t={int(starts[1])}", link), link
    assert page.evaluate("navigator.clipboard.readText()") == link
    page.context.clear_permissions()
    page.goto(link)
    page.wait_for_function(
        f"Math.abs(document.getElementById('player').currentTime - {int(starts[1])}) < 0.3"
    )

    # Opened in a browser without a session, the link asks for a login and then plays the moment.
    other = browser.new_context(viewport=DESKTOP, base_url=web_server.url, bypass_csp=True)
    tab = other.new_page()
    tab.goto(link)
    assert "/login" in tab.url
    tab.fill("input[name=email]", "viewer@example.com")
    tab.fill("input[name=password]", PASSWORD)
    tab.click("button[type=submit]")
    tab.wait_for_url(f"**/app/watch/{video_id}?t={int(starts[1])}")
    tab.wait_for_function(f"Math.abs(document.getElementById('player').currentTime - {int(starts[1])}) < 0.3")
    other.close()


def test_pick_search_hits_and_make_a_reel(page, screenshots) -> None:
    page.goto("/app/search?q=" + "garden rocket".replace(" ", "+"))
    page.wait_for_selector("#results .scene-card")
    assert page.is_hidden("#reel-bar"), "no bar until a scene is picked"
    boxes = page.locator("#results .pick")
    assert boxes.count() >= 2
    boxes.nth(0).check()
    boxes.nth(1).check()
    page.wait_for_selector("#reel-bar:not([hidden])")
    assert page.inner_text("#reel-count") == "2 scenes picked"
    # The job's progress shows while it runs: what the bar shows is sampled from the click on.
    page.evaluate(
        """() => {
          const bar = document.getElementById('reel-progress');
          window.__reelBar = [];
          window.__reelSampler = setInterval(() => window.__reelBar.push([bar.hidden, bar.value]), 40);
        }"""
    )
    page.click("#make-reel")
    page.wait_for_selector("#reel-download:not([hidden])", timeout=120_000)
    samples = page.evaluate("clearInterval(window.__reelSampler), window.__reelBar")
    shown = [value for hidden, value in samples if not hidden]
    assert shown and shown == sorted(shown), samples
    assert page.is_hidden("#reel-progress"), "the bar goes once the reel is ready"
    assert page.evaluate("document.getElementById('reel-progress').value") == 1, "it ended full"
    page.screenshot(path=screenshots / "search-reel.png")
    r = page.request.get(page.get_attribute("#reel-download", "href"))
    assert r.status == 200 and r.headers["content-type"] == "video/mp4" and r.body()[4:8] == b"ftyp"


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


def test_possible_match_confirm_and_reject(page, web_server, screenshots) -> None:
    """A face a little beyond the match distance is "possibly" the person: a dashed chip on its scene,
    "N to review" on the people page, a card on the person's page that confirms or rejects it.
    Uses the viewer's tour video and Donna from the tests above."""
    heimdex = web_server.ctx.heimdex
    viewer = web_server.ctx.accounts.store.find_user_by_email("viewer@example.com")
    donna = heimdex.store.get_person(viewer.id, "Donna")
    found = heimdex.person_matches(donna.id, viewer.id)
    assert found and {m.scene_id for m in found} == {found[0].scene_id}, found
    scene_id = found[0].scene_id
    faces = [m.face_pk for m in found]

    def make_possible() -> None:
        # What the matcher stores for these faces had they been found in the margin above the match
        # distance: the same links, marked possible (a verdict left on a face is lifted first).
        for face in faces:
            heimdex.store.set_match_verdict(viewer.id, donna.id, face, None)
        heimdex.store.replace_person_matches(
            viewer.id, donna.id, [(m.face_pk, m.distance, True) for m in found]
        )
        person = heimdex.store.get_person(viewer.id, donna.id)
        assert (person.scene_count, person.possible_count) == (0, 1)

    make_possible()
    page.goto("/app/people")
    card = page.locator(".person-card", has_text="Donna")
    assert "seen in 0 scenes · 1 to review" in card.inner_text()

    # The scene shows Donna as a possible person: in search results and on the player's transcript.
    page.goto("/app/search?q=garden")
    hit = page.locator(f'#results .scene-card[data-scene="{scene_id}"]')
    assert hit.locator(".chip.person.possible").inner_text() == "Donna?"
    assert "confirm on the person page" in hit.locator(".chip.possible").get_attribute("title")
    assert hit.locator(".chip.person:not(.possible)").count() == 0
    page.goto(hit.locator("a.title").get_attribute("href"))
    assert page.locator(".tscene .chip.person.possible").first.inner_text() == "Donna?"

    # Reject: the card goes, the counts follow, and the face is no longer Donna's.
    page.goto("/app/people")
    card.locator("a.review-link").click()
    page.wait_for_selector("#possible .review-card")
    assert page.url.endswith(f"/app/people/{donna.id}#possible")
    review = page.locator("#possible .review-card")
    assert review.count() == 1
    assert review.locator(".thumb img").get_attribute("src") == f"/scenes/{scene_id}/thumbnail"
    assert "distance" in review.inner_text() and "web-tour.mp4" in review.inner_text()
    assert page.locator("#person-scenes .scene-card").count() == 0
    page.wait_for_timeout(300)  # the thumbnail decodes
    page.screenshot(path=screenshots / "person-possible.png")
    review.get_by_role("button", name="Not Donna").click()
    page.locator("#possible").wait_for(state="detached")
    assert page.locator("#review-count").is_hidden()
    assert page.inner_text("#scene-count") == "seen in 0 scenes"
    assert {m.verdict for m in heimdex.person_matches(donna.id, viewer.id)} == {"rejected"}

    # Confirm: the card joins Donna's scenes at once, and for good.
    make_possible()
    page.reload()
    page.get_by_role("button", name="It's Donna").click()
    page.locator("#possible").wait_for(state="detached")
    assert page.inner_text("#scene-count") == "seen in 1 scene"
    joined = page.locator(f'#person-scenes .scene-card[data-scene="{scene_id}"]')
    assert joined.locator(".chip.person").inner_text() == "Donna"
    assert page.locator("#person-empty").is_hidden()
    assert {m.verdict for m in heimdex.person_matches(donna.id, viewer.id)} == {"confirmed"}
    page.reload()
    assert page.locator("#possible").count() == 0
    sure = page.locator(f'#person-scenes .scene-card[data-scene="{scene_id}"]')
    assert sure.locator(".chip.person").inner_text() == "Donna"
    assert sure.locator(".chip.possible").count() == 0
    assert "seen in 1 scene" in page.inner_text(".person-head")
    page.goto("/app/people")
    assert "to review" not in page.locator(".person-card", has_text="Donna").inner_text()

    # "Not Donna" on a sure scene takes it off her page (the test then leaves Donna as it found her).
    page.goto(f"/app/people/{donna.id}")
    sure.get_by_role("button", name="Not Donna").click()
    sure.wait_for(state="detached")
    assert page.inner_text("#scene-count") == "seen in 0 scenes"
    assert page.locator("#person-empty").is_visible()
    for face in faces:
        heimdex.store.set_match_verdict(viewer.id, donna.id, face, None)
    heimdex.store.replace_person_matches(viewer.id, donna.id, [(m.face_pk, m.distance, False) for m in found])
    assert heimdex.store.get_person(viewer.id, donna.id).scene_count == 1


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


def test_upload_with_a_korean_file_name(page, web_server) -> None:
    """Chromium sends the name as raw UTF-8 in the multipart body (RFC 7578): it is kept as typed."""
    name = "회의 녹화 café.mp4"
    page.goto("/app")
    if "/login" in page.url:  # when run alone
        page.fill("input[name=email]", "viewer@example.com")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url("**/app")
    page.set_input_files(
        "#file-input", files=[{"name": name, "mimeType": "video/mp4", "buffer": small_video().read_bytes()}]
    )
    card = page.locator(".video-card", has_text=name)
    card.wait_for()
    assert card.locator("a.title").inner_text() == name
    viewer = web_server.ctx.accounts.store.find_user_by_email("viewer@example.com")
    (video,) = [v for v in web_server.ctx.heimdex.store.list_videos(viewer.id) if v.filename == name]
    page.wait_for_selector(f'.video-card[data-video="{video.id}"].state-indexed', timeout=180_000)
    card.locator("[data-action=delete]").click()
    page.locator(f'.video-card[data-video="{video.id}"]').wait_for(state="detached")


# ---------------------------------------------------------------- security: redirects and the CSP
CSP_WATCH = """window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => window.__csp.push(
  `${e.effectiveDirective} blocked ${e.blockedURI || "inline"} on ${location.pathname}`));"""


def test_login_with_an_off_site_next_stays_on_the_site(browser, web_server) -> None:
    web_server.user("redirect@example.com").close()
    context = browser.new_context(viewport=DESKTOP, base_url=web_server.url)
    page = context.new_page()
    page.set_default_timeout(20_000)

    def log_in(path: str, tamper: str | None = None) -> str:
        page.goto(path)
        if tamper is not None:  # what app.js does if the page's data-next says so anyway
            page.evaluate("next => { document.getElementById('auth-form').dataset.next = next; }", tamper)
        page.fill("input[name=email]", "redirect@example.com")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(lambda url: "/login" not in url)
        return page.url

    home = f"{web_server.url}/app"
    for next_url in ("/%5Cevil.example", "/%09/evil.example", "//evil.example", "/%5C/evil.example"):
        assert log_in(f"/login?next={next_url}") == home, next_url
    for tampered in ("/\\evil.example", "/\t/evil.example", "https://evil.example/", "//evil.example"):
        assert log_in("/login", tamper=tampered) == home, tampered
    assert log_in("/login?next=/app/people") == f"{web_server.url}/app/people"
    context.close()


def test_no_page_breaks_the_content_security_policy(browser, page, web_server) -> None:
    """Every page as the viewer (after the tests above: a video, Donna, a token), and the API
    reference, whose inline script must run (it then fails: Swagger UI's CDN is out of reach)."""
    context = browser.new_context(viewport=DESKTOP, base_url=web_server.url)
    context.add_cookies(page.context.cookies())
    context.add_init_script(CSP_WATCH)
    tab = context.new_page()
    tab.set_default_timeout(20_000)
    refused: list[str] = []
    errors: list[str] = []
    tab.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    violations: list[str] = []
    tab.goto("/app")
    tab.wait_for_selector(".video-card .bar span", state="attached")
    watch = tab.locator(".video-card a.title").first.get_attribute("href")
    person = None
    for path in ("/app", "/app/search?q=garden", watch, "/app/people", "/app/account", "/login", "/register"):
        tab.goto(path)
        tab.wait_for_load_state("networkidle")
        if path == watch:  # the player loaded the video: media-src allows it (no wait_for_function: eval)
            deadline = time.monotonic() + 20
            while tab.evaluate("document.getElementById('player').readyState") < 1:
                assert time.monotonic() < deadline, "the player did not load the video"
                tab.wait_for_timeout(100)
        if path == "/app/people":
            person = tab.locator(".person-card a.title").first.get_attribute("href")
        violations += tab.evaluate("window.__csp")
    tab.goto(person)
    tab.wait_for_selector(".scene-card img")
    violations += tab.evaluate("window.__csp")
    assert not violations and not refused, (violations, refused)
    assert not errors, errors

    tab.goto("/docs")
    tab.wait_for_load_state("load")
    tab.wait_for_timeout(300)
    violations += tab.evaluate("window.__csp")
    assert not violations and not refused, (violations, refused)
    assert any("SwaggerUIBundle is not defined" in e for e in errors), errors  # the inline script ran
    context.close()


def test_correct_a_transcript_line_in_the_player_then_undo(page, screenshots, tmp_path) -> None:
    page.goto("/app")
    page.locator(".video-card", has_text="web-tour.mp4").locator("a.title").click()
    page.wait_for_url("**/app/watch/**")
    watch = page.url
    line = page.locator(".line", has_text="garden").first
    recognised = line.locator(".say").inner_text()
    assert page.locator(".line.edited").count() == 0

    # Edit turns the line into a text box; Escape leaves it as it was, Enter saves.
    line.hover()
    line.locator("button[data-line=correct]").click()
    box = line.locator("input.line-input")
    box.fill("Nothing to see")
    box.press("Escape")
    assert line.locator("input.line-input").count() == 0 and line.locator(".say").inner_text() == recognised
    line.hover()
    line.locator("button[data-line=correct]").click()
    box.fill("Welcome to the community garden where zinnias grow.")
    box.press("Enter")
    page.wait_for_selector(".line.edited .edited-mark")
    edited = page.locator(".line.edited")
    assert edited.locator(".say").inner_text() == "Welcome to the community garden where zinnias grow."
    assert recognised in edited.locator(".edited-mark").get_attribute("title")
    page.screenshot(path=screenshots / "player-correction.png")

    # Kept: after a reload the line is still corrected, and search finds the new word in that scene.
    page.reload()
    assert "zinnias" in page.locator(".line.edited .say").inner_text()
    page.goto("/app/search?q=zinnias")
    page.wait_for_selector("#results .scene-card")
    first = page.locator("#results .scene-card").first
    assert "<mark>zinnias</mark>" in first.locator(".snippet").inner_html().lower()
    assert "web-tour.mp4" in first.inner_text()
    with page.expect_download() as download:  # every hit has a clip of its scene to download
        first.locator(".card-tools a", has_text="Download clip").click()
    clip = tmp_path / download.value.suggested_filename
    download.value.save_as(clip)
    with av.open(str(clip)) as container:
        seconds = float(container.duration) / av.time_base
        assert container.streams.video and container.streams.audio
    assert clip.suffix == ".mp4" and 3.0 < seconds < 7.0, seconds  # scene 1 is about 5 s

    # Undo: the line reads as recognised again, and the word is gone from search.
    page.goto(watch)
    edited = page.locator(".line.edited")
    edited.hover()
    edited.locator("button[data-line=undo]").click()
    page.wait_for_load_state("load")
    page.wait_for_function("!document.querySelector('.line.edited')")
    assert page.locator(".line", has_text="garden").first.locator(".say").inner_text() == recognised
    page.goto("/app/search?q=zinnias")
    page.wait_for_selector("#results")
    assert "<mark>zinnias</mark>" not in page.inner_html("#results").lower()
