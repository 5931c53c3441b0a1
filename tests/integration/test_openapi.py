"""The OpenAPI document is valid and true, and a property-based fuzz of every operation in
it (schemathesis, bounded) finds no 5xx and no response the document does not describe."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from tests.support.integration import OPS, RunningWorker

# No 5xx, and every answer as the document says: its status, content type, body and
# headers. (Not "every schema-valid request accepted": a product id the catalogue does not
# hold is schema-valid and rightly refused.)
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
]
# Examples per operation: enough to reach every branch of validation, small enough for CI.
EXAMPLES = 50


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part]
    return node


async def test_every_reference_in_the_document_resolves_and_no_unserved_status_is_listed(
    http: httpx.AsyncClient,
) -> None:
    doc = (await http.get("/openapi.json")).json()
    refs = set(_refs(doc))
    assert "#/components/schemas/CreateOrderDto" in refs
    for ref in refs:
        _resolve(doc, ref)  # raises KeyError when it does not resolve
    create = doc["paths"]["/api/orders"]["post"]
    others = {
        status
        for path, path_item in doc["paths"].items()
        for method, operation in path_item.items()
        if (path, method) != ("/api/orders", "post")
        for status in operation["responses"]
    }
    assert "422" not in others  # this API answers bad input with 400
    # ... and 422 only for an Idempotency-Key sent again with another request.
    assert set(create["responses"]) >= {"201", "400", "422", "503"}


def _fuzz(api_url: str) -> list[str]:
    """Every operation, EXAMPLES generated cases each; the problems found, as text."""
    document = schemathesis.openapi.from_url(f"{api_url}/openapi.json")
    problems: list[str] = []
    operations = [result.ok() for result in document.get_all_operations()]  # type: ignore[union-attr]  # Err raises
    assert len(operations) >= 15  # the whole document, not a part of it
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,  # the same examples every run: a failure here reproduces
            database=None,
        )
        def check(case: Any) -> None:
            if case.path.startswith("/api/ops/"):
                case.headers = {**(case.headers or {}), **OPS}
            case.call_and_validate(base_url=api_url, timeout=40, checks=CHECKS)

        try:
            check()
        except Exception as exc:  # noqa: BLE001 - collected, reported all together below
            problems.append(f"{operation.label}: {exc}")
    return problems


async def test_no_operation_answers_5xx_or_outside_its_document(
    api_url: str, worker: RunningWorker
) -> None:
    # In a thread: the worker runs on this test's event loop, which must keep running.
    problems = await asyncio.to_thread(_fuzz, api_url)
    assert problems == [], "\n\n".join(problems)
