"""Order events' deliveries and ops routes under an adversarial review (docs/events.md): each
test names the bound or answer it holds the code to, and failed on the code it was written
against. No database, no Temporal: the routes refuse before either is reached, the webhook
try posts to a loopback server of the test's own, the mail is composed from a body."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from activities.event_delivery import EventDeliveryActivities
from activities.order_events import Outbox
from activities.order_mail import MailSettings
from api.app import create_app
from dev.stack.stack import ROOT
from vult.process.settings import Settings

OPS_TOKEN = "adversarial-ops-token-0123456789abcdef"


# ---- POST /api/ops/events/redeliver ----------------------------------------------------


@pytest.fixture(scope="module")
def http() -> Iterator[TestClient]:
    settings = Settings(
        database_url="postgresql+psycopg://nobody@127.0.0.1:1/none", ops_api_token=OPS_TOKEN
    )
    app = create_app(settings, temporal=object())  # type: ignore[arg-type]
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def test_a_range_resend_with_one_time_without_an_offset_is_refused_not_a_500(
    http: TestClient,
) -> None:
    """Ops' input never makes a 500. `since` without an offset and `until` with one both
    parse (pydantic keeps the first naive), and `body.until <= body.since` then raises
    TypeError (offset-naive and offset-aware datetimes cannot be compared): a 500, where a
    400 saying what to send was due."""
    answer = http.post(
        "/api/ops/events/redeliver",
        json={"since": "2026-11-01T00:00:00", "until": "2026-11-02T00:00:00Z"},
        headers={"Authorization": f"Bearer {OPS_TOKEN}"},
    )
    assert answer.status_code in (400, 422), f"{answer.status_code}: {answer.text}"


# ---- one webhook try: at most 64 KB of the answer read ----------------------------------


def test_a_compressed_answer_is_not_inflated_past_the_read_bound() -> None:
    """'At most 64 KB of the answer is read' (docs/events.md, webhook_post.py). The client
    asks for gzip (httpx's default Accept-Encoding) and `aiter_bytes` yields each network
    chunk decoded: a receiver's 64 KB of gzip becomes one chunk of 64 MB in memory before
    the loop's length check sees it. Fifty tries at once (the pool's size) hold gigabytes.
    The try runs in a process of its own (tests/support/gzip_bomb_try.py says why)."""
    done = subprocess.run(
        [sys.executable, "-m", "tests.support.gzip_bomb_try"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["outcome"] == "try_again"
    assert found["peak"] < 4 * 1024 * 1024, (
        f"one try held {found['peak'] / 2**20:.1f} MB for an answer of"
        f" {found['wire'] / 1024:.0f} KB on the wire (the bound is 64 KB read)"
    )


# ---- one mail try: a template that fails ends the delivery, never loops ----------------


def _body() -> dict[str, object]:
    order_id = str(uuid.uuid4())
    return {
        "id": "evt_" + uuid.uuid4().hex,
        "type": "order.paid",
        "timestamp": "2026-11-27T12:00:00Z",
        "orderId": order_id,
        "orderNumber": "VLT-20261127-000001",
        "data": {
            "orderId": order_id,
            "orderNumber": "VLT-20261127-000001",
            "customerEmail": "ann@example.com",
            "currency": "USD",
            "lineItems": [],
            "subTotal": 100.0,
            "tax": 8.0,
            "shippingCost": 0.0,
            "total": 108.0,
            "amountRefunded": 0,
            "paymentStatus": "succeeded",
        },
        "detail": {},
    }


async def test_a_shop_template_that_raises_leaves_the_mail_undeliverable_not_retried_forever(
    tmp_path: Path,
) -> None:
    """'A shop template that fails' makes no mail (`compose` promises ValueError for 'a
    template that does not render'; the try answers `disabled`). `compose` catches only
    jinja2.TemplateError: an expression that raises in Python (here a division by the
    order's amountRefunded, 0) escapes as ZeroDivisionError, `_mail_try` and
    `deliver_event` raise, and policies.DELIVERY_TRY (no maximum_attempts) retries that
    one try every 5 minutes for ever: the delivery never reaches `failed`, its alert never
    fires, and it stays pending with 0 attempts for every sweep to 'start' again."""
    (tmp_path / "order.paid.txt").write_text(
        "Thanks for order {{ order_number }}\n"
        "Refunded so far: {{ (order.amountRefunded / order.total * 100) | round }}%\n"
        "Share refunded: {{ order.total / order.amountRefunded }}\n"
    )
    mail = MailSettings(
        shop_name="Vult",
        shop_url="https://shop.example.com",
        mail_from="orders@example.com",
        smtp_host="127.0.0.1",
        smtp_port=9,
        templates_dir=str(tmp_path),
    )
    delivery = EventDeliveryActivities(None, [], mail, 1.0, Outbox())  # type: ignore[arg-type]
    try:
        answer = await delivery._mail_try(_body(), None)
    except Exception as exc:  # noqa: BLE001 - what the activity would raise to Temporal
        pytest.fail(f"the mail try raised {type(exc).__name__}: {exc} (retried without end)")
    finally:
        await delivery.close()
    assert answer.outcome == "disabled", answer
