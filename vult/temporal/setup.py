"""Register the custom search attributes on a Temporal cluster (idempotent).

    python -m vult.temporal.setup      (the compose stack runs this once before the worker)

The dev server registers them itself at start (devstack/temporal_server.py).
"""

from __future__ import annotations

import asyncio
import logging

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client

from vult.process.settings import get_settings
from vult.temporal.client import connect
from vult.temporal.search_attributes import REGISTRATION

_TYPES = {
    "Keyword": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    "Double": IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE,
    "Bool": IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
}


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


async def main() -> None:
    logging.basicConfig(level=logging.INFO)
    settings = get_settings()
    added = await ensure_search_attributes(await connect(settings), settings.temporal_namespace)
    logging.getLogger("vult.setup").info("search attributes added: %s", added or "none needed")


if __name__ == "__main__":
    asyncio.run(main())
