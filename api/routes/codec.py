"""The codec server the Temporal Web UI and CLI call to show ops decrypted payloads.

Temporal's remote codec protocol: POST {endpoint}/decode (or /encode) with a JSON
`{"payloads": [...]}` body, answered in kind. Authenticated by the codec token, sent as a
bearer token (the CLI's --codec-auth) or as the endpoint's last path segment (the Web UI,
which sends no header of its own). CORS for the Web UI's origin is set up in api/cors.py.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from cryptography.exceptions import InvalidTag
from fastapi import APIRouter, Header, Request, Response
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads
from temporalio.converter import PayloadCodec

from api.deps import CodecDep, SettingsDep
from api.errors import BadRequest, NotFound, ServiceUnavailable, Unauthorized

router = APIRouter(prefix="/codec", tags=["ops"], include_in_schema=False)


def _authorised(settings: SettingsDep, given: str) -> None:
    expected = settings.codec_auth_token.get_secret_value()
    if not expected:
        raise ServiceUnavailable("The codec is off: this API was started without CODEC_AUTH_TOKEN")
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise Unauthorized("A valid codec token is required")


async def _run(request: Request, codec: PayloadCodec | None, operation: str) -> Response:
    try:
        payloads = json_format.Parse(await request.body(), Payloads())
    except json_format.ParseError as exc:
        raise BadRequest("The body must be Temporal Payloads in JSON") from exc
    items = list(payloads.payloads)
    if codec is not None:
        try:
            items = await (codec.decode(items) if operation == "decode" else codec.encode(items))
        except (ValueError, InvalidTag) as exc:
            # A payload encrypted under a key this service does not hold, or damaged.
            raise BadRequest("A payload could not be decoded with the configured keys") from exc
    body = json_format.MessageToJson(Payloads(payloads=items))
    return Response(body, media_type="application/json")


def _operation(name: str) -> str:
    if name not in ("decode", "encode"):
        raise NotFound("Unknown codec operation")
    return name


@router.post("/{operation}")
async def with_header(
    operation: str,
    request: Request,
    settings: SettingsDep,
    codec: CodecDep,
    authorization: Annotated[str, Header()] = "",
) -> Response:
    scheme, _, token = authorization.partition(" ")
    _authorised(settings, token.strip() if scheme.lower() == "bearer" else "")
    return await _run(request, codec, _operation(operation))


@router.post("/{token}/{operation}")
async def with_path_token(
    token: str, operation: str, request: Request, settings: SettingsDep, codec: CodecDep
) -> Response:
    _authorised(settings, token)
    return await _run(request, codec, _operation(operation))
