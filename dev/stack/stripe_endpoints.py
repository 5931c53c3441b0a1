"""Webhook endpoints in the emulator as Stripe's API has them (development only).

Stock localstripe keeps its webhooks in a dict in memory, registered through
`POST /_config/webhooks/{name}` with a secret the caller chooses: they are lost when it
restarts, none can be created, read or listed through the API, and every event goes out
at localstripe's own fixed API version (2017-08-15). Here, following Stripe's "Webhook
Endpoints" API reference (docs.stripe.com/api/webhook_endpoints) and "Versioning"
(docs.stripe.com/api/versioning: webhook events use the account's API version "unless you
set an API version during endpoint creation"):

- `POST /v1/webhook_endpoints` (`url` and `enabled_events` required; `api_version`,
  `description`, `metadata`, `connect`) creates an endpoint, `status` `enabled`, whose
  `api_version` is the one given or null (the account's default), and answers with its
  `secret` (whsec_...), which Stripe generates and shows in that answer only;
- `GET /v1/webhook_endpoints` lists them newest first, a page at a time as Stripe lists
  (docs.stripe.com/api/pagination: `limit` 1 to 100, 10 by default, `starting_after` or
  `ending_before`, `has_more`); `GET`, `POST` (`url`, `enabled_events`, `disabled`,
  `description`, `metadata`) and `DELETE /v1/webhook_endpoints/{id}`;
- an account has 16 endpoints at most ("You can register up to 16 webhook endpoints",
  docs.stripe.com/webhooks): the 17th is refused;
- `POST /_config/webhooks/{name}`, the local stack's way in, creates or re-points endpoint
  `we_{name}` with the secret it is given (Stripe would generate one, but the stack, its
  API and the tests are configured with theirs beforehand); its `api_version` is the
  account's default, shown on the endpoint;
- endpoints live in the emulator's store: with a state file they survive a restart;
- each event goes to every enabled endpoint subscribed to its type, its `api_version` the
  endpoint's (or the account's default), signed with that endpoint's secret.

The emulator account's default version is the one the `stripe` package pins. The emulator
has one shape per object: an endpoint at another version receives that shape under its own
version's name, where Stripe would render the objects at that version. It has no connected
accounts, so a `connect` endpoint receives nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import secrets
import string
import time
import typing
from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from localstripe.errors import UserError
from stripe._api_version import _ApiVersion
from stripe.params import WebhookEndpointCreateParams

ACCOUNT_VERSION = _ApiVersion.CURRENT  # the emulator account's default API version
MAX_ENDPOINTS = 16
LIST_URL = "/v1/webhook_endpoints"
_DELIVERY_DELAY = 1.0  # seconds after the event, as stock localstripe sends it
_CREATE = {"api_version", "connect", "description", "enabled_events", "metadata", "url"}
_UPDATE = {"description", "disabled", "enabled_events", "metadata", "url"}
_LIST = {"ending_before", "limit", "starting_after"}

_ALPHANUMERIC = string.ascii_letters + string.digits

T = TypeVar("T")


def _literal(annotation: Any) -> frozenset[str]:
    """The strings of a params field's Literal, through NotRequired[...] and List[...]."""
    while typing.get_origin(annotation) is not typing.Literal:
        (annotation, *_) = typing.get_args(annotation)
    return frozenset(typing.get_args(annotation))


# What the pinned SDK declares Stripe accepts on create: its API versions and event types.
VERSIONS = _literal(WebhookEndpointCreateParams.__annotations__["api_version"])
EVENT_TYPES = _literal(WebhookEndpointCreateParams.__annotations__["enabled_events"])


def refused(message: str, param: str | None = None, code: str | None = None) -> Any:
    """Stripe's 400 invalid_request_error, naming the parameter as Stripe's errors do."""
    contents = {k: v for k, v in (("param", param), ("code", code)) if v is not None}
    return UserError(400, message, contents)


def only(data: dict[str, Any], allowed: set[str]) -> None:
    for name in sorted(data):
        if name not in allowed:
            raise refused(f"Received unknown parameter: {name}", name, "parameter_unknown")


def required(data: dict[str, Any], name: str) -> Any:
    value = data.get(name)
    if value in (None, "", [], {}):
        raise refused(f"Missing required param: {name}.", name, "parameter_missing")
    return value


def url_of(value: Any) -> str:
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise refused(f"Invalid URL: {value!r} is not an http(s) URL", "url", "url_invalid")
    return str(value)


def events_of(value: Any) -> list[str]:
    """`enabled_events`: event types the pinned version declares, or "*" for all of them."""
    if not isinstance(value, list) or not value:
        raise refused("Invalid array", "enabled_events")
    for i, event in enumerate(value):
        if event not in EVENT_TYPES:
            raise refused(
                f"Invalid enabled_events[{i}]: {event!r} is not an event type at this API "
                "version (docs.stripe.com/api/events/types)",
                f"enabled_events[{i}]",
            )
    return list(dict.fromkeys(value))


