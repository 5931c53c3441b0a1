"""Turning a request body into a CreateOrderDto, or into every reason it is not one."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from api.schemas import MAX_QUANTITY, CreateOrderDto
from vult.domain.text import UNSTORABLE

NO_LINE_ITEMS = "Order must contain at least one line item"


def _where(loc: Sequence[int | str]) -> str:
    parts: list[str] = []
    for part in loc:
        if part in ("body", "path", "query"):
            continue
        if isinstance(part, int):
            parts.append(f"[{part}]")
        else:
            parts.append(("." if parts else "") + str(part))
    return "".join(parts) or "body"


def _message(error: Mapping[str, Any]) -> str:
    kind = error.get("type", "")
    ctx = error.get("ctx") or {}
    if kind in ("string_unicode", "unstorable_text"):
        return UNSTORABLE  # a lone surrogate, a control character, NUL
    if kind == "missing":
        return "is required"
    if kind == "string_too_short":
        return "is required"
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters"
    if kind == "too_long":
        return f"must have at most {ctx.get('max_length')} entries"
    if kind == "value_error" and "email" in str(error.get("msg", "")).lower():
        return "must be a valid email address"
    if kind in ("uuid_parsing", "uuid_type"):
        return "must be a GUID"
    if kind.startswith("int"):
        return "must be a whole number"
    if kind in ("string_type", "model_type", "list_type", "model_attributes_type"):
        expected = {"string_type": "a string", "list_type": "an array"}.get(kind, "an object")
        return f"must be {expected}"
    return str(error.get("msg", "is not valid"))


def describe_errors(errors: Iterable[Mapping[str, Any]]) -> list[str]:
    return [f"{_where(e.get('loc', ()))}: {_message(e)}" for e in errors]


# An order is four levels deep; anything far deeper is not an order, and deep enough
# nesting exhausts the interpreter's recursion while it is read.
MAX_JSON_DEPTH = 32


def _nesting_depth(raw: bytes) -> int:
    """How deep arrays and objects nest, counted outside strings, without parsing."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return deepest


def parse_json(raw: bytes) -> Any:
    if _nesting_depth(raw) > MAX_JSON_DEPTH:
        raise ValueError(f"The request body nests more than {MAX_JSON_DEPTH} levels deep")
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(f"The request body is not valid JSON: {exc}") from None


def check_create_order(data: Any) -> tuple[CreateOrderDto | None, list[str]]:
    """Validate the whole body and return every problem, in the seed's words where it has them."""
    problems: list[str] = []
    if not isinstance(data, dict):
        return None, ["The request body must be a JSON object"]
    items = data.get("lineItems")
    if items is None or items == []:
        problems.append(NO_LINE_ITEMS)
    elif isinstance(items, list):
        for item in items:
            if not isinstance(item, dict):
                continue
            quantity = item.get("quantity")
            if isinstance(quantity, int) and not isinstance(quantity, bool) and quantity < 1:
                problems.append(f"Invalid quantity for product: {item.get('productId')}")
            elif isinstance(quantity, int) and quantity > MAX_QUANTITY:
                problems.append(
                    f"Quantity for product {item.get('productId')} must be at most {MAX_QUANTITY}"
                )
    try:
        dto = CreateOrderDto.model_validate(data)
    except ValidationError as exc:
        skip_missing_items = NO_LINE_ITEMS in problems
        problems.extend(
            m
            for m in describe_errors(exc.errors())
            if not (skip_missing_items and m.startswith("lineItems:"))
        )
        return None, problems
    return (None if problems else dto), problems


def requested_product_ids(data: Any) -> list[str]:
    """Product ids in a body that may be invalid elsewhere, for the not-found check."""
    if not isinstance(data, dict) or not isinstance(data.get("lineItems"), list):
        return []
    return [
        item["productId"]
        for item in data["lineItems"]
        if isinstance(item, dict) and isinstance(item.get("productId"), str)
    ]
