"""Driving Debian's Chromium with Playwright for the UI tests: one browser per session, a
fresh context (storage, cookies) per test, console errors collected and fatal unless the
test declared them, and a screenshot of every page visited under .local/ui/."""

from __future__ import annotations

import contextlib
import os
import pathlib
import re
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from playwright.async_api import Browser, ConsoleMessage, Page, async_playwright
from playwright.async_api import TimeoutError as PlaywrightTimeout

ROOT = pathlib.Path(__file__).resolve().parents[2]
SHOTS = ROOT / ".local" / "ui"
# Debian's package; Playwright's own browser builds cannot be downloaded here.
CHROMIUM_NAMES = ("chromium", "chromium-browser")
LAUNCH_ARGS = [
    "--no-sandbox",  # the tests run as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    given = os.environ.get("CARAVAN_CHROMIUM")
    found = given or next(filter(None, (shutil.which(n) for n in CHROMIUM_NAMES)), None)
    if not found:
        raise RuntimeError(
            "no chromium on PATH: run hack/install-debian-packages.sh browser "
            "(or set CARAVAN_CHROMIUM to a Chromium executable)"
        )
    return found


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    # launch() gives the browser a fresh temporary user-data dir of its own, removed on
    # close, and passes --headless itself.
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium_path(), headless=True, args=LAUNCH_ARGS
        )
        try:
            yield browser
        finally:
            await browser.close()


@dataclass
class Console:
    """Console errors of a page; a test names the ones it causes on purpose."""

    errors: list[str] = field(default_factory=list)
    expected: list[re.Pattern[str]] = field(default_factory=list)

    def expect(self, pattern: str) -> None:
        self.expected.append(re.compile(pattern))

    def on_message(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text} ({message.location.get('url', '')})")

    def on_page_error(self, error: Exception) -> None:
        self.errors.append(f"uncaught: {error}")

    def unexpected(self) -> list[str]:
        return [e for e in self.errors if not any(p.search(e) for p in self.expected)]


# Buttons, inputs, selects and textareas with no accessible name: no <label>, no
# aria-label(ledby), no text, no title.
UNNAMED_CONTROLS = """() => [...document.querySelectorAll(
  'main button, main input, main select, main textarea, header button'
)].filter((el) => el.type !== 'hidden' && !(
    (el.labels && el.labels.length) || el.getAttribute('aria-label') ||
    el.getAttribute('aria-labelledby') || el.textContent.trim() || el.title
  )).map((el) => el.outerHTML.slice(0, 120))"""


# The mark the UI sets once a page's first view is drawn (docs/ui.md).
READY = "body[data-ready]"


@dataclass
class UiPage:
    page: Page
    base: str
    console: Console
    name: str
    shots: int = 0

    async def open(self, path: str) -> None:
        """Goes to `path`; on the UI's pages, returns once the first view is drawn."""
        await self.page.goto(self.base + path)
        if path.startswith("/ui"):
            await self.ready()

    async def ready(self) -> None:
        """Waits for the mark the UI sets when a page's first view is drawn (its first
        data shown, or the error that stopped it): `<body data-ready="<page>">`."""
        await self.page.wait_for_selector(READY, state="attached")

    async def shot(self, label: str, full_page: bool = True) -> pathlib.Path:
        """A screenshot of the page as it is now: .local/ui/<test>-<n>-<label>.png.

        On the UI's own pages it also checks that every control has a name a screen
        reader (and a keyboard user) can go by."""
        if "/ui/" in self.page.url:
            # The drawn page, not "Loading…"; a page that never got there (a failed
            # test) is still worth its picture.
            with contextlib.suppress(PlaywrightTimeout):
                await self.page.wait_for_selector(READY, state="attached", timeout=5000)
            unnamed = await self.page.evaluate(UNNAMED_CONTROLS)
            assert not unnamed, f"controls without a label on {self.page.url}: {unnamed}"
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.shots += 1
        path = SHOTS / f"{self.name}-{self.shots:02d}-{label}.png"
        await self.page.screenshot(path=str(path), full_page=full_page)
        return path


@asynccontextmanager
async def ui_page(browser: Browser, base: str, name: str) -> AsyncIterator[UiPage]:
    context = await browser.new_context(
        viewport={"width": 1280, "height": 900}, accept_downloads=True
    )
    page = await context.new_page()
    page.set_default_timeout(15_000)
    console = Console()
    page.on("console", console.on_message)
    page.on("pageerror", console.on_page_error)
    ui = UiPage(page, base, console, re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-"))
    try:
        yield ui
    finally:
        # The page as the test left it, failed or not: the first thing to look at.
        with contextlib.suppress(Exception):
            await ui.shot("end")
        await context.close()
    unexpected = console.unexpected()
    assert not unexpected, "the page logged errors:\n" + "\n".join(unexpected)
