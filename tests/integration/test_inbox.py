"""The local inbox (dev/inbox/) as the dev stack runs it: a real process on free 127.0.0.1
ports. Mail sent over SMTP is kept and shown escaped; the mail faults answer 550 and 451;
a webhook signed the Standard Webhooks way is kept as verified, a tampered one refused and
kept as not; an endpoint's fault answers its status; a restart keeps everything."""

from __future__ import annotations

import json
import smtplib
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from dev.inbox.local_receiver import (
    LOCAL_RECEIVER,
    LOCAL_RECEIVER_SECRET,
    webhook_endpoints_setting,
)
from tests.support.inbox import RunningInbox, running_inbox
from vult.process.outbound import WebhookEndpoint

pytestmark = pytest.mark.timeout(60)

HOSTILE = '<script>alert("x")</script>'


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningInbox]:
    with running_inbox(tmp_path_factory.mktemp("inbox")) as inbox:
        yield inbox


@pytest.fixture
def inbox(shared: RunningInbox) -> RunningInbox:
    shared.clear()
    return shared


def a_mail(to: str = "customer@example.com", subject: str = "Your order VLT-1") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Vult <orders@vult.localhost>"
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = f"<{uuid.uuid4().hex}@vult.localhost>"
    message.set_content("Thank you for your order.\n")
    message.add_alternative(f"<p style='color:#333'>Thank you {HOSTILE}</p>", subtype="html")
    return message


def send(inbox: RunningInbox, message: EmailMessage) -> None:
    assert inbox.smtp_port is not None
    with smtplib.SMTP("127.0.0.1", inbox.smtp_port, timeout=10) as smtp:
        smtp.send_message(message)


def refusal(inbox: RunningInbox, to: str) -> tuple[int, bytes]:
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        send(inbox, a_mail(to=to))
    return refused.value.recipients[to]


def post_webhook(
    inbox: RunningInbox, body: bytes, secret: str = LOCAL_RECEIVER_SECRET, tamper: bool = False
) -> tuple[str, httpx.Response]:
    msg_id = f"msg_{uuid.uuid4().hex}"
    now = datetime.now(UTC)
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, now, body),
        "content-type": "application/json",
    }
    sent = body.replace(b"VLT-", b"XXX-") if tamper else body
    return msg_id, httpx.post(inbox.webhook_url(), content=sent, headers=headers, timeout=10)


def an_event(order_id: str) -> bytes:
    event = {
        "id": f"evt_{uuid.uuid4().hex}",
        "type": "order.paid",
        "timestamp": "2025-01-31T12:00:00.000Z",
        "orderId": order_id,
        "orderNumber": "VLT-20250131-000001",
        "data": {"orderId": order_id, "status": "Confirmed"},
        "detail": {},
    }
    return json.dumps(event).encode()


def test_a_mail_is_kept_and_shown_escaped(inbox: RunningInbox) -> None:
    message = a_mail(subject=f"Order {HOSTILE}")
    send(inbox, message)
    mail = inbox.wait_for_mail(lambda m: m["messageId"] == message["Message-ID"], timeout=10)
    assert mail["to"] == ["customer@example.com"]
    assert mail["subject"] == f"Order {HOSTILE}"
    assert mail["text"] == "Thank you for your order.\n"
    assert HOSTILE in mail["html"]

    index = httpx.get(inbox.url, timeout=10)
    page = httpx.get(f"{inbox.url}/mails/{mail['n']}", timeout=10)
    for response in (index, page):
        assert response.status_code == 200
        assert "<script" not in response.text
        assert "&lt;script&gt;" in response.text
        csp = response.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script" not in csp
    assert '<iframe sandbox="" ' in page.text
    assert 'srcdoc="&lt;p style=&#x27;color:#333&#x27;&gt;Thank you' in page.text
    assert httpx.get(f"{inbox.url}/mails/999999", timeout=10).status_code == 404


def test_the_mail_faults_answer_550_and_451(inbox: RunningInbox) -> None:
    inbox.set_faults(smtp={"refuse": "gone@example.com"})
    code, text = refusal(inbox, "gone@example.com")
    assert code == 550 and text.startswith(b"5.1.1")
    send(inbox, a_mail(to="other@example.com"))  # only that address is refused

    inbox.set_faults(smtp="transient")
    code, text = refusal(inbox, "other@example.com")
    assert code == 451 and text.startswith(b"4.3.0")

    inbox.set_faults(smtp="ok")
    send(inbox, a_mail(to="gone@example.com"))
    assert sorted(m["to"][0] for m in inbox.mails()) == ["gone@example.com", "other@example.com"]