def boolean(value: Any, param: str) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return bool(value == "true")
    raise refused(f"Invalid boolean: {value!r}", param)


def text_of(value: Any, param: str) -> str | None:
    """A string parameter sent empty unsets it (null)."""
    if not isinstance(value, str):
        raise refused(f"Invalid string: {value!r}", param)
    return value or None


def version_of(value: Any) -> str:
    if value not in VERSIONS:
        raise refused(f"Invalid api_version: {value!r} is not a Stripe API version", "api_version")
    return str(value)


def metadata_of(current: dict[str, str], value: Any) -> dict[str, str]:
    """Stripe's metadata update (docs.stripe.com/api/metadata): keys are merged, a key sent
    empty is removed, and `metadata` sent empty removes them all."""
    if value == "":
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise refused("Invalid object", "metadata")
    merged = {**current, **value}
    return {k: v for k, v in merged.items() if v != ""}


def limit_of(value: Any) -> int:
    if value is None:
        return 10
    try:
        limit = int(value)
    except (TypeError, ValueError):
        raise refused(f"Invalid integer: {value}", "limit", "parameter_invalid_integer") from None
    if limit < 1:
        raise refused("This value must be greater than or equal to 1.", "limit")
    if limit > 100:
        raise refused("This value must be less than or equal to 100.", "limit")
    return limit


def page(
    items: Sequence[T],
    key: Callable[[T], str],
    limit: int,
    starting_after: str | None = None,
    ending_before: str | None = None,
) -> tuple[list[T], bool]:
    """One page of `items` (newest first) and whether more lie beyond it, in the direction
    of the cursor, as Stripe's list endpoints answer (docs.stripe.com/api/pagination)."""
    if starting_after is not None and ending_before is not None:
        raise refused(
            "You may only specify one of these parameters: ending_before, starting_after.",
            "ending_before",
        )
    ids = [key(item) for item in items]
    for param, cursor in (("starting_after", starting_after), ("ending_before", ending_before)):
        if cursor is not None and cursor not in ids:
            raise refused(f"No such webhook endpoint: '{cursor}'", param, "resource_missing")
    if ending_before is not None:
        end = ids.index(ending_before)
        begin = max(0, end - limit)
        return list(items[begin:end]), begin > 0
    start = 0 if starting_after is None else ids.index(starting_after) + 1
    return list(items[start : start + limit]), start + limit < len(items)


def new_secret() -> str:
    """Generated by Stripe, as Stripe's are: whsec_ and 32 letters and digits."""
    return "whsec_" + "".join(secrets.choice(_ALPHANUMERIC) for _ in range(32))


def signature_header(secret: str, payload: bytes, timestamp: int) -> str:
    """Stripe's `Stripe-Signature` (docs.stripe.com/webhooks, "Verify webhook signatures")."""
    signed = f"{timestamp}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def _endpoint_class(resources: Any) -> Any:
    class WebhookEndpoint(resources.StripeObject):  # type: ignore[misc]
        object = "webhook_endpoint"
        _id_prefix = "we_"

        def __init__(
            self,
            id: str | None,
            url: str,
            enabled_events: list[str],
            secret: str,
            api_version: str | None,
            connect: bool = False,
        ) -> None:
            super().__init__(id)
            self.url = url
            self.enabled_events = enabled_events
            self.api_version = api_version
            self.application = None
            self.description: str | None = None
            self.metadata: dict[str, str] = {}
            self.status = "enabled"
            self._secret = secret
            self._connect = connect

        def _receives(self, event_type: str) -> bool:
            subscribed = "*" in self.enabled_events or event_type in self.enabled_events
            return self.status == "enabled" and not self._connect and subscribed

    # Pickled with the store: found again here when the store is loaded.
    WebhookEndpoint.__module__, WebhookEndpoint.__qualname__ = __name__, "WebhookEndpoint"
    globals()["WebhookEndpoint"] = WebhookEndpoint
    resources.WebhookEndpoint = WebhookEndpoint
    return WebhookEndpoint


