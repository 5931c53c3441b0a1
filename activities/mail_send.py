"""Handing a composed mail to the SMTP server, once, and saying what the server answered
(activities/order_mail.py is the way in).

Only an answer about the recipient that is final (a 5xx to RCPT, or to DATA) is `refused`;
everything else that keeps the mail from being accepted (a 4xx, no connection, a timeout, a
disconnection, our own sender or login refused: a configuration ops can fix) is `try_again`.
No try is repeated here: the caller's workflow schedules the next one.
"""

from __future__ import annotations

import re
import smtplib
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from email.message import EmailMessage
from typing import TYPE_CHECKING, Literal

from activities.mail_render import MailSettings

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

_LIMIT = 500
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


@dataclass(frozen=True)
class MailAnswer:
    outcome: Literal["sent", "refused", "try_again"]
    text: str  # the server's answer or the error, at most 500 chars, safe to show ops


class _SMTP(smtplib.SMTP):
    """smtplib's client, keeping the server's answer to DATA (its queue id, usually)."""

    answer = ""

    def data(self, msg: ReadableBuffer | str) -> tuple[int, bytes]:
        code, reply = super().data(msg)
        self.answer = _reply(code, reply)
        return code, reply


def send(message: EmailMessage, settings: MailSettings) -> MailAnswer:
    """Blocking (smtplib, called from a thread by the activity); bounded by
    smtp_timeout_seconds (each wait on the server, and the whole exchange); never raises for
    SMTP/network problems."""
    where = f"{settings.smtp_host}:{settings.smtp_port}"
    timeout = settings.smtp_timeout_seconds
    started = time.monotonic()
    try:
        smtp = _SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout)
    except (OSError, smtplib.SMTPException) as error:
        return _failed(error, f"no connection to {where}")
    # A server answering slowly, a line at a time, is cut off when the time is up.
    watchdog = threading.Timer(max(0.0, timeout - (time.monotonic() - started)), _cut, [smtp])
    watchdog.daemon = True
    watchdog.start()
    try:
        return _exchange(smtp, message, settings)
    except (OSError, smtplib.SMTPException) as error:
        late = time.monotonic() - started >= timeout
        return _failed(error, f"{where} timed out after {timeout:g} s" if late else where)
    finally:
        watchdog.cancel()
        smtp.close()


def _exchange(smtp: _SMTP, message: EmailMessage, settings: MailSettings) -> MailAnswer:
    if settings.smtp_starttls:
        smtp.starttls(context=ssl.create_default_context())
    if settings.smtp_username:
        smtp.login(settings.smtp_username, settings.smtp_password)
    try:
        refused = smtp.send_message(message)
    except smtplib.SMTPRecipientsRefused as error:
        refused = error.recipients
    except smtplib.SMTPDataError as error:
        final = error.smtp_code >= 500
        return _answer(
            "refused" if final else "try_again", _reply(error.smtp_code, error.smtp_error)
        )
    except smtplib.SMTPNotSupportedError as error:
        # The address needs SMTPUTF8, which this server does not take: no try will differ.
        return _answer("refused", f"not supported by the server: {error}")
    if refused:
        code, reply = next(iter(refused.values()))
        return _answer("refused" if code >= 500 else "try_again", _reply(code, reply))
    try:
        smtp.quit()
    except (OSError, smtplib.SMTPException):
        pass  # the mail was accepted; a lost goodbye changes nothing
    return _answer("sent", smtp.answer or "accepted")


def _failed(error: BaseException, where: str) -> MailAnswer:
    if isinstance(error, smtplib.SMTPResponseException):
        said = _reply(error.smtp_code, error.smtp_error)
    else:
        said = f"{type(error).__name__}: {error}"
    return _answer("try_again", f"{where}: {said}")


def _cut(smtp: _SMTP) -> None:
    """Wake a read blocked on a server that is too slow (the socket's own timeout is per read)."""
    sock = smtp.sock
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _reply(code: int, reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return f"{code} {text}"


def _answer(outcome: Literal["sent", "refused", "try_again"], text: str) -> MailAnswer:
    return MailAnswer(outcome, " ".join(_CONTROL.sub(" ", text).split())[:_LIMIT])
