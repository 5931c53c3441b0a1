"""The API's own Prometheus counters, served at /metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, generate_latest

WEBHOOK_SIGNATURE_FAILURES = Counter(
    "vult_webhook_signature_failures", "Stripe webhooks refused for a bad or missing signature"
)
WEBHOOK_EVENTS = Counter("vult_webhook_events", "Verified Stripe events received", ["type"])

router = APIRouter(tags=["health"])


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
