"""CORS by path: the shop's frontend origins for the API, the Temporal Web UI's origins for
the codec endpoint only (spec section 10: CORS for the frontend domain)."""

from __future__ import annotations

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send


class RoutedCORS:
    def __init__(self, app: ASGIApp, *, api_origins: list[str], codec_origins: list[str]) -> None:
        self._api = CORSMiddleware(
            app,
            allow_origins=api_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", "Idempotency-Key", "Authorization"],
            expose_headers=["Location"],
        )
        self._codec = CORSMiddleware(
            app,
            allow_origins=codec_origins,
            allow_methods=["POST"],
            allow_headers=["Content-Type", "Authorization", "X-Namespace"],
            allow_credentials=True,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        is_codec = scope["type"] == "http" and str(scope.get("path", "")).startswith("/codec/")
        await (self._codec if is_codec else self._api)(scope, receive, send)
