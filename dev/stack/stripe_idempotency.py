"""Idempotency keys for the Stripe emulator, as Stripe honours them: a POST sent again with
the same `Idempotency-Key` gets the first answer back (with `Idempotent-Replayed: true`)
instead of doing the work twice. Stock localstripe ignores the header, so a retried create
there makes a second PaymentIntent or refund where Stripe would not.

The answers are kept in the emulator's store, so they survive its restarts with its objects,
for 24 hours unless `lifetime` says otherwise (the chaos suite shortens it with its other
timers, so that a days-late event meets an expired key as it would at Stripe). Only answers
the handler returned below 500 are kept. Unlike Stripe, an error localstripe raises (a
refusal such as a declined card) is not: a retry with that key runs again, and is refused
again."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from aiohttp import web

KIND = "idempotency"  # the store's keys for saved answers start with this
STRIPE_LIFETIME = 24 * 3600.0
# Expired answers are dropped after every this many stored, so a long-running emulator's
# store (rewritten to disk after each write) does not grow without bound.
FORGET_EVERY = 256

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def install(
    app: web.Application, store: MutableMapping[str, Any], lifetime: float = STRIPE_LIFETIME
) -> None:
    """Add the middleware innermost: it runs after authentication, and the emulator's own
    save-after-each-write keeps what it stored."""
    stored = 0

    @web.middleware
    async def replay(request: web.Request, handler: Handler) -> web.StreamResponse:
        nonlocal stored
        key = request.headers.get("Idempotency-Key")
        if request.method != "POST" or not key:
            return await handler(request)
        account = hashlib.sha256(request.headers.get("Authorization", "").encode()).hexdigest()
        slot = f"{KIND}:{account[:16]}:{request.path}:{key}"
        saved = store.get(slot)
        if saved is not None and time.time() - saved[2] > lifetime:
            saved = None  # expired: the key is new again
        if saved is not None:
            status, body, _ = saved
            return web.Response(
                status=status,
                body=body,
                content_type="application/json",
                headers={"Idempotent-Replayed": "true"},
            )
        response = await handler(request)
        if isinstance(response, web.Response) and response.status < 500:
            store[slot] = (response.status, response.body, time.time())
            stored += 1
            if stored % FORGET_EVERY == 0:
                forget_expired(store, lifetime, time.time())
        return response

    app.middlewares.append(replay)


def forget_expired(store: MutableMapping[str, Any], lifetime: float, now: float) -> int:
    """Drop the saved answers older than `lifetime`; returns how many."""
    expired = [
        slot
        for slot, saved in store.items()
        if slot.startswith(f"{KIND}:") and now - saved[2] > lifetime
    ]
    for slot in expired:
        del store[slot]
    return len(expired)
