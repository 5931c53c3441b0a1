"""The customer's mail for an order event, rendered (activities/order_mail.py is the way in).

The wording lives in activities/mail_templates/: `<event type>.txt` and `<event type>.html`
per mail, with `base.html` (the HTML layout) and the `_*` partials they share. The first
line of the `.txt` template is the Subject; the rest is the text part. A shop's directory
(MailSettings.templates_dir) is searched first, so a file there replaces the packaged one
of the same name. Templates get a prepared view of the order (`_context`): amounts already
formatted in the order's currency, every customer-supplied value on one line.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from vult.domain.money import currency_exponent
from vult.domain.order_events import CUSTOMER_MAILS, message_id

PACKAGED_TEMPLATES = Path(__file__).with_name("mail_templates")
DEFAULT_DOMAIN = "vult.localhost"
# The payment statuses of an order whose money was taken: cancelling it refunds the money.
_MONEY_TAKEN = frozenset({"succeeded", "partially_refunded", "refund_pending", "refunded"})
# What no header or one-line value may hold: control characters (CR and LF among them).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_MAILBOX = re.compile(r"[^\s@,;:<>()\[\]\\\"]+@[^\s@,;:<>()\[\]\\\"]+")
_DOMAIN = re.compile(r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*")
_EVENT_ID = re.compile(r"[A-Za-z0-9_.-]{1,100}")


@dataclass(frozen=True)
class MailSettings:
    shop_name: str
    shop_url: str
    mail_from: str
    smtp_host: str
    smtp_port: int
    smtp_timeout_seconds: float = 10.0
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    templates_dir: str = ""  # "" = only the packaged templates


@dataclass(frozen=True)
class Line:
    """A line of the receipt."""

    name: str
    size: str
    quantity: int
    unit_price: str
    total: str


@dataclass(frozen=True)
class Item:
    """Some of a line: what shipped, what did not, what came back."""

    name: str
    size: str
    quantity: int


def currency_style(currency: str) -> tuple[str, int]:
    """How an amount in `currency` is written: its symbol (or its code and a space), and its
    minor unit's exponent, from the project's one table (vult/domain/money.py: JPY 0,
    KWD 3, most 2)."""
    code = currency.strip().upper()
    symbol = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}.get(code, f"{code} ")
    return symbol, currency_exponent(code)


def format_money(amount: object, currency: str) -> str:
    """12.5 USD -> "$12.50", 1250 JPY -> "¥1,250", 1.2345 KWD -> "KWD 1.234" (half to even)."""
    symbol, exponent = currency_style(currency)
    value = _decimal(amount).quantize(Decimal(1).scaleb(-exponent), rounding=ROUND_HALF_EVEN)
    sign = "-" if value < 0 else ""
    return f"{sign}{symbol}{abs(value):,.{exponent}f}"


def order_link(settings: MailSettings, order_id: str) -> str:
    """The customer's page of the order."""
    return f"{settings.shop_url.rstrip('/')}/orders/{uuid.UUID(str(order_id))}"


def compose(event: Mapping[str, Any], settings: MailSettings) -> EmailMessage | None:
    """The customer's mail for this event (text and HTML parts), or None when its type sends
    none. Raises ValueError for an event it cannot make a mail from (no recipient, no
    timestamp, a malformed amount) or a template that does not render."""
    kind = event.get("type")
    if not isinstance(kind, str) or kind not in CUSTOMER_MAILS:
        return None
    data = _mapping(event.get("data"))
    context = _context(kind, event, data, _mapping(event.get("detail")), settings)
    environment = _environment(settings.templates_dir)
    try:
        first, _, body = environment.get_template(f"{kind}.txt").render(context).partition("\n")
        subject = (
            _one_line(first)[:250]
            or f"{_one_line(settings.shop_name)}: order {context['order_number']}"
        )
        html = environment.get_template(f"{kind}.html").render(context, subject=subject)
    except Exception as error:  # a shop's template may fail any way: the mail cannot be made
        raise ValueError(f"the {kind} mail does not render: {error!r}") from error
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = _one_line(settings.mail_from)
    message["To"] = _recipient(data.get("customerEmail"))
    message["Date"] = _date(event.get("timestamp"))
    message["Message-ID"] = message_id(_event_id(event.get("id")), _domain(settings.mail_from))
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(body.lstrip("\n"))
    message.add_alternative(html, subtype="html")
    return message


