"""Browser tests of the web app: Debian's Chromium (/usr/bin/chromium) driven by Playwright
against one real local stack for the package. Without Chromium they skip, saying so, unless
OPENV_REQUIRE_BROWSER=1 (.ci/run sets it): then they fail."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from openv_localstack.ports import free_port
from openv_localstack.stack import LocalStack
from tests.e2e.support import running_stack

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"
#: Every user's monthly quota on this stack: a 1 s video fits many times, two 5 s ones do not.
QUOTA_S = 8.0
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
#: Ports of two third-party pages (tests/browser/test_other_origin.py): the first is listed in
#: the stack's OPENV_CORS_ORIGINS, the second is not.
ALLOWED_ORIGIN_PORT = free_port()
UNLISTED_ORIGIN_PORT = free_port()


@pytest.fixture(scope="package")
def chromium() -> Path:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing (apt-get install chromium): the browser tests cannot run"
        if os.environ.get("OPENV_REQUIRE_BROWSER") == "1":
            pytest.fail(message + ", and OPENV_REQUIRE_BROWSER=1 requires them")
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture(scope="package")
def stack(chromium: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with running_stack(
        tmp_path_factory.mktemp("stack"),
        "memory",
        {
            "OPENV_QUOTA_SECONDS": str(QUOTA_S),
            "OPENV_CORS_ORIGINS": f"http://127.0.0.1:{ALLOWED_ORIGIN_PORT}",
        },
    ) as local:
        yield local


@pytest.fixture(scope="package")
def browser(chromium: Path) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(chromium), args=["--headless=new", "--no-sandbox"]
        )
        yield launched
        launched.close()


def _page(
    browser: Browser, viewport: dict[str, int], tolerated: tuple[str, ...] = ()
) -> Iterator[Page]:
    context = browser.new_context(viewport=viewport, color_scheme="light")  # type: ignore[arg-type]
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    # The API's refusals the tests provoke show as "Failed to load resource": expected.
    page.on(
        "console",
        lambda message: (
            errors.append(message.text)
            if message.type == "error"
            and not message.text.startswith(("Failed to load resource", *tolerated))
            else None
        ),
    )
    yield page
    context.close()
    # A CSP violation (reported on the console) or a script error is a failure too.
    assert errors == [], errors


@pytest.fixture
def desktop(browser: Browser) -> Iterator[Page]:
    yield from _page(browser, DESKTOP)


@pytest.fixture
def browser_page_tolerating_cors(browser: Browser) -> Iterator[Page]:
    """A desktop page on which the browser's CORS refusals (console errors) are expected."""
    yield from _page(browser, DESKTOP, tolerated=("Access to fetch",))


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    yield from _page(browser, PHONE)


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
