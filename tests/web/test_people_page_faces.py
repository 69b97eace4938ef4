"""The people page's faces in no group, "Same person as…" between people, and the crops of possible
faces on a person's page, in real headless Chromium. The library is the second people video alone:
Jesper's 41-px faces (grand_canyon_2.jpg, from 0:06) start no group."""

from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import PEOPLE_SECOND
from tests.web.people_page import signed_in_people_page

EMAIL = "loose-faces@example.com"


@pytest.fixture(scope="module")
def page(browser, web_server):
    yield from signed_in_people_page(
        browser, web_server, EMAIL, ("people-second", PEOPLE_SECOND), "later.mp4", "#ungrouped"
    )


def owner(web_server) -> str:
    return web_server.ctx.accounts.store.find_user_by_email(EMAIL).id


def loaded_width(page, img) -> int:
    img.wait_for()
    page.wait_for_function("img => img.complete", arg=img.element_handle())
    return page.evaluate("img => img.naturalWidth", img.element_handle())


def face_cards(page):
    return page.locator("#ungrouped .face-card")


def test_faces_in_no_group_shown_and_given_to_someone(page, web_server, screenshots) -> None:
    assert face_cards(page).count() == 2
    first = face_cards(page).first
    assert loaded_width(page, first.locator("img")) == 128
    link = first.locator(".card-body a")
    assert re.fullmatch(r"later\.mp4 · 0:0[67]", link.inner_text()), "seen from 0:06 to 0:08"
    assert "/app/watch/" in link.get_attribute("href")
    page.screenshot(path=screenshots / "people-ungrouped.png", full_page=True)

    page.locator("#unnamed .group-card").first.get_by_role("button", name="Name").click()  # "Jesper"
    page.wait_for_selector(".person-card:has-text('Jesper')")
    jesper = page.locator(".person-card", has_text="Jesper")
    avatar = jesper.locator(".avatar img")
    assert avatar.get_attribute("src").startswith("/faces/"), "named from faces: his best crop"
    assert loaded_width(page, avatar) == 128
    before = len(web_server.ctx.heimdex.person_matches("Jesper", owner(web_server)))

    face = int(face_cards(page).first.get_attribute("data-face"))
    face_cards(page).first.locator("select[data-action=assign-face]").select_option(label="Jesper")
    page.wait_for_function("document.querySelectorAll('#ungrouped .face-card').length === 1")
    page.wait_for_load_state()
    verdicts = {
        m.face_pk: m.verdict for m in web_server.ctx.heimdex.person_matches("Jesper", owner(web_server))
    }
    assert verdicts[face] == "confirmed" and len(verdicts) >= before

    groups = page.locator("#unnamed .group-card").count()
    face_cards(page).first.locator("select[data-action=assign-face]").select_option(value="new")
    # Counted once the new page holds the new group: "#ungrouped" is gone as soon as it starts.
    page.wait_for_function(f"document.querySelectorAll('#unnamed .group-card').length === {groups + 1}")
    page.wait_for_load_state()
    assert page.locator("#ungrouped").count() == 0, "every face is in a group: a group of its own"


def test_two_people_merged_by_same_person_as(page, web_server) -> None:
    page.fill("#new-person input[name=name]", "Jesper Kanal")
    page.click("#new-person button[type=submit]")
    page.wait_for_selector(".person-card:has-text('Jesper Kanal')")
    assert page.locator(".person-card").count() == 2
    kanal = page.locator(".person-card:has(a.title:text-is('Jesper Kanal'))")  # not Jesper's menu
    kanal.locator("select[data-action=merge-person]").select_option(label="Jesper")  # confirm: accepted
    page.wait_for_function("document.querySelectorAll('.person-card').length === 1")
    page.wait_for_load_state()
    assert page.locator(".person-card .title").inner_text() == "Jesper"
    assert [p.name for p in web_server.ctx.heimdex.people(owner(web_server))] == ["Jesper"]


def test_possible_faces_show_their_crops_to_confirm_or_reject(page, web_server) -> None:
    heimdex, me = web_server.ctx.heimdex, owner(web_server)
    jesper = heimdex.person(me, "Jesper")
    # A face of someone else's group, as the matcher stores one found just past the match distance.
    other = heimdex.face_groups(me)[0]
    face = other.best_faces[0].face_pk
    heimdex.store.replace_person_matches(me, jesper.id, [(face, 0.65, True)])
    page.goto(f"/app/people/{jesper.id}#possible")
    card = page.locator("#possible .review-card")
    assert card.count() == 1
    crop = card.locator(".review-crops img")
    assert crop.get_attribute("src") == f"/faces/{face}/crop" and loaded_width(page, crop) == 128
    card.get_by_role("button", name="Not Jesper").click()
    page.locator("#possible").wait_for(state="detached")
    assert {m.face_pk: m.verdict for m in heimdex.person_matches(jesper.id, me)}[face] == "rejected"
    assert heimdex.store.face_cluster(me, face) == other.id, "not his group's face: it stays where it was"
