"""Prepare a Temporal cluster for the service (idempotent): create the namespace if it
does not exist, register the custom search attributes on it, and create (or bring to the
configured interval) the Schedule that sweeps for orders whose workflow is gone
(vult/temporal/schedules.py, ORDER_SWEEP_INTERVAL). In production it also
checks the Stripe account: the webhook endpoint must be subscribed to every event the
service acts on (vult/process/stripe_setup.py); it fails, naming what is missing, if not.

    python -m vult.temporal.setup      (the compose stack runs this once before the worker)

The dev server registers them itself at start (dev/stack/temporal_server.py).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from datetime import timedelta

import stripe
from google.protobuf.duration_pb2 import Duration
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest, RegisterNamespaceRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from vult.domain.stripe_events import required_events
from vult.process.settings import Settings, get_settings
from vult.process.stripe_client import API_VERSION, make_stripe_client
from vult.process.stripe_setup import missing_events, our_endpoints, version_mismatches
from vult.temporal.client import connect
from vult.temporal.schedules import SWEEP_SCHEDULE_ID, ensure_sweep_schedule
from vult.temporal.search_attributes import REGISTRATION

_TYPES = {
    "Keyword": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    "Double": IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE,
    "Bool": IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
}


# How long closed workflow histories are kept. An order's history closes 3 days after
# cancellation or at delivery; ops read it for disputes well after that.
RETENTION = timedelta(days=90)


async def ensure_namespace(client: Client, namespace: str) -> bool:
    """Create `namespace` unless it exists; True when it was created."""
    try:
        await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=namespace)
        )
        return False
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
    retention = Duration()
    retention.FromTimedelta(RETENTION)
    await client.workflow_service.register_namespace(
        RegisterNamespaceRequest(namespace=namespace, workflow_execution_retention_period=retention)
    )
    return True


async def ensure_search_attributes(client: Client, namespace: str) -> list[str]:
    """Add whichever of ours the namespace lacks; returns the names added."""
    existing = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    missing = {
        name: _TYPES[kind]
        for name, kind in REGISTRATION.items()
        if name not in existing.custom_attributes
    }
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=namespace, search_attributes=missing)
        )
    return sorted(missing)


async def check_stripe(settings: Settings, log: logging.Logger) -> bool:
    http = stripe.AIOHTTPClient()
    try:
        client = make_stripe_client(settings, http)
        endpoints = await our_endpoints(client, settings.stripe_webhook_url)
    finally:
        await http.close_async()
    missing = missing_events(
        endpoints, settings.stripe_webhook_url, required_events(settings.payment_capture)
    )
    if missing:
        log.error(
            "The Stripe webhook endpoint is not subscribed to events the service needs: %s. "
            "Add them to the endpoint in the Stripe Dashboard (or subscribe it to all events): "
            "docs/operations.md, 'Stripe webhook'",
            ", ".join(missing),
        )
    wrong_versions = version_mismatches(endpoints)
    for wrong in wrong_versions:
        log.error(
            "%s. Create the endpoint at the service's version (docs/operations.md, "
            "'Stripe webhook'), then delete the old one",
            wrong,
        )
    if missing or wrong_versions:
        return False
    log.info(
        "Stripe webhook endpoint subscribed to every event the service needs, at API version %s",
        API_VERSION,
    )
    return True


async def main() -> int:
    logging.basicConfig(level=logging.INFO)
    settings = get_settings()
    log = logging.getLogger("vult.setup")
    client = await connect(settings)
    namespace = settings.temporal_namespace
    if await ensure_namespace(client, namespace):
        log.info("namespace %s created", namespace)
    for attempt in range(60):  # a new namespace takes a moment to accept attributes
        try:
            added = await ensure_search_attributes(client, namespace)
            break
        except RPCError:
            if attempt == 59:
                raise
            await asyncio.sleep(1)
    log.info("search attributes added: %s", added or "none needed")
    created = await ensure_sweep_schedule(
        client, settings.temporal_task_queue, settings.order_sweep_interval
    )
    log.info(
        "schedule %s %s: every %s",
        SWEEP_SCHEDULE_ID,
        "created" if created else "up to date",
        settings.order_sweep_interval,
    )
    if settings.is_production and not await check_stripe(settings, log):
        return 1
    return 0


if __name__ == "__main__":
    code = asyncio.run(main())
    # Straight out once done: the SDK's runtime threads can crash the interpreter's
    # finalization (SIGSEGV after the work succeeded, seen in CI), failing the job.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