def _context(
    kind: str,
    event: Mapping[str, Any],
    data: Mapping[str, Any],
    detail: Mapping[str, Any],
    settings: MailSettings,
) -> dict[str, Any]:
    currency = _one_line(data.get("currency"))
    if not currency:
        raise ValueError("the order has no currency")

    def money(amount: object, in_currency: str | None = None) -> str:
        return format_money(amount, in_currency or currency)

    items = [_mapping(li) for li in _list(data.get("lineItems"))]
    by_id = {str(li.get("lineItemId")): li for li in items}
    lines = _items(detail.get("lines"), by_id)
    shipping, returning = kind == "order.shipped", kind == "order.returned"
    shipping_address = _address(data.get("shippingAddress"))
    billing_address = _address(data.get("billingAddress"))
    amount = detail.get("amount")
    return {
        "event_type": kind,
        "shop_name": _one_line(settings.shop_name),
        "shop_url": settings.shop_url,
        "order_link": order_link(settings, event.get("orderId") or data.get("orderId") or ""),
        "order_number": _one_line(event.get("orderNumber") or data.get("orderNumber")),
        "customer_name": shipping_address[0] if shipping_address else "",
        "currency": currency.upper(),
        "lines": [
            Line(
                _one_line(li.get("productName")),
                _one_line(li.get("productSize")),
                _int(li.get("quantity")),
                money(li.get("unitPrice")),
                money(li.get("subTotal")),
            )
            for li in items
        ],
        "subtotal": money(data.get("subTotal")),
        "tax": money(data.get("tax")),
        "shipping": money(data.get("shippingCost")),
        "total": money(data.get("total")),
        "shipping_address": shipping_address,
        "billing_address": [] if billing_address == shipping_address else billing_address,
        "authorized": kind == "order.authorized",
        "payment_error": _one_line(detail.get("message") or data.get("paymentErrorMessage")),
        "cancel_reason": _one_line(detail.get("reason") or data.get("cancellationReason")),
        "was_paid": data.get("paymentStatus") in _MONEY_TAKEN
        or _decimal(data.get("amountRefunded") or 0) > 0,
        "refund_amount": None if amount is None else money(amount, detail.get("currency")),
        "refund_whole": detail.get("whole") is True,
        "refund_purpose": _one_line(detail.get("purpose")) or "other",
        "partial": detail.get("partial") is True,
        # A shipment without lines is the whole order.
        "shipped": (lines or [_item(li, _int(li.get("quantity"))) for li in items])
        if shipping
        else [],
        "remaining": _remaining(items, detail.get("lines")) if shipping else [],
        "returned": lines if returning else [],
        "carrier": _one_line(detail.get("carrier") or data.get("shippingCarrier")),
        "tracking_number": _one_line(detail.get("trackingNumber") or data.get("trackingNumber")),
        "money": money,
        "order": data,  # as the API serves it, for a shop's own templates
    }


def _items(lines: object, by_id: Mapping[str, Mapping[str, Any]]) -> list[Item]:
    """An event's lines ({lineItemId, quantity}) named from the order's line items."""
    found = []
    for entry in map(_mapping, _list(lines)):
        line = by_id.get(str(entry.get("lineItemId")))
        if line is not None and (quantity := _int(entry.get("quantity"))) > 0:
            found.append(_item(line, quantity))
    return found


def _item(line: Mapping[str, Any], quantity: int) -> Item:
    return Item(_one_line(line.get("productName")), _one_line(line.get("productSize")), quantity)


def _remaining(items: list[Mapping[str, Any]], lines: object) -> list[Item]:
    """What a shipment of some lines left out: each line's quantity less what has shipped
    (the order's quantityShipped, or this shipment's lines when the order has none yet)."""
    now = {str(e.get("lineItemId")): _int(e.get("quantity")) for e in map(_mapping, _list(lines))}
    if not now:
        return []
    left = []
    for li in items:
        recorded = li.get("quantityShipped")
        done = max(
            now.get(str(li.get("lineItemId")), 0), recorded if isinstance(recorded, int) else 0
        )
        if (quantity := _int(li.get("quantity")) - done) > 0:
            left.append(_item(li, quantity))
    return left


def _address(value: object) -> list[str]:
    if not isinstance(value, Mapping):
        return []
    place = " ".join(
        p for p in (_one_line(value.get("state")), _one_line(value.get("postalCode"))) if p
    )
    city = ", ".join(p for p in (_one_line(value.get("city")), place) if p)
    parts = ("fullName", "addressLine1", "addressLine2")
    lines = [*(_one_line(value.get(p)) for p in parts), city, _one_line(value.get("country"))]
    return [line for line in lines if line]


@lru_cache(maxsize=8)
def _environment(templates_dir: str) -> jinja2.Environment:
    folders = [templates_dir] if templates_dir else []
    return jinja2.Environment(
        loader=jinja2.ChoiceLoader(
            [jinja2.FileSystemLoader(f) for f in [*folders, str(PACKAGED_TEMPLATES)]]
        ),
        autoescape=_escaped,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _escaped(name: str | None) -> bool:
    """Every template but a text part's is HTML-escaped."""
    return name is None or not name.endswith(".txt")


def _one_line(value: object) -> str:
    """A value as one line of text: control characters (CR, LF) become spaces."""
    return "" if value is None else " ".join(_CONTROL.sub(" ", str(value)).split())


def _recipient(value: object) -> str:
    address = _one_line(value)
    if not _MAILBOX.fullmatch(address):
        raise ValueError(f"the order's customerEmail is not one address: {address[:100]!r}")
    return address


def _domain(mail_from: str) -> str:
    _, at, domain = parseaddr(_one_line(mail_from))[1].rpartition("@")
    return domain if at and _DOMAIN.fullmatch(domain) else DEFAULT_DOMAIN


def _event_id(value: object) -> str:
    if not isinstance(value, str) or not _EVENT_ID.fullmatch(value):
        raise ValueError(f"not an event id: {str(value)[:100]!r}")
    return value


def _date(value: object) -> str:
    """The event's timestamp as RFC 5322 writes it: the same mail has the same Date."""
    if not isinstance(value, str):
        raise ValueError("the event has no timestamp")
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return format_datetime(moment.astimezone(UTC))


def _decimal(value: object) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ValueError(f"not an amount: {value!r}")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"not an amount: {value!r}") from None
    if not number.is_finite():
        raise ValueError(f"not an amount: {value!r}")
    return number


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []
