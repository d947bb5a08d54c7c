"""What a person does in the web app, as steps the browser tests share."""

import uuid

from playwright.sync_api import Locator, Page, expect

#: Long enough for a render on the local stack (1 s renders, plus queueing and import).
LIVE_TIMEOUT_MS = 60_000


def user(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def sign_in(page: Page, url: str, user_id: str) -> None:
    page.goto(url)
    expect(page.locator("#local-form")).to_be_visible()
    page.get_by_label("User id").fill(user_id)
    page.get_by_role("button", name="Sign in as this user").click()
    expect(page.locator("#workspace")).to_be_visible()
    expect(page.locator("#who-name")).to_have_text(f"Signed in as {user_id}")


def create(page: Page, prompt: str, *, seconds: str = "0.5", size: str = "640x640") -> Locator:
    """Fill the form and create; the new video's card (the first in the list)."""
    page.get_by_label("Prompt", exact=True).fill(prompt)
    page.get_by_label("Size").select_option(size)
    page.get_by_label("Length (seconds)").fill(seconds)
    page.get_by_role("button", name="Create video").click()
    card = page.locator("#video-list > li").filter(has_text=prompt).first
    expect(card).to_be_visible()
    return card


def wait_status(card: Locator, status: str) -> None:
    expect(card).to_have_attribute("data-status", status, timeout=LIVE_TIMEOUT_MS)


def play(card: Locator) -> float:
    """The inline player's duration once its metadata loaded (seconds)."""
    video = card.locator("video")
    expect(video).to_be_visible()
    card.page.wait_for_function(
        "v => v.readyState >= 2 && v.duration > 0", arg=video.element_handle(), timeout=30_000
    )
    duration: float = video.evaluate("v => v.duration")
    return duration


def delete(card: Locator) -> None:
    page = card.page
    card.get_by_role("button", name="Delete video").click()
    dialog = page.locator("#confirm-delete")
    expect(dialog).to_be_visible()
    page.locator("#confirm-delete-yes").click()
    wait_status(card, "deleted")
    expect(card.locator(".detail")).to_contain_text("file deleted", timeout=LIVE_TIMEOUT_MS)
