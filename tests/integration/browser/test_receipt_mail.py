"""After a purchase in the checkout page, the customer's receipt is in the local mail page
(dev/inbox/) with the order's number and totals, as the customer's mail client shows it.

The session's worker sends no mail: this module runs a worker and an API of their own on
a task queue of their own, mailing through an inbox process of its own."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import stripe
from playwright.async_api import Browser, expect
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from dev.stack.stripe_emulator import register_webhook
from tests.support.inbox import RunningInbox, running_inbox
from tests.support.integration import WEBHOOK_SECRET, RunningWorker, serve
from vult.db.engine import make_engine
from vult.process.settings import Settings

pytestmark = pytest.mark.timeout(120)

GOOD = "4242424242424242"
ADDRESS = {
    "fullName": "Ann Lee",
    "addressLine1": "1 Main St",
    "city": "Springfield",
    "state": "IL",
    "postalCode": "62701",
    "country": "US",
}


@pytest.fixture(scope="module")
def inbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningInbox]:
    with running_inbox(Path(tmp_path_factory.mktemp("receipt-inbox"))) as running:
        yield running


@pytest.fixture(scope="module")
def mail_settings(settings: Settings, inbox: RunningInbox) -> Settings:
    assert inbox.smtp_port is not None
    return settings.model_copy(
        update={
            "temporal_task_queue": f"receipt-{uuid.uuid4()}",
            "api_metrics_address": "",
            "smtp_host": "127.0.0.1",
            "smtp_port": inbox.smtp_port,
            "delivery_retry_delays": [1.0, 2.0],
        }
    )


@pytest.fixture(scope="module")
async def mail_worker(
    temporal_client: Client, mail_settings: Settings, stripe_client: stripe.StripeClient
) -> AsyncIterator[RunningWorker]:
    engine: AsyncEngine = make_engine(mail_settings.database_url, pool_size=4)
    running = RunningWorker(temporal_client, mail_settings, engine, stripe_client)
    await running.start()
    yield running
    await running.stop()
    await engine.dispose()


@pytest.fixture(scope="module")
def shop_url(mail_settings: Settings) -> Iterator[str]:
    name = f"vult-receipt-{uuid.uuid4().hex[:8]}"
    base = mail_settings.stripe_api_base
    with serve(mail_settings) as url:
        register_webhook(base, name=name, url=f"{url}/api/webhooks/stripe", secret=WEBHOOK_SECRET)
        try:
            yield url
        finally:
            key = mail_settings.stripe_secret_key.get_secret_value()
            httpx.delete(
                f"{base}/v1/webhook_endpoints/we_{name}",
                headers={"Authorization": f"Bearer {key}"},
                timeout=10,
            )


async def test_after_a_purchase_the_receipt_is_in_the_mail_page_with_the_totals(
    browser: Browser, shop_url: str, mail_worker: RunningWorker, inbox: RunningInbox
) -> None:
    email = f"receipt-{uuid.uuid4().hex[:8]}@example.com"
    context = await browser.new_context(base_url=shop_url)
    context.set_default_timeout(20_000)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        await page.goto("/shop/")
        await page.get_by_role("button", name="Add Vult Runner to cart").click()
        await page.get_by_label("Email").fill(email)
        for field, value in ADDRESS.items():
            await page.locator(f"[id='shippingAddress.{field}']").fill(value)
        card = page.locator("#card")
        await card.locator("input[placeholder=number]").fill(GOOD)
        await card.locator("input[placeholder=exp_month]").fill("12")
        await card.locator("input[placeholder=exp_year]").fill("34")
        await card.locator("input[placeholder=cvc]").fill("123")
        await card.locator("input[placeholder=postal_code]").fill("62701")
        await page.get_by_role("button", name="Pay").click()
        await expect(page.locator("#order-status")).to_have_text("Confirmed")
        heading = await page.get_by_role("heading", level=1).inner_text()
        number = heading.split("Order ", 1)[1].split()[0]
        assert number.startswith("VLT-"), heading

        # The mail page, as a new user opens it after the purchase.
        mail = await page.context.new_page()
        for _ in range(100):  # the delivery is its own workflow: bounded wait, 20 s
            await mail.goto(inbox.url)
            link = mail.get_by_role("link", name=f"order {number}")
            if await link.count():
                break
            await mail.wait_for_timeout(200)
        await mail.get_by_role("link", name=f"order {number}").first.click()
        await expect(mail.get_by_text(email).first).to_be_visible()
        shown = mail.frame_locator("iframe").locator("body")
        await expect(shown).to_contain_text(number)
        await expect(shown).to_contain_text("Vult Runner")
        await expect(shown).to_contain_text("$129.99")  # the line and the subtotal
        await expect(shown).to_contain_text("$10.40")  # 8% tax
        await expect(shown).to_contain_text("$140.39")  # the total the page showed
    finally:
        await context.close()
    assert errors == []
    receipts = [m for m in inbox.mails() if email in str(m["to"])]
    assert len(receipts) == 1, receipts  # one purchase, one receipt
