"""The OpenAPI document, made true: every reference resolves and the statuses it lists are
the ones the API serves.

FastAPI documents a 422 for bad parameters, which this API answers with 400 (the seed's
contract, api/errors.py); and the create route reads its body itself (to list every problem
at once), so its schema is added here with references into `components`, not the `$defs`
pydantic would inline."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from vult.wire.schemas import CreateOrderDto

_REF = "#/components/schemas/{model}"
_ERROR = {
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}
}
_BAD_REQUEST = {"description": "The request is not valid", **_ERROR}
_TOO_LARGE = {"description": "The request body is larger than 1 MB", **_ERROR}
_UNAVAILABLE = {
    "description": "The database or the order service is unavailable; safe to retry "
    "(with the same Idempotency-Key when creating an order)",
    **_ERROR,
}


class DocumentedFastAPI(FastAPI):
    """FastAPI, serving the corrected document at /openapi.json and /docs."""

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            self.openapi_schema = _document(self)
        return self.openapi_schema


def _document(app: FastAPI) -> dict[str, Any]:
    doc = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    schemas: dict[str, Any] = doc.setdefault("components", {}).setdefault("schemas", {})
    body = CreateOrderDto.model_json_schema(by_alias=True, ref_template=_REF)
    for name, definition in body.pop("$defs", {}).items():
        schemas.setdefault(name, definition)
    schemas["CreateOrderDto"] = body
    create = doc["paths"]["/api/orders"]["post"]
    create["requestBody"] = {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": _REF.format(model="CreateOrderDto")}}},
    }
    for path_item in doc["paths"].values():
        for method, operation in path_item.items():
            responses = operation.setdefault("responses", {})
            if method == "post":
                responses.setdefault("413", _TOO_LARGE)
            if (
                responses.get("422", {}).get("description") == "Validation Error"
                and responses.pop("422")
            ) or operation.get("parameters"):
                responses.setdefault("400", _BAD_REQUEST)
            responses.setdefault("503", _UNAVAILABLE)
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return doc
