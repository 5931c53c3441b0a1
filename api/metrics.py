"""The API's own Prometheus counters, served on a port of their own (API_METRICS_ADDRESS,
off by default) bound to an internal interface, as the worker's are: not on the public
API port."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Counter, start_http_server

WEBHOOK_SIGNATURE_FAILURES = Counter(
    "vult_webhook_signature_failures", "Stripe webhooks refused for a bad or missing signature"
)
WEBHOOK_EVENTS = Counter("vult_webhook_events", "Verified Stripe events received", ["type"])
# Commands refused at once because this API process had its limit in flight (api/admission.py).
COMMANDS_SHED = Counter(
    "vult_api_commands_shed", "Commands refused with 503 because too many were in flight"
)
# Requests refused with 429 because their client had its bound open (api/client_limits.py).
CLIENT_REFUSALS = Counter(
    "vult_api_client_refusals",
    "Requests refused with 429 because their client had too many open",
    ["kind"],
)
# Verified events acknowledged (200) and not acted on, by why: the account is shared.
WEBHOOK_EVENTS_IGNORED = Counter(
    "vult_webhook_events_ignored",
    "Verified Stripe events acknowledged without acting on them",
    ["reason"],
)


@contextmanager
def served_at(address: str) -> Iterator[None]:
    """Serve /metrics at `address` ("host:port") while the block runs; "" serves nothing."""
    if not address:
        yield
        return
    host, _, port = address.rpartition(":")
    server, thread = start_http_server(int(port), addr=host or "127.0.0.1")
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
