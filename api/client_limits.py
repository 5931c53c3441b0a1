"""Per-client bounds: how many commands (placements, payment requests, cancels) and how many
`status-change` waits one client keeps open at this API process at once. One more is
refused at once with 429 and a Retry-After, before anything is started, so one client (a
script, a stuck page reloading) cannot take the places every other shopper shares
(api/admission.py). A shopper's browser needs one or two of each.

The client is its address as uvicorn gives it: the peer's, or, when the peer is a trusted
proxy (uvicorn's `--forwarded-allow-ips`, env FORWARDED_ALLOW_IPS; 127.0.0.1 by default),
the address the proxy names in X-Forwarded-For. Behind a proxy that is not trusted every
shopper looks like the proxy: docs/deploying.md, "Per-client bounds"."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import Request

from api import metrics
from api.errors import TooManyFromClient

UNKNOWN_CLIENT = "unknown"


def client_of(request: Request) -> str:
    return request.client.host if request.client is not None else UNKNOWN_CLIENT


class ClientLimits:
    def __init__(self, commands: int, waits: int, retry_after_seconds: int) -> None:
        self._bounds = {"command": commands, "wait": waits}
        self._open: dict[str, Counter[str]] = {kind: Counter() for kind in self._bounds}
        self._retry_after = retry_after_seconds

    @contextmanager
    def holding(self, kind: str, client: str) -> Iterator[None]:
        """One of `client`'s places of `kind` ("command" or "wait") for the block;
        TooManyFromClient at once when it holds them all. No await between the check and
        the count, so two requests of one client never both take the last place."""
        held = self._open[kind]
        if held[client] >= self._bounds[kind]:
            metrics.CLIENT_REFUSALS.labels(kind).inc()
            raise TooManyFromClient(kind, self._retry_after)
        held[client] += 1
        try:
            yield
        finally:
            held[client] -= 1
            if held[client] <= 0:
                del held[client]
