"""A kept message read as a mail program would show it: its headers decoded, its text and
HTML parts. A message the parser finds broken is shown as far as it goes, never refused."""

from __future__ import annotations

from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any


def _header(message: EmailMessage, name: str) -> str:
    try:
        value = message.get(name)
        # A folded header unfolds with the fold's space first (Python folds a long Subject
        # right after its name): shown as mail clients show it.
        return "" if value is None else str(value).strip()
    except (ValueError, LookupError, TypeError, IndexError):
        return ""


def _headers(message: EmailMessage) -> list[list[str]]:
    """Every header, in order, decoded (one that will not decode: as it came)."""
    pairs = []
    for name, value in message.raw_items():
        try:
            pairs.append([name, str(policy.default.header_fetch_parse(name, str(value)))])
        except (ValueError, LookupError, TypeError, IndexError):
            pairs.append([name, str(value)])
    return pairs


def _part(message: EmailMessage, subtype: str) -> str | None:
    """The body part of this subtype a mail program would show, or None."""
    part = message.get_body(preferencelist=(subtype,))
    if part is None:
        return None
    try:
        content = part.get_content()
    except (LookupError, ValueError, KeyError, AssertionError):
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else None
    # As a mail program shows it: the wire's CRLF line ends as \n.
    return content.replace("\r\n", "\n") if isinstance(content, str) else None


def read_mail(record: dict[str, Any], raw: bytes) -> dict[str, Any]:
    """The API's view of one kept mail: `record` (its envelope) and the message itself."""
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)  # what policy.default makes
    return {
        "n": record["n"],
        "receivedAt": record["receivedAt"],
        "mailFrom": record["mailFrom"],
        "to": record["rcptTos"],
        "from": _header(message, "From"),
        "toHeader": _header(message, "To"),
        "subject": _header(message, "Subject"),
        "date": _header(message, "Date"),
        "messageId": _header(message, "Message-ID"),
        "contentType": message.get_content_type(),
        "text": _part(message, "plain"),
        "html": _part(message, "html"),
        "headers": _headers(message),
    }
