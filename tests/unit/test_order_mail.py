"""Customer e-mails for order events (activities/order_mail.py): each mail composed from an
event as the outbox holds it, and sent to a real SMTP server in this process (aiosmtpd)."""

from __future__ import annotations

import copy
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes, policy
from email.message import EmailMessage
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as Server
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from activities.order_mail import (
    MailAnswer,
    MailSettings,
    compose,
    format_money,
    order_link,
    send,
)
from vult.domain.order_events import CUSTOMER_MAILS, OrderEventType, message_id

ORDER_ID = "3f2b8c1e-9a4d-4e6f-8b2a-1c3d5e7f9a0b"
TEE = "11111111-1111-4111-8111-111111111111"
CAP = "22222222-2222-4222-8222-222222222222"
EVENT_ID = "evt_" + "5c" * 16
SETTINGS = MailSettings(
    shop_name="Vult",
    shop_url="http://127.0.0.1:8000",
    mail_from="Vult <orders@vult.localhost>",
    smtp_host="127.0.0.1",
    smtp_port=25,
)
ADDRESS = {
    "fullName": "Ada Lovelace",
    "addressLine1": "1 Main St",
    "addressLine2": "Apt 4",
    "city": "Springfield",
    "state": "IL",
    "postalCode": "62701",
    "country": "US",
    "phone": "+1 555 0100",
}


def line(line_id: str, name: str, size: str | None, unit: float, quantity: int) -> dict:
    return {
        "lineItemId": line_id,
        "productId": "prod-" + line_id[:4],
        "productName": name,
        "productSize": size,
        "productImageUrl": None,
        "unitPrice": unit,
        "quantity": quantity,
        "subTotal": unit * quantity,
        "quantityShipped": None,
        "quantityReturned": 0,
    }


def order_event(kind: str, detail: dict | None = None, **changes: Any) -> dict:
    """An order event as its JSON body decodes: a paid USD order of two tees and two caps."""
    data = {
        "orderId": ORDER_ID,
        "orderNumber": "VLT-20261207-000001",
        "customerEmail": "ada@example.com",
        "status": "Confirmed",
        "subTotal": 60.0,
        "tax": 4.8,
        "shippingCost": 5.0,
        "total": 69.8,
        "currency": "USD",
        "shippingAddress": dict(ADDRESS),
        "billingAddress": None,
        "lineItems": [line(TEE, "Tee", "M", 20.0, 2), line(CAP, "Cap", None, 10.0, 2)],
        "createdDate": "2026-12-07T14:58:00Z",
        "updatedDate": "2026-12-07T15:00:00Z",
        "paymentErrorMessage": None,
        "cancellationReason": None,
        "shippingCarrier": None,
        "trackingNumber": None,
        "paymentStatus": "succeeded",
        "amountRefunded": 0.0,
        "disputeStatus": None,
        "resolutionNote": None,
        "resumedAt": None,
        "amountCaptured": None,
        "returns": [],
    }
    data.update(changes)
    return {
        "id": EVENT_ID,
        "type": kind,
        "timestamp": "2026-12-07T15:00:00.123456Z",
        "orderId": ORDER_ID,
        "orderNumber": data["orderNumber"],
        "data": data,
        "detail": detail or {},
    }


def mail(event: dict, settings: MailSettings = SETTINGS) -> EmailMessage:
    message = compose(event, settings)
    assert message is not None
    return message


def text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def html_of(message: EmailMessage) -> str:
    part = message.get_body(("html",))
    assert part is not None
    return str(part.get_content())


def visible(html: str) -> str:
    """What a reader of the HTML part sees: the tags left out, the entities read."""
    return " ".join(unescape(re.sub(r"<[^>]*>", "", html)).split())


REFUND = {"refundId": "re_1", "amount": "10.00", "currency": "USD", "whole": False}
SHIPPED_ALL = {"lines": [], "partial": False, "carrier": "UPS", "trackingNumber": "1Z999AA1"}
SHIPPED_SOME = {
    "lines": [{"lineItemId": TEE, "quantity": 1}],
    "partial": True,
    "carrier": "UPS",
    "trackingNumber": "1Z999AA1",
}
RETURNED = {
    "returnKey": "rk-1",
    "lines": [{"lineItemId": CAP, "quantity": 1}],
    "amount": "10.00",
    "currency": "USD",
}

