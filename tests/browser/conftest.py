"""The admin console in a real browser (issue 17): Debian's chromium driven by Playwright.

One ./scripts/dev per module (its own port and state dir, Redis, Firestore/Pub/Sub emulators and
the Firebase Auth emulator with the seeded accounts), one chromium per module, a fresh browser
context per scenario. The browser is /usr/bin/chromium (scripts/bootstrap --stack installs it;
./scripts/test runs that first), launched headless by Playwright with executable_path: no
browser is ever downloaded (`playwright install` is never run). Playwright's launch gives it a
new, empty --user-data-dir in a temporary folder, deleted when it closes; each scenario's
context starts with no storage at all. A missing piece fails the run: nothing here skips.

Every page of a scenario is watched: a JavaScript dialog (alert, confirm, prompt) or an uncaught
error fails the scenario, and so does a Content-Security-Policy violation.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from console_browser import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS, Account, DevStack, chromium_missing, running_dev
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

expect.set_options(timeout=15_000)
PAGE_TIMEOUT_MS = 15_000
TENANT_B = "tenant-b"


@pytest.fixture(scope="module")
def dev(tmp_path_factory) -> Iterator[DevStack]:
    with running_dev(tmp_path_factory.mktemp("console-dev")) as stack:
        yield stack


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    missing = chromium_missing()
    assert missing is None, missing
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@dataclass(frozen=True)
class TenantB:
    """A second tenant with a license of its own and an admin who administers it alone."""

    id: str
    license_id: str
    admin: Account


@pytest.fixture(scope="module")
def tenant_b(dev) -> TenantB:
    dev.licensectl("create-tenant", "--id", TENANT_B, "Tenant B")
    license_id, _ = dev.create_license(TENANT_B, 1)
    admin = Account("admin-b@example.com", "dev-admin-b-pass")
    dev.licensectl("grant-role", admin.email, "--role", "admin", "--tenant", TENANT_B, "--create", "--password-stdin",
                   stdin=admin.password + "\n")
    return TenantB(TENANT_B, license_id, admin)


@pytest.fixture(autouse=True)
def sdk_dirs(tmp_path, monkeypatch):
    """The client SDK's cache and config dirs in the test's tmp dir; none of the SDK's environment."""
    monkeypatch.setenv("CODITECT_LICENSE_CACHE_DIR", str(tmp_path / "sdk-cache"))
    monkeypatch.setenv("CODITECT_LICENSE_CONFIG_DIR", str(tmp_path / "sdk-config"))
    for name in ("CODITECT_FINGERPRINT", "CODITECT_WORKLOAD_ID", "CODITECT_LICENSE_SERVER", "CODITECT_LICENSE_KEY",
                 "CODITECT_ID_TOKEN"):
        monkeypatch.delenv(name, raising=False)


@dataclass
class Console:
    """Pages of the console for one scenario, each in a fresh browser context, all watched."""

    browser: Browser
    dev: DevStack
    scenario: str
    contexts: list[BrowserContext] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    csp_violations: list[str] = field(default_factory=list)

    def open(self, *, width: int = 1280, height: int = 900, clipboard: bool = False) -> Page:
        """A new context (no cookies, no storage: nobody signed in) and a page on the console."""
        context = self.browser.new_context(
            viewport={"width": width, "height": height},
            permissions=["clipboard-read", "clipboard-write"] if clipboard else [])
        context.set_default_timeout(PAGE_TIMEOUT_MS)
        self.contexts.append(context)

        def on_dialog(dialog) -> None:  # must never happen: server text runs no script
            self.dialogs.append(f"{dialog.type}: {dialog.message}")
            dialog.dismiss()

        context.on("dialog", on_dialog)
        context.on("weberror", lambda error: self.page_errors.append(str(error.error)))
        context.on("console", lambda message: self.csp_violations.append(message.text)
                   if message.type == "error" and "Content Security Policy" in message.text else None)
        page = context.new_page()
        page.goto(self.dev.console_url)
        return page

    def sign_in(self, page: Page, account: Account, *, role: str) -> None:
        """E-mail and password on the sign-in form; done when the header shows the role."""
        page.get_by_test_id("sign-in-email").fill(account.email)
        page.get_by_test_id("sign-in-password").fill(account.password)
        page.get_by_test_id("sign-in-submit").click()
        expect(page.get_by_test_id("role")).to_have_text(role)
        expect(page.get_by_test_id("signed-in-as")).to_have_text(account.email)

    def go(self, page: Page, route: str) -> None:
        """Open a route of the console by its URL (#/...), as a bookmark or a pasted link would."""
        page.goto(f"{self.dev.console_url}{route}")

    def screenshot(self, page: Page, label: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{self.scenario}-{label}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    def close(self) -> None:
        for context in self.contexts:
            context.close()


_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.stash[_FAILED] = report.failed
    return report


@pytest.fixture
def console(browser, dev, request) -> Iterator[Console]:
    scenario = re.sub(r"[^a-z0-9]+", "-", request.node.name.removeprefix("test_").lower())[:48].strip("-")
    watched = Console(browser, dev, scenario)
    try:
        yield watched
        if request.node.stash.get(_FAILED, False):  # what each page showed when the scenario failed
            for number, page in enumerate(page for context in watched.contexts for page in context.pages):
                watched.screenshot(page, f"failed-{number}")
    finally:
        watched.close()
    assert not watched.dialogs, f"a JavaScript dialog opened: {watched.dialogs}"
    assert not watched.page_errors, f"uncaught errors in the page: {watched.page_errors}"
    assert not watched.csp_violations, f"Content-Security-Policy violations: {watched.csp_violations}"