def test_a_signed_webhook_is_kept_verified_and_a_tampered_one_refused(
    inbox: RunningInbox,
) -> None:
    order_id = str(uuid.uuid4())
    good_id, good = post_webhook(inbox, an_event(order_id))
    bad_id, bad = post_webhook(inbox, an_event(order_id), tamper=True)
    wrong_id, wrong = post_webhook(inbox, an_event(order_id), secret="whsec_" + "A" * 40)
    unsigned = httpx.post(inbox.webhook_url(), content=an_event(order_id), timeout=10)
    assert (good.status_code, bad.status_code, wrong.status_code) == (204, 401, 401)
    assert unsigned.status_code == 400

    kept = {d["webhookId"]: d for d in inbox.deliveries()}
    assert kept[good_id]["verified"] is True
    assert kept[good_id]["type"] == "order.paid" and kept[good_id]["orderId"] == order_id
    assert kept[good_id]["endpoint"] == LOCAL_RECEIVER and kept[good_id]["status"] == 204
    assert json.loads(kept[good_id]["body"])["orderNumber"] == "VLT-20250131-000001"
    assert kept[bad_id]["verified"] is False and kept[bad_id]["status"] == 401
    assert kept[wrong_id]["verified"] is False
    assert len(inbox.deliveries()) == 4  # the unsigned one too
    unknown = httpx.post(f"{inbox.url}/webhooks/nobody", content=b"{}", timeout=10)
    assert unknown.status_code == 404


def test_an_endpoint_fault_answers_its_status_after_its_delay(inbox: RunningInbox) -> None:
    inbox.set_faults(webhook={"endpoint": LOCAL_RECEIVER, "status": 503})
    msg_id, answered = post_webhook(inbox, an_event(str(uuid.uuid4())))
    assert answered.status_code == 503
    kept = inbox.wait_for_delivery(lambda d: d["webhookId"] == msg_id, timeout=5)
    assert kept["verified"] is True and kept["status"] == 503

    inbox.set_faults(webhook={"endpoint": LOCAL_RECEIVER, "status": 410, "delaySeconds": 0.5})
    started = time.monotonic()
    assert post_webhook(inbox, an_event(str(uuid.uuid4())))[1].status_code == 410
    assert time.monotonic() - started >= 0.5

    inbox.set_faults(webhook={"endpoint": LOCAL_RECEIVER, "status": 204})
    assert post_webhook(inbox, an_event(str(uuid.uuid4())))[1].status_code == 204


def test_the_api_refuses_bad_faults_big_bodies_and_other_hosts(inbox: RunningInbox) -> None:
    faults = f"{inbox.url}/api/faults"
    assert httpx.post(faults, json={"smtp": "sometimes"}, timeout=10).status_code == 400
    as_text = httpx.post(faults, content=b'{"smtp": "transient"}', timeout=10)
    assert as_text.status_code == 415  # a form or no-cors fetch elsewhere cannot set one
    big = httpx.post(inbox.webhook_url(), content=b"x" * (2 * 1024 * 1024), timeout=10)
    assert big.status_code == 413
    rebound = httpx.get(f"{inbox.url}/api/mails", headers={"host": "evil.example"}, timeout=10)
    assert rebound.status_code == 421


def test_a_restarted_inbox_keeps_its_mails_and_deliveries(tmp_path: Path) -> None:
    with running_inbox(tmp_path) as inbox:
        message = a_mail()
        send(inbox, message)
        msg_id, _ = post_webhook(inbox, an_event(str(uuid.uuid4())))
        before = (inbox.mails(), inbox.deliveries())
        inbox.restart()
        assert (inbox.mails(), inbox.deliveries()) == before
        assert before[0][0]["messageId"] == message["Message-ID"]
        assert before[1][0]["webhookId"] == msg_id
        send(inbox, a_mail())  # numbered after what it had
        assert [m["n"] for m in inbox.mails()] == [2, 1]


def test_the_stacks_endpoint_setting_is_one_the_worker_takes() -> None:
    [endpoint] = json.loads(webhook_endpoints_setting("http://127.0.0.1:8025"))
    taken = WebhookEndpoint.model_validate(endpoint)
    assert taken.url == f"http://127.0.0.1:8025/webhooks/{LOCAL_RECEIVER}"
    assert taken.events == ["*"]
