"""Idempotency keys for the Stripe emulator, as Stripe honours them: a POST sent again with
the same `Idempotency-Key` gets the first answer back (with `Idempotent-Replayed: true`)
instead of doing the work twice. Stock localstripe ignores the header, so a retried create
there makes a second PaymentIntent or refund where Stripe would not.

The answers are kept in the emulator's store, so they survive its restarts with its objects.
Like Stripe, only answers the request got to run to (2xx and 4xx) are kept; Stripe keeps
them for 24 hours, and a local run never lasts that long, so nothing expires here."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from aiohttp import web

KIND = "idempotency"  # the store's keys for saved answers start with this

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def install(app: web.Application, store: MutableMapping[str, Any]) -> None:
    """Add the middleware innermost: it runs after authentication, and the emulator's own
    save-after-each-write keeps what it stored."""

    @web.middleware
    async def replay(request: web.Request, handler: Handler) -> web.StreamResponse:
        key = request.headers.get("Idempotency-Key")
        if request.method != "POST" or not key:
            return await handler(request)
        account = hashlib.sha256(request.headers.get("Authorization", "").encode()).hexdigest()
        slot = f"{KIND}:{account[:16]}:{request.path}:{key}"
        saved = store.get(slot)
        if saved is not None:
            status, body = saved
            return web.Response(
                status=status,
                body=body,
                content_type="application/json",
                headers={"Idempotent-Replayed": "true"},
            )
        response = await handler(request)
        if isinstance(response, web.Response) and response.status < 500:
            store[slot] = (response.status, response.body)
        return response

    app.middlewares.append(replay)
