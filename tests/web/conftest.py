"""Browser tests: the real server (tests/api/live.py) driven by Debian's Chromium through Playwright."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.live import LiveServer

ROOT = Path(__file__).resolve().parents[2]
# Screenshots go to the git-ignored build folder on every run; the committed copies in docs/ are
# refreshed only on purpose: HEIMDEX_UPDATE_SCREENSHOTS=1 (`make screenshots`) copies them there.
SCREENSHOTS = ROOT / "build" / "screenshots"
COMMITTED_SCREENSHOTS = ROOT / "docs" / "screenshots"
UPDATE_SCREENSHOTS = "HEIMDEX_UPDATE_SCREENSHOTS"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--autoplay-policy=no-user-gesture-required",
]


def chromium_path() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    raise RuntimeError("Chromium is missing: apt-get install -y chromium")


@pytest.fixture(scope="session")
def web_server(tmp_path_factory) -> Iterator[LiveServer]:
    with LiveServer(tmp_path_factory.mktemp("web-home")) as live:
        yield live


@pytest.fixture(scope="session")
def browser() -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture(scope="session")
def screenshots(request: pytest.FixtureRequest) -> Iterator[Path]:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    started = time.time()
    yield SCREENSHOTS
    if os.environ.get(UPDATE_SCREENSHOTS) != "1":
        return
    if request.session.testsfailed:
        _screenshot_news.append("tests failed: docs/screenshots/ left as it was")
        return
    taken = [p for p in SCREENSHOTS.glob("*.png") if p.stat().st_mtime >= started]
    COMMITTED_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for shot in taken:
        shutil.copy2(shot, COMMITTED_SCREENSHOTS / shot.name)
    _screenshot_news.append(f"{len(taken)} screenshots copied to docs/screenshots/")


_screenshot_news: list[str] = []


def pytest_terminal_summary(terminalreporter) -> None:
    for line in _screenshot_news:
        terminalreporter.write_line(f"{UPDATE_SCREENSHOTS}: {line}")
