"""The shop's checkout page in a real browser, on the real stack: Stripe.js (the emulator's
stand-in) confirms the card with the PaymentIntent's client secret, the page waits for the
order's outcome, and the database and the emulator's own records agree with what it shows."""

from __future__ import annotations

import uuid

import stripe
from playwright.async_api import Browser, Page, expect
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.integration import RunningWorker, count_rows, order_body, refunds_at_stripe

GOOD = "4242424242424242"
DECLINED = "4000000000000341"
THREE_D_SECURE = "4000002760003184"
# The required fields of the tests' usual address, as a customer types them.
ADDRESS = {k: v for k, v in order_body()["shippingAddress"].items() if k != "phone"}


async def fill_order(page: Page, email: str = "ann@example.com") -> None:
    await page.goto("/shop/")
    await page.get_by_role("button", name="Add Vult Runner to cart").click()
    await expect(page.locator("#cart")).to_be_visible()
    await page.get_by_label("Email").fill(email)
    for field, value in ADDRESS.items():
        await page.locator(f"[id='shippingAddress.{field}']").fill(value)


async def fill_card(page: Page, number: str) -> None:
    card = page.locator("#card")
    await card.locator("input[placeholder=number]").fill(number)
    await card.locator("input[placeholder=exp_month]").fill("12")
    await card.locator("input[placeholder=exp_year]").fill("34")
    await card.locator("input[placeholder=cvc]").fill("123")
    await card.locator("input[placeholder=postal_code]").fill("62701")


async def order_in_database(engine: AsyncEngine, order_id: str) -> tuple[str, str | None]:
    async with engine.connect() as conn:
        row = await conn.execute(
            text("SELECT status, stripe_payment_intent_id FROM orders WHERE order_id = :id"),
            {"id": order_id},
        )
        status, pi = row.one()
    return status, pi


def shown_order_id(page: Page) -> str:
    return page.url.rsplit("/", 1)[-1]


async def test_buying_with_a_good_card_shows_confirmed_and_the_database_agrees(
    page: Page, engine: AsyncEngine
) -> None:
    await fill_order(page)
    await fill_card(page, GOOD)
    await page.get_by_role("button", name="Pay").click()

    await expect(page.locator("#order-status")).to_have_text("Confirmed")
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Order VLT-")
    await expect(page.get_by_text("your payment was received")).to_be_visible()
    await expect(page.locator("tfoot")).to_contain_text("$140.39")  # 129.99 + 8% tax, rounded
    status, pi = await order_in_database(engine, shown_order_id(page))
    assert status == "Confirmed" and pi is not None


async def test_a_declined_card_shows_stripes_message_and_another_card_pays(
    page: Page, engine: AsyncEngine, stripe_client: stripe.StripeClient
) -> None:
    await fill_order(page)
    await fill_card(page, DECLINED)
    await page.get_by_role("button", name="Pay").click()
    await expect(page.locator("#payment-error")).to_contain_text("Your card was declined.")
    retry = page.get_by_role("button", name="Pay with another card")
    await expect(retry).to_be_enabled()

    await fill_card(page, GOOD)
    await retry.click()
    await expect(page.locator("#order-status")).to_have_text("Confirmed")
    status, pi = await order_in_database(engine, shown_order_id(page))
    assert status == "Confirmed"
    assert pi is not None and (
        await stripe_client.v1.payment_intents.retrieve_async(pi)
    ).status == ("succeeded")


async def test_a_3d_secure_card_is_authenticated_in_the_page_and_confirms(
    page: Page, engine: AsyncEngine
) -> None:
    await fill_order(page)
    await fill_card(page, THREE_D_SECURE)
    await page.get_by_role("button", name="Pay").click()
    challenge = page.get_by_role("dialog", name="3D Secure authentication")
    await expect(challenge).to_be_visible()
    # The order waits for the customer meanwhile, never Failed.
    order_id = await page.evaluate("JSON.parse(sessionStorage.getItem('vult-checkout')).orderId")
    assert (await order_in_database(engine, order_id))[0] == "PaymentProcessing"
    await challenge.get_by_role("button", name="Complete authentication").click()
    await expect(page.locator("#order-status")).to_have_text("Confirmed")
    assert (await order_in_database(engine, shown_order_id(page)))[0] == "Confirmed"


