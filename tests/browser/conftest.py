"""A real Chromium for the browser tests: Debian's `chromium` package driven by Playwright
(no browser download; `.ci/run` installs the package). Missing under CI=true is a failure,
elsewhere a skip with the command that installs it."""

from __future__ import annotations

import os
import shutil

import pytest


def chromium_path() -> str | None:
    return os.environ.get("COSELL_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser():
    """One Chromium per test module: Playwright's sync API keeps an event loop running while it is open,
    which would make every later `asyncio.run` in the session fail."""
    path = chromium_path()
    if path is None:
        message = "no Chromium found: apt-get install chromium (or set COSELL_CHROMIUM to its path)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=path, args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser):
    """A fresh browser context (its own cookies) and page, at a laptop's screen size."""
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    try:
        yield context.new_page()
    finally:
        context.close()