def install(app: web.Application, resources: Any) -> Any:
    """Add the model, its routes and the delivery of events to the endpoints; returns the
    WebhookEndpoint class (its objects live in the emulator's store)."""
    from localstripe import server, webhooks

    WebhookEndpoint = _endpoint_class(resources)
    store = resources.store
    log = logging.getLogger("aiohttp.access")

    def endpoints() -> list[Any]:
        """Oldest first, as the store keeps them."""
        return list(WebhookEndpoint._api_list_all(LIST_URL)._list)

    def endpoint(id: str) -> Any:
        found = store.get(f"webhook_endpoint:{id}")
        if found is None:
            raise UserError(
                404,
                f"No such webhook endpoint: '{id}'",
                {"code": "resource_missing", "param": "id"},
            )
        return found

    def room_for_one() -> None:
        if len(endpoints()) >= MAX_ENDPOINTS:
            raise refused(
                f"You have reached the maximum of {MAX_ENDPOINTS} webhook endpoints on this "
                "account (docs.stripe.com/webhooks). Delete one before creating another."
            )

    async def create(request: web.Request) -> web.Response:
        data = dict(await server.get_post_data(request) or {})
        data.pop("expand", None)
        only(data, _CREATE)
        url = url_of(required(data, "url"))
        events = events_of(required(data, "enabled_events"))
        version = version_of(data["api_version"]) if "api_version" in data else None
        connect = boolean(data.get("connect", False), "connect")
        description = text_of(data.get("description", ""), "description")
        metadata = metadata_of({}, data.get("metadata", {}))
        room_for_one()
        made = WebhookEndpoint(None, url, events, new_secret(), version, connect)
        made.description, made.metadata = description, metadata
        return web.json_response({**made._export(), "secret": made._secret})

    async def list_all(request: web.Request) -> web.Response:
        query = dict(server.unflatten_data(request.query))
        query.pop("expand", None)
        only(query, _LIST)
        newest_first = endpoints()[::-1]
        data, has_more = page(
            newest_first,
            lambda e: str(e.id),
            limit_of(query.get("limit")),
            query.get("starting_after"),
            query.get("ending_before"),
        )
        listed = {"object": "list", "url": LIST_URL, "has_more": has_more}
        return web.json_response({**listed, "data": [e._export() for e in data]})

    async def retrieve(request: web.Request) -> web.Response:
        return web.json_response(endpoint(request.match_info["id"])._export())

    async def update(request: web.Request) -> web.Response:
        found = endpoint(request.match_info["id"])
        data = dict(await server.get_post_data(request) or {})
        data.pop("expand", None)
        only(data, _UPDATE)
        # Every value is checked before any is changed: a refused update changes nothing.
        changes: dict[str, Any] = {}
        if "url" in data:
            changes["url"] = url_of(data["url"])
        if "enabled_events" in data:
            changes["enabled_events"] = events_of(data["enabled_events"])
        if "disabled" in data:
            changes["status"] = "disabled" if boolean(data["disabled"], "disabled") else "enabled"
        if "description" in data:
            changes["description"] = text_of(data["description"], "description")
        if "metadata" in data:
            changes["metadata"] = metadata_of(found.metadata, data["metadata"])
        for name, value in changes.items():
            setattr(found, name, value)
        return web.json_response(found._export())

    async def delete(request: web.Request) -> web.Response:
        found = endpoint(request.match_info["id"])
        return web.json_response(WebhookEndpoint._api_delete(found.id)._export())

    def register(name: str, url: str, secret: str, events: list[str] | None) -> None:
        """localstripe's `/_config/webhooks/{name}` (it has checked url, secret, events)."""
        enabled = ["*"] if events is None else events_of(events)
        found = store.get(f"webhook_endpoint:we_{name}")
        if found is None:
            room_for_one()
            WebhookEndpoint(f"we_{name}", url, enabled, secret, ACCOUNT_VERSION)
        else:  # the stack points it elsewhere (a lost-webhook test) or back, after a restart
            found.url, found._secret, found.enabled_events = url, secret, enabled
            found.status = "enabled"

    async def deliver(event: Any) -> None:
        body = event._export()
        await asyncio.sleep(_DELIVERY_DELAY)
        async with aiohttp.ClientSession() as session:
            for hook in endpoints():
                if hook._receives(event.type):
                    version = hook.api_version or ACCOUNT_VERSION
                    await send(session, hook, {**body, "api_version": version})

    async def send(session: aiohttp.ClientSession, hook: Any, body: dict[str, Any]) -> None:
        payload = json.dumps(body, indent=2, sort_keys=True).encode()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": signature_header(hook._secret, payload, int(time.time())),
        }
        try:
            async with session.post(hook.url, data=payload, headers=headers) as answer:
                log.info('webhook "%s" to %s: %d', body["type"], hook.id, answer.status)
        except aiohttp.ClientError as exc:
            log.info('webhook "%s" to %s failed: %s', body["type"], hook.id, exc)

    original_event_init = resources.Event.__init__

    def event_init(event: Any, *args: Any, **kwargs: Any) -> None:
        original_event_init(event, *args, **kwargs)
        event.api_version = ACCOUNT_VERSION  # rendered at the account's default version

    resources.Event.__init__ = event_init
    webhooks._send_webhook = deliver  # schedule_webhook looks it up at each event
    server.register_webhook = register  # what `/_config/webhooks/{name}` calls

    for method, path, handler in (
        ("POST", LIST_URL, create),
        ("GET", LIST_URL, list_all),
        ("GET", LIST_URL + "/{id}", retrieve),
        ("POST", LIST_URL + "/{id}", update),
        ("DELETE", LIST_URL + "/{id}", delete),
    ):
        app.router.add_route(method, path, handler)
    return WebhookEndpoint