async def test_a_closed_3d_secure_challenge_fails_the_payment_at_stripe_and_another_card_pays(
    page: Page, engine: AsyncEngine, stripe_client: stripe.StripeClient
) -> None:
    """As Stripe.js reports a challenge the customer closes: an authentication failure, the
    PaymentIntent asking for a payment method again."""
    await fill_order(page)
    await fill_card(page, THREE_D_SECURE)
    await page.get_by_role("button", name="Pay").click()
    challenge = page.get_by_role("dialog", name="3D Secure authentication")
    await challenge.get_by_role("button", name="Close").click()
    await expect(page.locator("#payment-error")).to_contain_text("unable to authenticate")
    retry = page.get_by_role("button", name="Pay with another card")
    await expect(retry).to_be_enabled()
    order_id = await page.evaluate("JSON.parse(sessionStorage.getItem('vult-checkout')).orderId")
    _, pi = await order_in_database(engine, order_id)
    assert pi is not None
    intent = (await stripe_client.v1.payment_intents.retrieve_async(pi)).to_dict()
    assert intent["status"] == "requires_payment_method"
    assert intent["last_payment_error"]["code"] == "payment_intent_authentication_failure"

    await fill_card(page, GOOD)
    await retry.click()
    await expect(page.locator("#order-status")).to_have_text("Confirmed")
    status, paid = await order_in_database(engine, shown_order_id(page))
    assert status == "Confirmed" and paid is not None


async def test_a_3d_secure_challenge_closed_with_escape_or_failed_lets_another_card_pay(
    page: Page, engine: AsyncEngine
) -> None:
    await fill_order(page)
    await fill_card(page, THREE_D_SECURE)
    await page.get_by_role("button", name="Pay").click()
    challenge = page.get_by_role("dialog", name="3D Secure authentication")
    await expect(challenge).to_be_visible()
    await page.keyboard.press("Escape")  # closed unanswered: the authentication failed
    await expect(page.locator("#payment-error")).to_contain_text("unable to authenticate")
    retry = page.get_by_role("button", name="Pay with another card")
    await retry.click()  # the same card again: its challenge again
    await challenge.get_by_role("button", name="Fail authentication").click()
    await expect(page.locator("#payment-error")).to_contain_text("unable to authenticate")
    await fill_card(page, GOOD)
    await retry.click()
    await expect(page.locator("#order-status")).to_have_text("Confirmed")
    status, pi = await order_in_database(engine, shown_order_id(page))
    assert status == "Confirmed" and pi is not None


async def test_an_invalid_form_shows_the_servers_errors_and_writes_nothing(
    page: Page, engine: AsyncEngine
) -> None:
    before = await count_rows(engine)
    await fill_order(page, email="not-an-email")
    await page.locator("[id='shippingAddress.city']").fill("")
    await fill_card(page, GOOD)
    await page.get_by_role("button", name="Pay").click()

    summary = page.locator("#form-errors")
    await expect(summary).to_contain_text("customerEmail: must be a valid email address")
    await expect(summary).to_contain_text("shippingAddress.city: is required")
    await expect(summary).to_be_focused()
    city = page.locator("[id='shippingAddress.city']")
    await expect(city).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("[id='shippingAddress.city-error']")).to_have_text("is required")
    assert await city.get_attribute("aria-describedby") == "shippingAddress.city-error"
    assert await count_rows(engine) == before