# (event type, detail, words of the Subject, words of both parts)
MAILS = [
    ("order.paid", {}, "receipt", ["received your payment of $69.80", "Tee", "$40.00"]),
    ("order.authorized", {}, "is confirmed", ["charged when your order ships", "$69.80"]),
    ("order.payment_failed", {"message": "Your card was declined."}, "did not go through",
     ["Your card was declined.", "another card"]),
    ("order.cancelled", {"reason": "customer asked"}, "is cancelled",
     ["customer asked", "refunded to the card you used"]),
    ("order.refunded", {**REFUND, "purpose": "cancellation"}, "refund of $10.00",
     ["refunded $10.00", "Refunds usually take 5 to 10", "card you paid with", "partial refund"]),
    ("order.shipped", SHIPPED_ALL, "has shipped", ["UPS", "1Z999AA1", "2 × Tee"]),
    ("order.returned", RETURNED, "received your return", ["1 × Cap", "Your refund: $10.00"]),
]  # fmt: skip


def test_every_mail_type_has_a_case_here() -> None:
    assert {m[0] for m in MAILS} == {str(kind) for kind in CUSTOMER_MAILS}


@pytest.mark.parametrize("kind,detail,subject,words", MAILS, ids=[m[0] for m in MAILS])
def test_each_mail_has_its_subject_headers_and_both_parts(
    kind: str, detail: dict, subject: str, words: list[str]
) -> None:
    message = mail(order_event(kind, detail))
    assert message["Subject"].startswith("Vult: ")
    assert subject in message["Subject"] and "VLT-20261207-000001" in message["Subject"]
    assert message["From"] == "Vult <orders@vult.localhost>"
    assert message["To"] == "ada@example.com"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message.get_content_type() == "multipart/alternative"
    parts = [p.get_content_type() for p in message.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    text, html = text_of(message), html_of(message)
    assert text.startswith("Hello Ada Lovelace,")
    assert "Subject" not in text and not text.startswith(message["Subject"])
    for word in words:
        assert word in text, word
        assert word in visible(html), word
    assert f"<title>{message['Subject']}</title>" in html
    link = f"http://127.0.0.1:8000/orders/{ORDER_ID}"
    assert link in text and f'href="{link}"' in html


def test_the_same_event_makes_the_same_message_id_and_date() -> None:
    first, second = mail(order_event("order.paid")), mail(order_event("order.paid"))
    assert first["Message-ID"] == second["Message-ID"] == message_id(EVENT_ID, "vult.localhost")
    assert first["Date"] == second["Date"] == "Mon, 07 Dec 2026 15:00:00 +0000"
    other = order_event("order.paid")
    other["id"] = "evt_" + "6d" * 16
    assert mail(other)["Message-ID"] != first["Message-ID"]


def test_the_message_id_is_in_the_senders_domain() -> None:
    shop = MailSettings(**{**SETTINGS.__dict__, "mail_from": "Shop <mail@shop.example>"})
    assert mail(order_event("order.paid"), shop)["Message-ID"] == f"<{EVENT_ID}@shop.example>"
    bare = MailSettings(**{**SETTINGS.__dict__, "mail_from": "Vult"})
    assert mail(order_event("order.paid"), bare)["Message-ID"] == f"<{EVENT_ID}@vult.localhost>"


def test_the_receipt_lists_lines_totals_and_both_addresses() -> None:
    billing = {**ADDRESS, "fullName": "Charles Babbage", "addressLine1": "2 Engine Row"}
    message = mail(order_event("order.paid", billingAddress=billing))
    text = text_of(message)
    assert "Tee (size M)\n  2 × $20.00 = $40.00" in text
    assert "Cap\n  2 × $10.00 = $20.00" in text
    for label, amount in [("Subtotal", "$60.00"), ("Tax", "$4.80"), ("Shipping", "$5.00")]:
        assert f"{label}:" in text and amount in text
    assert "Total:     $69.80" in text
    assert "1 Main St" in text and "Apt 4" in text and "Springfield, IL 62701" in text
    assert "Billing address:\n  Charles Babbage\n  2 Engine Row" in text
    assert "+1 555 0100" not in text
    html = html_of(message)
    assert "$69.80" in html and "2 Engine Row" in html and "Size M" in html


def test_a_billing_address_like_the_shipping_one_is_not_repeated() -> None:
    text = text_of(mail(order_event("order.paid", billingAddress=dict(ADDRESS))))
    assert "Billing address" not in text and text.count("1 Main St") == 1


def test_an_authorization_is_not_worded_as_a_payment() -> None:
    text = text_of(mail(order_event("order.authorized", paymentStatus="authorized")))
    assert "received your payment" not in text and "authorized for $69.80" in text
    assert "Total:     $69.80" in text


def test_a_cancelled_order_never_paid_says_nothing_was_charged() -> None:
    paid = text_of(mail(order_event("order.cancelled", {"reason": None}, paymentStatus="refunded")))
    assert "refunded to the card you used" in paid and "Reason" not in paid
    unpaid = order_event("order.cancelled", {"reason": "payment window expired"})
    unpaid["data"]["paymentStatus"] = "canceled"  # an authorization released
    text = text_of(mail(unpaid))
    assert "You have not been charged" in text and "refund" not in text
    assert "Reason: payment window expired" in text


def test_a_refund_says_whole_or_partial_and_a_returns_refund_is_worded_so() -> None:
    whole = mail(order_event("order.refunded", {**REFUND, "amount": "69.80", "whole": True,
                                                "purpose": "cancellation"}))  # fmt: skip
    assert "refund of your whole payment" in text_of(whole)
    assert "refund of $69.80" in whole["Subject"]
    returned = mail(order_event("order.refunded", {**REFUND, "purpose": "return"}))
    assert "for your return" in returned["Subject"]
    assert "items you returned" in text_of(returned) and "partial refund" in text_of(returned)


def test_a_partial_shipment_names_what_shipped_and_what_will_not_follow() -> None:
    message = mail(order_event("order.shipped", SHIPPED_SOME))
    assert "part of your order" in message["Subject"]
    text = text_of(message)
    shipped, rest = text.split("will not be sent:")
    assert "In this shipment:\n  - 1 × Tee (size M)\n" in shipped
    assert "Cap" not in shipped
    assert rest.startswith("\n  - 1 × Tee (size M)\n  - 2 × Cap\n")
    html = html_of(message)
    assert "<li>1 × Tee (size M)</li>" in html and "<li>2 × Cap</li>" in html


def test_a_whole_shipment_lists_every_line_and_no_remainder() -> None:
    text = text_of(mail(order_event("order.shipped", SHIPPED_ALL)))
    assert "  - 2 × Tee (size M)\n  - 2 × Cap" in text
    assert "will not be sent" not in text
    assert "Carrier: UPS\nTracking number: 1Z999AA1" in text


def test_a_shipment_counts_what_the_order_says_has_shipped() -> None:
    event = order_event("order.shipped", SHIPPED_SOME)
    event["data"]["lineItems"][0]["quantityShipped"] = 1
    event["data"]["lineItems"][1]["quantityShipped"] = 1  # shipped before: counted as gone
    rest = text_of(mail(event)).split("will not be sent:")[1]
    assert "  - 1 × Tee (size M)\n  - 1 × Cap\n" in rest


def test_customer_text_is_escaped_in_html_and_kept_on_one_line() -> None:
    event = order_event("order.paid")
    event["data"]["lineItems"][0]["productName"] = "<script>alert('x')</script> Tee"
    event["data"]["shippingAddress"]["fullName"] = 'Ada "<b>" Lovelace'
    event["data"]["shippingAddress"]["city"] = "Springfield\r\nBcc: evil@example.com"
    message = mail(event)
    html = html_of(message)
    assert "<script>" not in html and "<b>" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; Tee" in html
    assert "Ada &#34;&lt;b&gt;&#34; Lovelace" in html
    text = text_of(message)
    assert "<script>alert('x')</script> Tee" in text  # the text part is not HTML
    assert "Springfield Bcc: evil@example.com, IL" in text
    assert message["Bcc"] is None


def test_header_values_cannot_carry_another_header() -> None:
    shop = MailSettings(**{**SETTINGS.__dict__, "shop_name": "Vult\r\nBcc: evil@example.com"})
    event = order_event("order.paid", orderNumber="VLT-1\nX-Injected: yes")
    event["orderNumber"] = "VLT-1\nX-Injected: yes"
    message = mail(event, shop)
    assert message["Bcc"] is None and message["X-Injected"] is None
    raw = message.as_bytes()
    assert b"\nBcc:" not in raw and b"\nX-Injected:" not in raw
    assert (
        message["Subject"]
        == "Vult Bcc: evil@example.com: receipt for your order VLT-1 X-Injected: yes"
    )
    for bad in ["ada@example.com\r\nBcc: evil@example.com", "ada@example.com, evil@example.com"]:
        with pytest.raises(ValueError):
            compose(order_event("order.paid", customerEmail=bad), SETTINGS)


def test_a_shops_directory_replaces_only_the_templates_it_has(tmp_path: Path) -> None:
    (tmp_path / "order.paid.txt").write_text(
        "{{ shop_name }} thanks you for {{ order_number }}\nPaid: {{ total }}. {{ order_link }}\n"
    )
    shop = MailSettings(**{**SETTINGS.__dict__, "templates_dir": str(tmp_path)})
    message = mail(order_event("order.paid"), shop)
    assert message["Subject"] == "Vult thanks you for VLT-20261207-000001"
    assert text_of(message) == f"Paid: $69.80. http://127.0.0.1:8000/orders/{ORDER_ID}\n"
    assert "Here is your receipt" in html_of(message)  # the packaged HTML part
    assert "Here is your receipt" in text_of(mail(order_event("order.paid")))  # no leak


def test_a_template_naming_what_it_is_not_given_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "order.paid.txt").write_text("Subject {{ no_such_value }}\nbody\n")
    shop = MailSettings(**{**SETTINGS.__dict__, "templates_dir": str(tmp_path)})
    with pytest.raises(ValueError, match="no_such_value"):
        compose(order_event("order.paid"), shop)


