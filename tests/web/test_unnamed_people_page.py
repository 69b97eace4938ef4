"""The people page's unnamed people in real headless Chromium: face crops largest group first, and
naming, merging, taking a face out and hiding, each by its button."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import PEOPLE_FIRST
from tests.web.people_page import signed_in_people_page

EMAIL = "faces@example.com"


@pytest.fixture(scope="module")
def page(browser, web_server):
    yield from signed_in_people_page(
        browser, web_server, EMAIL, ("people-first", PEOPLE_FIRST), "friends.mp4", "#unnamed"
    )


def cards(page):
    return page.locator("#unnamed .group-card")


def face_counts(page) -> list[int]:
    return [int(t.split()[0]) for t in page.locator("#unnamed .group-counts").all_inner_texts()]


def test_unnamed_people_shown_and_named(page, screenshots) -> None:
    counts = face_counts(page)
    assert len(counts) >= 4 and counts == sorted(counts, reverse=True), counts
    crop = cards(page).first.locator("img").first
    crop.wait_for()
    assert page.evaluate("img => img.complete && img.naturalWidth", crop.element_handle()) == 128
    page.screenshot(path=screenshots / "people-unnamed.png")

    cards(page).first.get_by_role("button", name="Name").click()  # the prompt answers "Jesper"
    page.wait_for_selector(".person-card:has-text('Jesper')")
    assert "seen in 3 scenes" in page.locator(".person-card", has_text="Jesper").inner_text()
    assert len(face_counts(page)) == len(counts) - 1


def test_merge_take_a_face_out_and_hide(page) -> None:
    before = face_counts(page)
    first = cards(page).first
    first.locator("select[data-action=merge-group]").select_option(index=1)
    page.wait_for_function(f"document.querySelectorAll('#unnamed .group-card').length === {len(before) - 1}")
    merged = face_counts(page)
    assert sum(merged) == sum(before) and max(merged) >= before[0]

    biggest = cards(page).first
    biggest.locator("button[data-action=move-face]").first.click()
    page.wait_for_function(f"document.querySelectorAll('#unnamed .group-card').length === {len(merged) + 1}")
    assert sum(face_counts(page)) == sum(before)

    cards(page).last.get_by_role("button", name="Hide").click()
    page.wait_for_function(f"document.querySelectorAll('#unnamed .group-card').length === {len(merged)}")
