"""Logging that never carries secrets or card data, whatever a library decides to log."""

from __future__ import annotations

import logging
import re

_PATTERNS = [
    (re.compile(r"\b(sk|rk)_(live|test)_[A-Za-z0-9_]+"), r"\1_\2_[REDACTED]"),
    (re.compile(r"\bwhsec_[A-Za-z0-9_]+"), "whsec_[REDACTED]"),
    (re.compile(r"\b(pi|seti)_[A-Za-z0-9]+_secret_[A-Za-z0-9]+"), r"\1_[REDACTED CLIENT SECRET]"),
    # A card number: 13-19 digits, written solid or in groups of four.
    (re.compile(r"\b(?:\d{13,19}|\d{4}(?:[ -]\d{4}){2,3}(?:[ -]\d{1,3})?)\b"), "[REDACTED CARD]"),
    (re.compile(r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?bearer\s+)[^\s\"',]+"), r"\1[REDACTED]"),
    # Customer data: an email address anywhere (an ops search in an access log's query
    # string, a library's error text), plain or URL-encoded.
    (re.compile(r"[\w.+-]+(?:@|%40)[\w-]+(?:\.[\w-]+)+"), "[REDACTED EMAIL]"),
    # The codec token rides in the Web UI's codec URL path: /codec/<token>/decode.
    (re.compile(r"(/codec/)[^/\s\"]+(?=/(?:en|de)code)"), r"\1[REDACTED]"),
]


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_text is None:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def configure_logging(level: int = logging.INFO) -> None:
    """Root logging for the worker and the API, with redaction on every handler."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # uvicorn's loggers have handlers of their own (access logs carry paths and query
    # strings): they get the filter too.
    loggers = [
        logging.getLogger(name) for name in ("", "uvicorn", "uvicorn.error", "uvicorn.access")
    ]
    for handler in (h for logger in loggers for h in logger.handlers):
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
    # Stripe's and httpx's request logs add nothing ops need at INFO.
    for noisy in ("stripe", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
