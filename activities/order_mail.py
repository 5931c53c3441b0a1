"""Customer e-mails for order events: compose one from an event, send it over SMTP.

    message = compose(event, settings)   # None when the event's type mails no one
    answer = send(message, settings)     # sent / refused / try_again, never raises for SMTP

The wording is in Jinja2 templates, activities/mail_templates/, one pair per mail:
`<event type>.txt` (the text part) and `<event type>.html` (the HTML part, extending
`base.html`), sharing `_receipt.*` and `_macros.*`. **The first line of the `.txt` template
is the mail's Subject**; the lines after it are the text part. A shop rewords a mail without
code by setting `templates_dir` to a directory of its own: a template there replaces the
packaged one of the same name, the others stay. HTML templates are autoescaped, undefined
names are errors (StrictUndefined), and the templates get formatted values (see
activities/mail_render.py, `_context`); `order` is the order as the API serves it, and
`money(amount)` formats an amount in the order's currency.

The mail's Message-ID comes from the event's id (vult/domain/order_events.py `message_id`)
and its Date from the event's timestamp: composing the same event again makes the same mail.
"""

from __future__ import annotations

from activities.mail_render import (
    MailSettings,
    compose,
    currency_style,
    format_money,
    order_link,
)
from activities.mail_send import MailAnswer, send

__all__ = [
    "MailAnswer",
    "MailSettings",
    "compose",
    "currency_style",
    "format_money",
    "order_link",
    "send",
]