@pytest.mark.parametrize("kind", ["order.placed", "order.delivered", "order.disputed", "x"])
def test_an_event_the_customer_gets_no_mail_for_composes_none(kind: str) -> None:
    assert OrderEventType.PLACED not in CUSTOMER_MAILS
    assert compose(order_event(kind), SETTINGS) is None


@pytest.mark.parametrize(
    "amount,currency,written",
    [
        (12.5, "USD", "$12.50"),
        ("1234567.891", "usd", "$1,234,567.89"),
        (0.125, "USD", "$0.12"),  # half to even
        (12.5, "EUR", "€12.50"),
        (1250, "JPY", "¥1,250"),
        ("1250.4", "JPY", "¥1,250"),
        ("1.2345", "KWD", "KWD 1.234"),
        (7, "BHD", "BHD 7.000"),
        (99.9, "CHF", "CHF 99.90"),
        ("-5", "USD", "-$5.00"),
    ],
)
def test_amounts_are_written_in_the_currencys_minor_unit(
    amount: object, currency: str, written: str
) -> None:
    assert format_money(amount, currency) == written


@pytest.mark.parametrize("amount", [None, True, "ten", float("nan")])
def test_what_is_not_an_amount_is_refused(amount: object) -> None:
    with pytest.raises(ValueError):
        format_money(amount, "USD")


