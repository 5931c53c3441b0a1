"""The inbox's SMTP server: every message it accepts is kept on the mail shelf, with its
envelope. No TLS and no AUTH: it listens on 127.0.0.1 only."""

from __future__ import annotations

import asyncio

from aiosmtpd.smtp import SMTP, Envelope, Session

from dev.inbox.faults import Faults
from dev.inbox.shelf import Shelf, now_iso

MAX_MESSAGE_BYTES = 4 * 1024 * 1024


class MailHandler:
    """aiosmtpd's handler hooks: RCPT applies the faults, DATA keeps the message."""

    def __init__(self, shelf: Shelf, faults: Faults) -> None:
        self.shelf, self.faults = shelf, faults

    async def handle_RCPT(  # the name aiosmtpd calls
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        refusal = self.faults.rcpt_refusal(address)
        if refusal is not None:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(  # the name aiosmtpd calls
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        raw = envelope.original_content or b""
        record = {
            "receivedAt": now_iso(),
            "mailFrom": envelope.mail_from or "",
            "rcptTos": list(envelope.rcpt_tos),
            "size": len(raw),
        }
        n = self.shelf.add(record, raw)
        return f"250 2.0.0 Ok: kept as mail {n}"


async def start_smtp(host: str, port: int, shelf: Shelf, faults: Faults) -> asyncio.Server:
    """The SMTP server on the running loop, listening once this returns."""
    loop = asyncio.get_running_loop()
    handler = MailHandler(shelf, faults)

    def protocol() -> SMTP:
        return SMTP(
            handler,
            hostname="vult-inbox",  # not socket.getfqdn(), which may wait on DNS
            data_size_limit=MAX_MESSAGE_BYTES,
            enable_SMTPUTF8=True,
            loop=loop,
        )

    return await loop.create_server(protocol, host, port)
