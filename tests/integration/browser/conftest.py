"""Browser fixtures: Debian's Chromium driven headless by Playwright, recording what a user's console would
show, and a full-page screenshot when a test fails. Reused by every test in this folder."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

#: Wide enough for the report's 1100 px column and the Airflow UI without a horizontal scroll bar.
VIEWPORT = {"width": 1280, "height": 900}
#: What a page may load without anything leaving the machine: local files and inline data.
LOCAL_URLS = ("file:", "data:", "about:", "blob:")
_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


@dataclass
class BrowserPage:
    """A Playwright page and what it reported: console errors and warnings, uncaught exceptions, and every
    request outside the allowed URLs (aborted, so nothing leaves the machine)."""

    page: object  # playwright.sync_api.Page; imported lazily so collection works without Playwright
    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    external_requests: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        """Fail with every console error or warning, page error and outside request the page produced."""
        problems = [f"console {m}" for m in self.console] + [f"page error: {e}" for e in self.errors]
        problems += [f"request leaving the page: {u}" for u in self.external_requests]
        assert not problems, "the page is not clean in Chromium:\n  " + "\n  ".join(problems)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[pytest.TestReport]:
    # The browser_page fixture's teardown reads the call phase's outcome to decide on a screenshot.
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    """The system Chromium (Debian's package); Playwright downloads no browser of its own here."""
    path = shutil.which("chromium")
    if path is None:
        pytest.skip("chromium is not on PATH: run `make system-deps` (scripts/system-deps.sh installs it)")
    return path


@pytest.fixture(scope="session")
def browser(chromium_executable: str) -> Iterator[object]:
    """One headless Chromium for the session; each test gets its own context through ``browser_page``."""
    from playwright.sync_api import sync_playwright

    # Chromium refuses to start its sandbox as root (CI containers run as root).
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_executable, headless=True, args=args)
        yield browser
        browser.close()


@pytest.fixture
def allowed_urls() -> tuple[str, ...]:
    """URL prefixes a page may request; any other request is recorded and aborted. A test of a served UI
    overrides this fixture to add its server, e.g. ``(*LOCAL_URLS, "http://127.0.0.1:8080/")``."""
    return LOCAL_URLS


@pytest.fixture
def browser_page(
    browser, allowed_urls: tuple[str, ...], request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[BrowserPage]:
    """A fresh page in a fresh context that records console errors and warnings, page errors and requests
    outside ``allowed_urls`` (see :class:`BrowserPage`). When the test fails, a full-page screenshot is
    written under the test's tmp_path and its path printed."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    seen = BrowserPage(page)

    def on_console(message) -> None:
        if message.type in ("error", "warning"):
            where = message.location
            seen.console.append(
                f"{message.type}: {message.text} ({where.get('url')}:{where.get('lineNumber')})"
            )

    def on_request(outgoing) -> None:
        if not outgoing.url.startswith(allowed_urls):
            seen.external_requests.append(outgoing.url)

    page.on("console", on_console)
    page.on("pageerror", lambda error: seen.errors.append(str(error)))
    page.on("request", on_request)
    # Recorded above, then refused here: a test never waits on, or depends on, the network.
    context.route(lambda url: not url.startswith(allowed_urls), lambda route: route.abort())
    try:
        yield seen
    finally:
        call = request.node.stash.get(_REPORTS, {}).get("call")
        if call is not None and call.failed:
            _record_failure(seen, tmp_path / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', request.node.name)}.png")
        context.close()


def _record_failure(seen: BrowserPage, shot: Path) -> None:
    """Print where the failed page's screenshot is, and what the page logged, beside the failure."""
    from playwright.sync_api import Error

    try:
        seen.page.screenshot(path=str(shot), full_page=True)
        print(f"\nscreenshot of the failed page ({seen.page.url}): {shot}")
    except Error as exc:  # a crashed or closed page: say so rather than hide the test's own failure
        print(f"\nno screenshot of the failed page: {exc}")
    for line in [*seen.console, *seen.errors, *seen.external_requests]:
        print(f"  page reported: {line}")
