"""Two things every response and request get, whatever route they reach: security headers,
and a cap on the request body, refused with 413 before anything reads or parses it."""

from __future__ import annotations

import json

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# An order of 100 lines with long addresses is a few tens of kilobytes; a Stripe event or a
# codec batch from the Web UI stays well under this too.
MAX_BODY_BYTES = 1024 * 1024

_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
# For responses that set no policy of their own (JSON answers): nothing may load or frame.
_DEFAULT_CSP = "default-src 'none'; frame-ancestors 'none'"
# FastAPI's API explorers (development only: production serves none) load their script and
# styles from a CDN and start with an inline script: allowed that, and nothing else.
_DOCS = ("/docs", "/redoc")
_DOCS_CSP = (
    "default-src 'none'; script-src https://cdn.jsdelivr.net 'unsafe-inline'; "
    "style-src https://cdn.jsdelivr.net 'unsafe-inline'; img-src 'self' data: "
    "https://fastapi.tiangolo.com; connect-src 'self'; frame-ancestors 'none'"
)


class _TooLarge(Exception):
    pass


class GuardRails:
    def __init__(self, app: ASGIApp, max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self._app = app
        self._max = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._max:
            await self._refuse(send)
            return
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self._max:
                    raise _TooLarge
            return message

        async def with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = MutableHeaders(scope=message)
                for name, value in _HEADERS.items():
                    headers.setdefault(name, value)
                docs = str(scope.get("path", "")).startswith(_DOCS)
                headers.setdefault("Content-Security-Policy", _DOCS_CSP if docs else _DEFAULT_CSP)
            await send(message)

        try:
            await self._app(scope, counted_receive, with_headers)
        except _TooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps(
            {"error": f"The request body is larger than {self._max // 1024} KB"}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    *((k.lower().encode(), v.encode()) for k, v in _HEADERS.items()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
