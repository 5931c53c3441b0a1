"""Logs never carry card numbers, client secrets, API keys or webhook secrets."""

from __future__ import annotations

import logging

import pytest

from vult.process.logging import RedactingFilter, redact


@pytest.mark.parametrize(
    "secret",
    [
        "sk_live_51HxYzAbCdEf",
        "sk_test_vult_local",
        "rk_live_abc123",
        "whsec_vult_local_development_only",
        "pi_3Mtw_secret_YrKJUKribcBjcG8HVhfZluoGH",
        "4242424242424242",
        "4242 4242 4242 4242",
        "4000-0000-0000-0341",
    ],
)
def test_secrets_and_card_numbers_are_redacted(secret: str) -> None:
    assert secret not in redact(f"calling stripe with {secret} now")


def test_ordinary_ids_and_amounts_stay_readable() -> None:
    text = "order VLT-20261127-123456 pi_3MtwBwLkdIwHu7ix amount 29412 usd"
    assert redact(text) == text


def test_bearer_tokens_are_redacted() -> None:
    assert "abc.def" not in redact('headers {"Authorization": "Bearer abc.def"}')


def test_the_filter_rewrites_a_record_and_its_arguments() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "key %s", ("sk_live_123",), None)
    RedactingFilter().filter(record)
    assert "sk_live_123" not in record.getMessage()


@pytest.mark.parametrize(
    "line,secret",
    [
        ('"GET /api/ops/orders?customerEmail=ann%40example.com HTTP/1.1" 200', "ann"),
        ("order for ann.lee+shop@example.co.uk placed", "ann.lee"),
        ('"POST /codec/s3cr3t-codec-token/decode HTTP/1.1" 200', "s3cr3t-codec-token"),
    ],
    ids=["access-log-query", "message", "codec-path"],
)
def test_customer_emails_and_the_codec_token_never_reach_a_log(line: str, secret: str) -> None:
    assert secret not in redact(line)


def test_uvicorns_own_access_log_handlers_are_filtered() -> None:
    from vult.process.logging import configure_logging

    access = logging.getLogger("uvicorn.access")
    handler = logging.StreamHandler()
    access.addHandler(handler)
    # configure_logging sets process-wide levels: put them back for the tests after this.
    levels = {name: logging.getLogger(name).level for name in ("", "stripe", "httpx")}
    try:
        configure_logging()
        assert any(isinstance(f, RedactingFilter) for f in handler.filters)
    finally:
        access.removeHandler(handler)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
