"""The people page in real headless Chromium, signed in as a user whose library is one people video
(tests/e2e/conftest.py), for the browser tests of unnamed people and faces in no group."""

from __future__ import annotations

from collections.abc import Iterator

from tests.api.live import PASSWORD, upload, wait_for
from tests.e2e.conftest import people_video
from tests.web.test_browser import DESKTOP


def signed_in_people_page(
    browser, web_server, email: str, video: tuple[str, object], filename: str, ready: str
) -> Iterator:
    """The page once `ready` (a selector) shows; prompts are answered "Jesper". Every page error fails
    the module when the page closes."""
    with web_server.user(email) as client:
        r = upload(client, people_video(*video), filename)
        assert r.status_code == 201, r.text
        assert wait_for(client, r.json()["videos"][0]["id"])["state"] == "indexed"
    # bypass_csp: wait_for_function evaluates with eval(), which the app's policy forbids (test_browser.py)
    context = browser.new_context(viewport=DESKTOP, base_url=web_server.url, bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("dialog", lambda dialog: dialog.accept("Jesper" if dialog.type == "prompt" else None))
    page.goto("/login?next=/app/people")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector(ready)
    yield page
    context.close()
    assert not errors, errors