def test_a_yen_order_has_no_decimals() -> None:
    event = order_event(
        "order.paid", currency="JPY", subTotal=2500, tax=250, shippingCost=0, total=2750,
        lineItems=[line(TEE, "Tee", "M", 1250, 2)],
    )  # fmt: skip
    text = text_of(mail(event))
    assert "2 × ¥1,250 = ¥2,500" in text and "Total:     ¥2,750" in text and "¥2,750.00" not in text


def test_the_order_link_is_the_shops_order_page() -> None:
    shop = MailSettings(**{**SETTINGS.__dict__, "shop_url": "https://shop.example/"})
    assert order_link(shop, ORDER_ID) == f"https://shop.example/orders/{ORDER_ID}"
    with pytest.raises(ValueError):
        order_link(shop, "../admin")


# --- sending -------------------------------------------------------------------------------


class Recording:
    """An SMTP server's handler: accepts every recipient, except those it answers for."""

    def __init__(self, rcpt: dict[str, str] | None = None, data: str | None = None) -> None:
        self.rcpt = rcpt or {}
        self.data = data
        self.received: list[Envelope] = []

    async def handle_RCPT(
        self, server: Server, session: Session, envelope: Envelope, address: str, options: list
    ) -> str:
        if address in self.rcpt:
            return self.rcpt[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Server, session: Session, envelope: Envelope) -> str:
        if self.data is not None:
            return self.data
        self.received.append(copy.copy(envelope))
        return "250 2.0.0 Ok: queued as 4XyZ"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def smtp_server(handler: Recording, **server_options: Any) -> Iterator[MailSettings]:
    controller = Controller(
        handler, hostname="127.0.0.1", port=free_port(), ready_timeout=5, **server_options
    )
    controller.start()
    try:
        yield MailSettings(
            **{**SETTINGS.__dict__, "smtp_port": controller.port, "smtp_timeout_seconds": 2.0}
        )
    finally:
        controller.stop()


def timed_send(message: EmailMessage, settings: MailSettings) -> tuple[MailAnswer, float]:
    started = time.monotonic()
    answer = send(message, settings)
    return answer, time.monotonic() - started


