"""Registering the search attributes on a cluster is idempotent (the compose stack's job)."""

from __future__ import annotations

import asyncio
import uuid

from google.protobuf.duration_pb2 import Duration
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client

from vult.temporal.search_attributes import REGISTRATION
from vult.temporal.setup import ensure_namespace, ensure_search_attributes


async def test_search_attributes_are_added_once(temporal_client: Client) -> None:
    namespace = f"setup-{uuid.uuid4().hex[:8]}"
    await temporal_client.workflow_service.register_namespace(
        RegisterNamespaceRequest(
            namespace=namespace, workflow_execution_retention_period=Duration(seconds=86400)
        )
    )
    added: list[str] = []
    for _ in range(50):  # a new namespace takes a moment to become usable
        try:
            added = await ensure_search_attributes(temporal_client, namespace)
            break
        except Exception:  # noqa: BLE001 - namespace not ready yet
            await asyncio.sleep(0.2)
    assert added == sorted(REGISTRATION)
    assert await ensure_search_attributes(temporal_client, namespace) == []


async def test_the_namespace_is_created_once(temporal_client: Client) -> None:
    namespace = f"setup-new-{uuid.uuid4().hex[:8]}"
    assert await ensure_namespace(temporal_client, namespace) is True
    assert await ensure_namespace(temporal_client, namespace) is False
