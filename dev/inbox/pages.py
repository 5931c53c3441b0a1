"""The inbox's HTML pages. Every value shown is escaped (mails and webhook bodies are customer
data); a mail's HTML part is shown in an iframe with `sandbox=""` (no scripts, no forms, an
origin of its own) from an escaped `srcdoc`. Each page comes with its Content-Security-Policy:
nothing loads from anywhere, no script runs."""

from __future__ import annotations

import base64
import hashlib
import json
from html import escape
from typing import Any

STYLE = (
    "body{font:14px/1.45 system-ui,sans-serif;margin:1.5rem;color:#1d1d1f}"
    "table{border-collapse:collapse;width:100%;margin-bottom:2rem}"
    "th,td{text-align:left;padding:.3rem .6rem;border-bottom:1px solid #ddd;"
    "vertical-align:top;overflow-wrap:anywhere}"
    "th{background:#f4f4f6}pre{background:#f4f4f6;padding:.8rem;white-space:pre-wrap;"
    "overflow-wrap:anywhere}iframe{width:100%;height:70vh;border:1px solid #ccc;background:#fff}"
    ".no{color:#b00020;font-weight:600}.muted{color:#666}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
_LOCKED = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
# The list pages: their one stylesheet, by its hash.
LIST_CSP = f"{_LOCKED}; style-src 'sha256-{_STYLE_HASH}'"
# A mail's page: the mail's own styles (inline, as mails carry them) and data: images apply
# in its srcdoc frame, which inherits this policy. Scripts stay refused.
MAIL_CSP = f"{_LOCKED}; style-src 'unsafe-inline'; img-src data:"


def _page(title: str, body: str, refresh: bool = False) -> str:
    meta = '<meta http-equiv="refresh" content="5">' if refresh else ""
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">{meta}'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head>"
        f"<body>{body}</body></html>"
    )


def _table(headings: list[str], rows: list[str], empty: str) -> str:
    if not rows:
        return f'<p class="muted">{escape(empty)}</p>'
    head = "".join(f"<th>{escape(h)}</th>" for h in headings)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _cells(*values: object) -> str:
    return "".join(f"<td>{v}</td>" for v in values)


def _mail_rows(mails: list[dict[str, Any]]) -> list[str]:
    return [
        "<tr>"
        + _cells(
            escape(m["receivedAt"]),
            escape(", ".join(m["to"])),
            f'<a href="/mails/{int(m["n"])}">{escape(m["subject"] or "(no subject)")}</a>',
            escape(m["messageId"]),
        )
        + "</tr>"
        for m in mails
    ]


def _verified(d: dict[str, Any]) -> str:
    if d["verified"]:
        return "yes"
    return f'<span class="no">no</span> {escape(str(d.get("error") or ""))}'


def _delivery_rows(deliveries: list[dict[str, Any]]) -> list[str]:
    return [
        "<tr>"
        + _cells(
            escape(d["receivedAt"]),
            escape(d["endpoint"]),
            f'<a href="/deliveries/{int(d["n"])}">{escape(str(d["type"] or "(no type)"))}</a>',
            escape(str(d["orderId"] or "")),
            _verified(d),
            escape(str(d["status"])),
            escape(str(d["webhookId"] or "")),
        )
        + "</tr>"
        for d in deliveries
    ]


_DELIVERY_HEADINGS = ["Received", "Endpoint", "Type", "Order", "Verified", "Answered", "Id"]


def index_page(mails: list[dict[str, Any]], deliveries: list[dict[str, Any]]) -> str:
    body = (
        "<h1>Local inbox</h1>"
        '<p class="muted">What the dev stack sent: customer e-mails (SMTP) and webhooks. '
        "Newest first; this page reloads every 5 seconds.</p>"
        f"<h2>Mails ({len(mails)})</h2>"
        + _table(["Received", "To", "Subject", "Message-ID"], _mail_rows(mails), "No mail yet.")
        + f'<h2 id="webhooks">Webhook deliveries ({len(deliveries)})</h2>'
        + _table(_DELIVERY_HEADINGS, _delivery_rows(deliveries), "No webhook yet.")
    )
    return _page("Local inbox", body, refresh=True)


def webhooks_page(deliveries: list[dict[str, Any]]) -> str:
    body = f'<p><a href="/">All</a></p><h1>Webhook deliveries ({len(deliveries)})</h1>' + _table(
        _DELIVERY_HEADINGS, _delivery_rows(deliveries), "No webhook yet."
    )
    return _page("Webhook deliveries", body, refresh=True)


def _fields(pairs: list[tuple[str, object]]) -> str:
    rows = "".join(f"<tr><th>{escape(k)}</th><td>{escape(str(v))}</td></tr>" for k, v in pairs)
    return f"<table>{rows}</table>"


def mail_page(mail: dict[str, Any]) -> str:
    html_part = mail["html"]
    shown = (
        f'<iframe sandbox="" referrerpolicy="no-referrer" title="The mail as HTML" '
        f'srcdoc="{escape(html_part, quote=True)}"></iframe>'
        if html_part is not None
        else '<p class="muted">No HTML part.</p>'
    )
    text = mail["text"]
    body = (
        '<p><a href="/">All mail</a></p>'
        f"<h1>{escape(mail['subject'] or '(no subject)')}</h1>"
        + _fields(
            [
                ("From", mail["from"]),
                ("To", mail["toHeader"]),
                ("Delivered to", ", ".join(mail["to"])),
                ("Date", mail["date"]),
                ("Message-ID", mail["messageId"]),
                ("Received", mail["receivedAt"]),
            ]
        )
        + f"<h2>HTML part</h2>{shown}<h2>Text part</h2>"
        + (f"<pre>{escape(text)}</pre>" if text is not None else '<p class="muted">None.</p>')
        + "<h2>All headers</h2>"
        + _fields([(name, value) for name, value in mail["headers"]])
    )
    return _page(mail["subject"] or "Mail", body)


def delivery_page(delivery: dict[str, Any]) -> str:
    try:
        shown = json.dumps(json.loads(delivery["body"]), indent=2, ensure_ascii=False)
    except ValueError:
        shown = delivery["body"]
    fields = ["endpoint", "webhookId", "webhookTimestamp", "type", "orderId", "receivedAt"]
    fields += ["verified", "error", "status", "delaySeconds"]
    body = (
        '<p><a href="/webhooks">All webhook deliveries</a></p>'
        f"<h1>{escape(str(delivery['type'] or 'Webhook'))}</h1>"
        + _fields([(f, delivery.get(f)) for f in fields])
        + f"<h2>Body</h2><pre>{escape(shown)}</pre>"
    )
    return _page("Webhook delivery", body)


def not_found_page() -> str:
    return _page("Not found", '<h1>Not found</h1><p><a href="/">The inbox</a></p>')