async def test_cancelling_a_paid_order_from_its_page_refunds_it_once(
    page: Page, engine: AsyncEngine, stripe_client: stripe.StripeClient
) -> None:
    await fill_order(page)
    await fill_card(page, GOOD)
    await page.get_by_role("button", name="Pay").click()
    await expect(page.locator("#order-status")).to_have_text("Confirmed")
    order_id = shown_order_id(page)

    await page.goto(f"/shop/orders/{order_id}")  # the order page, opened afresh
    await page.get_by_role("button", name="Cancel order").click()
    await expect(page.locator("#order-status")).to_have_text("Cancelled")
    await expect(page.get_by_text("Your payment was refunded")).to_be_visible()
    await expect(page.get_by_role("button", name="Cancel order")).to_have_count(0)
    status, pi = await order_in_database(engine, order_id)
    assert status == "Cancelled" and pi is not None
    (refund,) = await refunds_at_stripe(stripe_client, pi)
    assert refund.amount == 14039


async def tab_to(page: Page, selector: str, presses: int = 80) -> None:
    """Press Tab (only) until `selector` has the focus."""
    for _ in range(presses):
        if await page.evaluate("s => document.activeElement?.matches(s) ?? false", selector):
            return
        await page.keyboard.press("Tab")
    raise AssertionError(f"{selector} never took the focus by keyboard")


async def test_a_purchase_with_the_keyboard_only(page: Page, engine: AsyncEngine) -> None:
    await page.goto("/shop/")
    await expect(page.get_by_role("button", name="Add Vult Runner to cart")).to_be_visible()
    await tab_to(page, "button[aria-label='Add Vult Runner to cart']")
    await page.keyboard.press("Enter")
    typed = {"#customerEmail": "kim@example.com"} | {
        f"[id='shippingAddress.{field}']": value for field, value in ADDRESS.items()
    }
    for selector, value in typed.items():
        await tab_to(page, selector)
        await page.keyboard.type(value)
    for placeholder, value in (
        ("number", GOOD),
        ("exp_month", "12"),
        ("exp_year", "34"),
        ("cvc", "123"),
        ("postal_code", "62701"),
    ):
        await tab_to(page, f"#card input[placeholder={placeholder}]")
        await page.keyboard.type(value)
    await tab_to(page, "#pay")
    focus_ring = await page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert focus_ring != "none"  # the focus is visible
    await page.keyboard.press("Enter")

    await expect(page.locator("#order-status")).to_have_text("Confirmed")
    status, _ = await order_in_database(engine, shown_order_id(page))
    assert status == "Confirmed"


async def test_the_page_is_served_with_a_policy_that_allows_only_itself_and_stripe_js(
    page: Page, api_url: str
) -> None:
    response = await page.goto("/shop/")
    assert response is not None
    policy = response.headers["content-security-policy"]
    config = await (await page.request.get("/api/config")).json()
    stripe_origin = config["stripeJsUrl"].split("/js.stripe.com")[0]
    assert "default-src 'self'" in policy
    assert f"script-src 'self' {stripe_origin}" in policy
    assert "unsafe-inline" not in policy and "*" not in policy
    assert config["publishableKey"].startswith("pk_")
    missing = await page.request.get(f"/shop/orders/{uuid.uuid4()}")
    assert missing.ok  # the page itself; it then says the order was not found


async def test_with_capture_at_shipment_nothing_changes_for_the_customer(
    browser: Browser,
    at_shipment_url: str,
    worker: RunningWorker,
    engine: AsyncEngine,
    stripe_client: stripe.StripeClient,
) -> None:
    """The same page on an API placing orders under PAYMENT_CAPTURE=at_shipment: the
    customer sees the order confirmed; at Stripe the card is only authorized."""
    context = await browser.new_context(base_url=at_shipment_url)
    context.set_default_timeout(20_000)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        await fill_order(page, "capture-later@example.com")
        await fill_card(page, GOOD)
        await page.get_by_role("button", name="Pay").click()
        await expect(page.locator("#order-status")).to_have_text("Confirmed")
        await expect(page.get_by_text("your payment was received")).to_be_visible()
        status, pi = await order_in_database(engine, shown_order_id(page))
    finally:
        await context.close()
    assert status == "Confirmed" and pi is not None and errors == []
    assert (await stripe_client.v1.payment_intents.retrieve_async(pi)).status == "requires_capture"
