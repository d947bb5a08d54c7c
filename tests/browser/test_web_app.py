"""A person in a real browser: signs in, creates, watches the status change live, plays,
cancels, deletes and meets a quota refusal; the same core flow at phone width. The tests
write the screenshots in docs/screenshots/."""

import re

import httpx
from playwright.sync_api import Page, Route, expect

from openv_localstack.stack import LocalStack
from openv_localstack.tokens import make_token
from tests.browser.app import create, delete, play, sign_in, user, wait_status
from tests.browser.conftest import PHONE, screenshot


def test_create_watch_play_and_delete(stack: LocalStack, desktop: Page) -> None:
    page = desktop
    streams: list[str] = []
    page.on("request", lambda r: streams.append(r.url) if r.url.endswith("/stream") else None)
    page.goto(stack.gateway_url)
    expect(page.locator("#local-form")).to_be_visible()
    screenshot(page, "sign-in-desktop")
    person = user("desk")
    sign_in(page, stack.gateway_url, person)

    # The API's problem+json errors show beside the field they name.
    page.get_by_label("Steps").fill("5")
    page.get_by_role("button", name="Create video").click()
    expect(page.locator("#err-prompt")).not_to_be_empty()
    expect(page.locator("#err-steps")).to_contain_text("10")
    expect(page.get_by_label("Steps")).to_have_attribute("aria-invalid", "true")
    page.get_by_label("Steps").fill("40")

    prompt = "a red fox running through fresh snow at dawn"
    page.get_by_label("Prompt", exact=True).fill(prompt)
    expect(page.locator("#prompt-count")).to_have_text(f"{len(prompt)} / 500")
    card = create(page, prompt)
    wait_status(card, "completed")  # live: the page is never reloaded
    assert any("/v1/videos/" in url for url in streams), "the status came from the stream"
    expect(page.locator("#announcer")).to_contain_text("Ready")
    assert play(card) > 0
    expect(card.get_by_role("link", name="Download")).to_have_attribute("href", re.compile("^http"))
    expect(page.locator("#jobs-text")).to_have_text("0 of 3")
    create(page, "a lighthouse in a storm, waves crashing, cinematic")
    page.wait_for_timeout(300)
    screenshot(page, "videos-desktop")
    page.emulate_media(color_scheme="dark")
    screenshot(page, "videos-desktop-dark")
    page.emulate_media(color_scheme="light")

    delete(card)
    token = make_token(person)
    video_id = card.get_attribute("id").removeprefix("video-")  # type: ignore[union-attr]
    seen = httpx.get(
        f"{stack.gateway_url}/v1/videos/{video_id}",
        headers={"Authorization": f"Bearer {token}"},
    ).json()
    assert seen["status"] == "deleted" and seen["file_deleted"] is True


def test_cancel_an_in_flight_video(stack: LocalStack, desktop: Page) -> None:
    marker = "slow-browser-render"
    answer = httpx.post(
        f"{stack.sim_url}/admin/scenarios",
        json={"prompt_contains": marker, "sim": {"duration_s": 120}},
    )
    assert answer.status_code in (200, 201), answer.text
    sign_in(desktop, stack.gateway_url, user("cancel"))
    card = create(desktop, f"{marker}: a slow pan over mountains")
    expect(card.get_by_role("button", name="Cancel video")).to_be_visible()
    expect(card).not_to_have_attribute("data-status", "pending", timeout=30_000)
    card.get_by_role("button", name="Cancel video").click()
    wait_status(card, "cancelled")
    expect(card.get_by_role("button", name="Cancel video")).to_be_hidden()


def test_a_quota_refusal_says_when_to_try_again(stack: LocalStack, desktop: Page) -> None:
    sign_in(desktop, stack.gateway_url, user("quota"))
    create(desktop, "five seconds of rain on a window", seconds="5")
    desktop.get_by_label("Prompt", exact=True).fill("five more seconds of rain")
    desktop.get_by_role("button", name="Create video").click()
    message = desktop.locator("#create-message")
    expect(message).to_contain_text("quota")
    expect(message).to_contain_text("try again after")
    screenshot(desktop, "quota-refusal-desktop")


def test_the_core_flow_at_phone_width(stack: LocalStack, phone: Page) -> None:
    sign_in(phone, stack.gateway_url, user("phone"))
    card = create(phone, "a paper boat drifting down a rainy street", size="480x848")
    wait_status(card, "completed")
    assert play(card) > 0
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page scrolls sideways ({width} px)"
    screenshot(phone, "videos-phone")
    delete(card)


def test_a_retry_after_a_lost_answer_makes_one_video(stack: LocalStack, desktop: Page) -> None:
    keys: list[str | None] = []

    def lose_the_first_answer(route: Route) -> None:
        if route.request.method != "POST":
            route.continue_()
            return
        keys.append(route.request.headers.get("idempotency-key"))
        if len(keys) == 1:
            route.fetch()  # the gateway makes the video ...
            route.abort()  # ... and its answer never reaches the page
        else:
            route.continue_()

    desktop.route("**/v1/videos", lose_the_first_answer)
    person = user("retry")
    sign_in(desktop, stack.gateway_url, person)
    prompt = "a hot air balloon over a valley"
    desktop.get_by_label("Prompt", exact=True).fill(prompt)
    desktop.get_by_role("button", name="Create video").click()
    expect(desktop.locator("#create-message")).to_contain_text("network")
    desktop.get_by_role("button", name="Create video").click()
    expect(desktop.locator("#video-list > li").filter(has_text=prompt)).to_have_count(1)
    assert len(keys) == 2 and keys[0] is not None and keys[0] == keys[1], keys
    listed = httpx.get(
        f"{stack.gateway_url}/v1/videos",
        headers={"Authorization": f"Bearer {make_token(person)}"},
    ).json()["data"]
    assert [v["prompt"] for v in listed] == [prompt]
