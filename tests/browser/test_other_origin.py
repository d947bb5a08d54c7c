"""A page on another origin, in a real browser: one listed in OPENV_CORS_ORIGINS creates a
video and follows it live (fetch with the Authorization header, then EventSource with a
short-lived stream token); an unlisted origin's page is refused by the browser (no CORS
headers for it)."""

import functools
import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Page, expect

from openv_localstack.stack import LocalStack
from openv_localstack.tokens import make_token
from tests.browser.conftest import ALLOWED_ORIGIN_PORT, UNLISTED_ORIGIN_PORT

PAGE = Path(__file__).parent / "other_origin"


@contextmanager
def serving_page(port: int) -> Iterator[str]:
    """The page's files on http://127.0.0.1:<port>, stopped afterwards."""
    handler = functools.partial(_QuietHandler, directory=str(PAGE))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def _open(page: Page, origin: str, stack: LocalStack, user: str) -> None:
    page.goto(f"{origin}/index.html#api={stack.gateway_url}&token={make_token(user)}")


def test_a_listed_origin_creates_and_streams(stack: LocalStack, desktop: Page) -> None:
    with serving_page(ALLOWED_ORIGIN_PORT) as origin:
        _open(desktop, origin, stack, "cross-origin-listed")
        out = desktop.locator("#out")
        expect(out).to_contain_text("done", timeout=60_000)
    lines = out.inner_text().splitlines()
    assert lines[:2] == ["created 202 location=true", "stream-token 201"], lines
    assert "status completed" in lines, lines


def test_an_unlisted_origin_is_refused(
    stack: LocalStack, browser_page_tolerating_cors: Page
) -> None:
    page = browser_page_tolerating_cors
    with serving_page(UNLISTED_ORIGIN_PORT) as origin:
        _open(page, origin, stack, "cross-origin-unlisted")
        out = page.locator("#out")
        expect(out).to_contain_text("refused: TypeError", timeout=20_000)
    assert "created" not in out.inner_text()
