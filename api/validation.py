"""Turning a request body into a CreateOrderDto, or into every reason it is not one."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from vult.domain.text import UNSTORABLE
from vult.wire.schemas import MAX_QUANTITY, CreateOrderDto

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


def _product_at(body: object, loc: Sequence[int | str]) -> object:
    """The productId of the line item an error's location points into, as sent."""
    if isinstance(body, dict) and len(loc) >= 2 and loc[0] == "lineItems":
        items, index = body.get("lineItems"), loc[1]
        if isinstance(items, list) and isinstance(index, int) and index < len(items):
            item = items[index]
            if isinstance(item, dict):
                return item.get("productId")
    return None


def _seed_words(error: Mapping[str, Any], body: object) -> str | None:
    """The seed's own message for a rule the wire model declares, where it has one."""
    loc, kind = tuple(error.get("loc", ())), error.get("type", "")
    if loc == ("lineItems",) and (
        kind in ("missing", "too_short") or (kind == "list_type" and error.get("input") is None)
    ):
        return NO_LINE_ITEMS
    if loc[:1] == ("lineItems",) and loc[-1:] == ("quantity",):
        if kind == "greater_than_equal":
            return f"Invalid quantity for product: {_product_at(body, loc)}"
        if kind == "less_than_equal":
            return f"Quantity for product {_product_at(body, loc)} must be at most {MAX_QUANTITY}"
    return None


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


def describe_errors(errors: Iterable[Mapping[str, Any]], body: object = None) -> list[str]:
    """Every error, in the seed's words where it has them, else `<json path>: <what>`."""
    return [_seed_words(e, body) or f"{_where(e.get('loc', ()))}: {_message(e)}" for e in errors]


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
    """Validate the whole body against the wire model (which declares every rule: lengths,
    bounds, at least one line item) and return every problem at once."""
    if not isinstance(data, dict):
        return None, ["The request body must be a JSON object"]
    try:
        return CreateOrderDto.model_validate(data), []
    except ValidationError as exc:
        return None, describe_errors(exc.errors(), data)


def requested_product_ids(data: Any) -> list[str]:
    """Product ids in a body that may be invalid elsewhere, for the not-found check."""
    if not isinstance(data, dict) or not isinstance(data.get("lineItems"), list):
        return []
    return [
        item["productId"]
        for item in data["lineItems"]
        if isinstance(item, dict) and isinstance(item.get("productId"), str)
    ]