def test_a_mail_the_server_accepts_is_sent() -> None:
    handler = Recording()
    message = mail(order_event("order.paid"))
    with smtp_server(handler) as settings:
        answer, took = timed_send(message, settings)
    assert answer == MailAnswer("sent", "250 2.0.0 Ok: queued as 4XyZ")
    assert took < 2
    [envelope] = handler.received
    assert envelope.mail_from == "orders@vult.localhost"
    assert envelope.rcpt_tos == ["ada@example.com"]
    assert isinstance(envelope.content, bytes)
    got = message_from_bytes(envelope.content, policy=policy.default)
    assert got["Message-ID"] == message["Message-ID"] and got["Subject"] == message["Subject"]
    assert got.get_content_type() == "multipart/alternative"


def test_an_address_the_server_does_not_know_is_refused() -> None:
    handler = Recording(rcpt={"ada@example.com": "550 5.1.1 no such user"})
    with smtp_server(handler) as settings:
        answer = send(mail(order_event("order.paid")), settings)
    assert answer == MailAnswer("refused", "550 5.1.1 no such user")
    assert not handler.received


def test_a_temporary_refusal_is_tried_again() -> None:
    handler = Recording(rcpt={"ada@example.com": "451 4.3.0 try later"})
    with smtp_server(handler) as settings:
        answer = send(mail(order_event("order.paid")), settings)
    assert answer == MailAnswer("try_again", "451 4.3.0 try later")


@pytest.mark.parametrize(
    "reply,outcome", [("554 5.6.0 message refused", "refused"), ("452 4.3.1 full", "try_again")]
)
def test_an_answer_to_the_message_itself_is_classified_by_its_code(
    reply: str, outcome: str
) -> None:
    with smtp_server(Recording(data=reply)) as settings:
        answer = send(mail(order_event("order.paid")), settings)
    assert answer == MailAnswer(outcome, reply)  # type: ignore[arg-type]


def test_a_closed_port_is_tried_again_at_once() -> None:
    closed = MailSettings(**{**SETTINGS.__dict__, "smtp_port": free_port()})
    answer, took = timed_send(mail(order_event("order.paid")), closed)
    assert answer.outcome == "try_again" and took < 1
    assert "ConnectionRefusedError" in answer.text and f":{closed.smtp_port}" in answer.text
    assert len(answer.text) <= 500


@contextmanager
def stalling_server(dribble: bool) -> Iterator[int]:
    """A server that never greets (dribble=False), or greets and then answers EHLO one
    continuation line at a time, forever (dribble=True): only a deadline ends the exchange."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(3)
    stop = threading.Event()

    def serve() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            try:
                conn.sendall(b"220 slow.example ESMTP\r\n")
                conn.recv(1024)
                for _ in range(30):  # 3 s at most, should the client never give up
                    if stop.wait(0.1):
                        return
                    conn.sendall(b"250-still thinking\r\n")
            except OSError:
                return

    thread = threading.Thread(target=serve, daemon=True)
    if dribble:
        thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        listener.close()
        if dribble:
            thread.join(timeout=3)


@pytest.mark.parametrize("dribble", [False, True], ids=["silent", "dribbling"])
def test_a_slow_server_is_cut_off_at_the_timeout(dribble: bool) -> None:
    with stalling_server(dribble) as port:
        slow = MailSettings(**{**SETTINGS.__dict__, "smtp_port": port, "smtp_timeout_seconds": 0.5})
        answer, took = timed_send(mail(order_event("order.paid")), slow)
    assert answer.outcome == "try_again", answer
    assert 0.4 < took < 1.5


def login_as(user: bytes, password: bytes) -> Any:
    def authenticate(
        server: Server, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        good = isinstance(data, LoginPassword) and (data.login, data.password) == (user, password)
        return AuthResult(success=good, handled=False)  # False: the server answers 535

    return authenticate


@pytest.mark.parametrize("password,outcome", [("s3cret", "sent"), ("wrong", "try_again")])
def test_the_login_is_used_when_configured_and_a_refused_one_is_tried_again(
    password: str, outcome: str
) -> None:
    handler = Recording()
    options = {"authenticator": login_as(b"shop", b"s3cret"), "auth_require_tls": False}
    with smtp_server(handler, **options) as settings:
        settings = MailSettings(
            **{**settings.__dict__, "smtp_username": "shop", "smtp_password": password}
        )
        answer = send(mail(order_event("order.paid")), settings)
    assert answer.outcome == outcome, answer
    assert len(handler.received) == (outcome == "sent")
    assert password not in answer.text
    if outcome == "try_again":
        assert "535 5.7.8 Authentication credentials invalid" in answer.text
