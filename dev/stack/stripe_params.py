"""Request parameters in the emulator as Stripe takes them at the API version the SDK pins
(development only).

Stock localstripe takes whatever it is sent, or refuses what it does not implement with its
own "Unexpected ..." message. Stripe refuses any parameter its API does not declare
("Errors now produce exceptions for unrecognized API parameters",
https://docs.stripe.com/changelog/2011-06-21/exceptions-unrecognized-api-parameters), and
declares, at the pinned version, exactly what the pinned SDK's params types
(`stripe.params.*`, generated from Stripe's OpenAPI spec for that version) say. So every
`/v1` request the emulator serves is checked against them first, in the emulator's own
process:

- the params type of an endpoint is read from the SDK itself: each method of its services
  (`stripe/**/_*_service.py`) names its params type and requests one method and path
  (`sdk_endpoints`). A route the emulator serves that the SDK has no method for is no
  Stripe endpoint at this version (localstripe's DELETE on every kind, its
  `GET /v1/invoices/upcoming`, ...): it answers Stripe's 404 for an unrecognized URL
  (https://docs.stripe.com/api/errors: "404 Not Found: The requested resource doesn't exist"),
  except the routes in `UNCHECKED`, which say why;
- a parameter the type does not declare, at any depth (`card[foo]`, `metadata[a][b]`),
  answers 400 `parameter_unknown`, "Received unknown parameter: card[foo]"; a required one
  missing, 400 `parameter_missing`, "Missing required param: amount." (both codes:
  https://docs.stripe.com/error-codes). A hash where a value is expected, or a value where a
  hash or a list is, answers 400 too ("Invalid object", "Invalid array"). Values themselves
  (an integer, a choice of words) are left to localstripe;
- the `RequestOptions` keys of the types (`api_key`, `idempotency_key`, ...) are headers,
  not parameters; the `key`, `payment_user_agent` and `referrer` a Stripe.js stand-in
  sends with a publishable key are its authentication, not parameters either.

The check runs after authentication and before the idempotency middleware
(dev/stack/stripe_idempotency.py: `install` is called before its, and middlewares appended
earlier run outer), so a refused request is never saved under its key, as Stripe documents
(https://docs.stripe.com/api/idempotent_requests: "If incoming parameters failed
validation ... no idempotent result is saved"). The project's own routes (`/_vult/...`,
`/_config/...`, `/js.stripe.com/...`) are not Stripe's and are not checked.

Also, since 2026-09-30.endive Stripe refuses `payment_method_types` on a PaymentIntent
("Removes the payment method types parameter from Payment Intents and Setup Intents",
Stripe's changelog), and localstripe knows nothing of `allowed_payment_method_types`, its
replacement:

- PaymentIntent create, update and confirm refuse `payment_method_types` with Stripe's
  400 `payment_method_types_no_longer_supported` (rather than `parameter_unknown`);
- PaymentIntent create takes `allowed_payment_method_types` (the emulator has cards only:
  a list without `card` is refused, as Stripe refuses a PaymentIntent no payment method
  can pay) and shows it as the PaymentIntent's `payment_method_types`.
"""

from __future__ import annotations

import ast
import functools
import importlib
import json
import re
import sys
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias, Union, get_args, get_origin

import stripe
import typing_extensions
from aiohttp import web

Endpoint: TypeAlias = tuple[str, str]  # ("POST", "/v1/payment_intents/{}/confirm")
Refusal: TypeAlias = dict[str, str]  # a Stripe error object

_NO_LONGER = (
    "The `payment_method_types` parameter is no longer supported on PaymentIntents at this "
    "API version. Use `allowed_payment_method_types`, or dynamic payment methods, instead."
)
# PaymentIntent create, update and confirm: where `payment_method_types` has its own answer.
_INTENT_WRITES = frozenset(
    {
        ("POST", "/v1/payment_intents"),
        ("POST", "/v1/payment_intents/{}"),
        ("POST", "/v1/payment_intents/{}/confirm"),
    }
)

# Routes under /v1 the emulator serves and does not check, and why.
UNCHECKED: dict[Endpoint, str] = {
    ("POST", "/v1/payment_intents/{}/_authenticate"): (
        "localstripe's Stripe.js stand-in (localstripe-v3.js) answers its 3-D Secure dialog "
        "here, as Stripe.js does on Stripe's own pages; no SDK method requests it"
    ),
}

# What a Stripe.js stand-in sends to authenticate with a publishable key (localstripe
# removes the same ones before its handlers see the body).
_STRIPE_JS_FIELDS = ("key", "payment_user_agent", "referrer")
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


# The declared parameters of a params type, as a tree.
@dataclass(frozen=True)
class Scalar:
    """One value: a string, number, boolean or one of some words (`Literal['']` included,
    Stripe's way to unset a parameter)."""


@dataclass(frozen=True)
class Anything:
    """`Any`: whatever is sent."""


@dataclass(frozen=True)
class Items:
    """A list (`List[X]`), sent as `name[0]=..`, `name[1]=..` (or `name[]=..`)."""

    item: Node


@dataclass(frozen=True)
class FreeForm:
    """A hash of keys the caller chooses (`Dict[str, str]`: `metadata[order_id]=..`)."""

    value: Node


@dataclass(frozen=True)
class OneOf:
    """A union: e.g. `Literal['']|Dict[str, str]` (unset, or a hash)."""

    members: tuple[Node, ...]


@dataclass(eq=False)
class Fields:
    """A TypedDict: the names it declares, and which of them are required. Compared by
    identity, as a type may (through its nested types) contain itself."""

    name: str
    fields: dict[str, Node]
    required: frozenset[str]


Node: TypeAlias = Scalar | Anything | Items | FreeForm | OneOf | Fields
_SCALAR, _ANYTHING = Scalar(), Anything()


@functools.cache
def tree_of(declared: type) -> Fields:
    """The parameters `declared` (a `stripe.params` TypedDict) declares, nested types
    included, without its `RequestOptions` keys."""
    return _fields(declared, {})


def _fields(declared: type, seen: dict[type, Fields]) -> Fields:
    if declared in seen:
        return seen[declared]
    options = stripe.RequestOptions.__annotations__
    own = {
        name: hint
        for name, hint in declared.__annotations__.items()
        if options.get(name) is not hint  # a RequestOptions key, inherited
    }
    required: frozenset[str] = vars(declared)["__required_keys__"]
    node = Fields(declared.__name__, {}, frozenset(required & own.keys()))
    seen[declared] = node
    # Evaluated in the type's own module, without the inherited RequestOptions keys (whose
    # names resolve in another module only).
    holder = types.SimpleNamespace(__annotations__=own)
    globalns = vars(sys.modules[declared.__module__])
    hints = typing_extensions.get_type_hints(holder, globalns=globalns, include_extras=True)
    node.fields.update((name, _node(hint, seen)) for name, hint in hints.items())
    return node


def _node(hint: Any, seen: dict[type, Fields]) -> Node:
    origin, args = get_origin(hint), get_args(hint)
    if origin in (typing_extensions.NotRequired, typing_extensions.Required):
        return _node(args[0], seen)
    if typing_extensions.is_typeddict(hint):
        return _fields(hint, seen)
    if origin in (Union, types.UnionType):
        members = tuple(dict.fromkeys(_node(arg, seen) for arg in args))
        return members[0] if len(members) == 1 else OneOf(members)
    if hint is Any:
        return _ANYTHING
    if hint is list or origin is list:
        return Items(_node(args[0], seen) if args else _ANYTHING)
    container = origin if isinstance(origin, type) else hint if isinstance(hint, type) else None
    if container is not None and issubclass(container, (dict, stripe.StripeObject)):
        return FreeForm(_node(args[-1], seen) if args else _ANYTHING)
    return _SCALAR  # str, int, bool, float, a Literal


# The check.
def refusal(tree: Fields, params: Mapping[str, Any]) -> Refusal | None:
    """Stripe's error for `params` (as `nest` or a JSON body gives them), or None if the
    type declares them all and none it requires is missing. Unknown parameters are found
    before missing ones at the same level."""
    return _check(tree, params, "")


def _check(node: Node, value: Any, path: str) -> Refusal | None:
    if isinstance(value, list):  # a JSON body's list: as a form's name[0], name[1]
        value = {str(i): item for i, item in enumerate(value)}
    if isinstance(node, Anything):
        return None
    if isinstance(node, OneOf):
        fitting = [member for member in node.members if _fits(member, value)]
        answers = [_check(member, value, path) for member in fitting] or [
            _misfit(node.members[0], value, path)
        ]
        return None if None in answers else answers[0]
    if not _fits(node, value):
        return _misfit(node, value, path)
    if isinstance(node, Fields):
        for name in value:
            if name not in node.fields:
                return _unknown(_join(path, name))
        for name, given in value.items():
            if found := _check(node.fields[name], given, _join(path, name)):
                return found
        for name in node.fields:
            if name in node.required and name not in value:
                return _error("parameter_missing", _join(path, name), "Missing required param: {}.")
    elif isinstance(node, (FreeForm, Items)):
        inner = node.value if isinstance(node, FreeForm) else node.item
        for name, given in value.items():
            if found := _check(inner, given, _join(path, name)):
                return found
    return None


def _fits(node: Node, value: Any) -> bool:
    if isinstance(node, Scalar):
        return not isinstance(value, Mapping)
    if isinstance(node, (Fields, FreeForm)):
        return isinstance(value, Mapping)
    if isinstance(node, Items):
        return isinstance(value, Mapping) and all(re.fullmatch(r"\d+", k) for k in value)
    if isinstance(node, OneOf):
        return any(_fits(member, value) for member in node.members)
    return True


def _misfit(node: Node, value: Any, path: str) -> Refusal:
    """`value` is not the shape `node` wants."""
    if isinstance(value, Mapping) and not isinstance(node, Items):  # a hash for a value
        return _unknown(_join(path, next(iter(value))) if value else path)
    kind = "array" if isinstance(node, Items) else "object"
    return {"type": "invalid_request_error", "param": path, "message": f"Invalid {kind}"}


def _unknown(param: str) -> Refusal:
    return _error("parameter_unknown", param, "Received unknown parameter: {}")


def _error(code: str, param: str, message: str) -> Refusal:
    return {
        "type": "invalid_request_error",
        "code": code,
        "param": param,
        "message": message.format(param),
    }


def _join(path: str, name: str) -> str:
    return f"{path}[{name}]" if path else name


_KEY = re.compile(r"([^\[\]]+)((?:\[[^\[\]]*\])*)")


def nest(pairs: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """Form-encoded pairs as the SDK sends them (`card[number]=..`, `expand[0]=..`,
    `expand[]=..`) as nested hashes (a list's indexes as keys); a later value for the same
    name replaces an earlier one."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        match = _KEY.fullmatch(key)
        names = [match[1], *re.findall(r"\[([^\[\]]*)\]", match[2])] if match else [key]
        here = root
        for name in names[:-1]:
            name = name or str(len(here))
            child = here.get(name)
            if not isinstance(child, dict):
                child = here[name] = {}
            here = child
        here[names[-1] or str(len(here))] = value
    return root


# Which params type each endpoint takes, from the SDK's services.
def shape(path: str) -> str:
    """A route's path with its variables unnamed: `/v1/payment_intents/{intent}/confirm` and
    `/v1/payment_intents/{id}/confirm` are both `/v1/payment_intents/{}/confirm`."""
    return re.sub(r"\{[^}]*\}", "{}", path)


@functools.cache
def sdk_endpoints() -> dict[Endpoint, str]:
    """(method, shaped path) -> the params type (`module.Name`) of the SDK method that
    requests it, for every `/v1` endpoint of the pinned SDK. Read from its services' source:
    each method's `params` annotation and its `self._request("post", "/v1/...")` call."""
    found: dict[Endpoint, str] = {}
    for source in sorted(Path(stripe.__file__).parent.rglob("*_service.py")):
        tree = ast.parse(source.read_text())
        modules = {
            alias.asname or alias.name: node.module
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("stripe.params")
            for alias in node.names
        }
        for method in ast.walk(tree):
            if isinstance(method, ast.FunctionDef):
                endpoint, name = _requested(method), _params_name(method)
                if endpoint and name in modules and endpoint not in found:
                    found[endpoint] = f"{modules[name]}.{name}"
    return found


@functools.cache
def params_type(qualified: str) -> type:
    """The params type `module.Name` names, imported (the first request to an endpoint
    imports its type, rather than every type at start-up)."""
    module, _, name = qualified.rpartition(".")
    found: type = getattr(importlib.import_module(module), name)
    return found


def _requested(method: ast.FunctionDef) -> Endpoint | None:
    for call in ast.walk(method):
        if not (
            isinstance(call, ast.Call)
            and isinstance(call.func, ast.Attribute)
            and call.func.attr in ("_request", "_request_stream")
            and len(call.args) >= 2
        ):
            continue
        verb, url = call.args[0], call.args[1]
        if isinstance(url, ast.Call) and isinstance(url.func, ast.Attribute):
            url = url.func.value  # "/v1/payment_intents/{intent}".format(...)
        if isinstance(verb, ast.Constant) and isinstance(url, ast.Constant):
            if str(url.value).startswith("/v1/"):
                return str(verb.value).upper(), shape(str(url.value))
    return None


def _params_name(method: ast.FunctionDef) -> str | None:
    for arg in method.args.args:
        if arg.arg == "params" and arg.annotation is not None:
            named = re.search(r"\w+Params\b", ast.unparse(arg.annotation))
            return named[0] if named else None
    return None


# In the emulator.
async def request_params(request: web.Request) -> dict[str, Any]:
    """The parameters of a request as Stripe reads them: the query string, and for a POST
    its form-encoded body (or a JSON one, which localstripe's Stripe.js stand-in sends)."""
    params = nest(request.query.items())
    if request.method == "POST":
        if request.content_type in _FORM_TYPES:
            params.update(nest((await request.post()).items()))
        else:
            try:
                body = json.loads(await request.text())
            except ValueError:
                body = None
            params.update(body if isinstance(body, dict) else {})
    key = params.get("key")
    if isinstance(key, str) and key.startswith("pk_"):
        for name in _STRIPE_JS_FIELDS:
            params.pop(name, None)
    return params


def answer(endpoint: Endpoint, params: Mapping[str, Any]) -> Refusal | None:
    """Stripe's refusal of `params` at `endpoint` (a SDK endpoint), or None."""
    if endpoint in _INTENT_WRITES and "payment_method_types" in params:
        return {
            "type": "invalid_request_error",
            "code": "payment_method_types_no_longer_supported",
            "param": "payment_method_types",
            "message": _NO_LONGER,
        }
    return refusal(tree_of(params_type(sdk_endpoints()[endpoint])), params)


def _unrecognized(request: web.Request) -> web.Response:
    message = (
        f"Unrecognized request URL ({request.method}: {request.path}). Please see "
        "https://stripe.com/docs or we can help at https://support.stripe.com/."
    )
    error = {"type": "invalid_request_error", "message": message}
    return web.json_response({"error": error}, status=404)


def install(app: web.Application, resources: Any, errors: Any) -> None:
    """Patch the PaymentIntent model and put the check in front of localstripe's routes."""
    PaymentIntent = resources.PaymentIntent
    original_init = PaymentIntent.__init__

    def init(intent: Any, *args: Any, **kwargs: Any) -> None:
        allowed = kwargs.pop("allowed_payment_method_types", None)
        if allowed is not None and (not isinstance(allowed, list) or "card" not in allowed):
            raise errors.UserError(
                400, "No payment method type in allowed_payment_method_types can pay this"
            )
        original_init(intent, *args, **kwargs)
        intent.payment_method_types = ["card"]

    PaymentIntent.__init__ = init
    endpoints = sdk_endpoints()  # read once, at start-up: a broken reading fails loudly

    @web.middleware
    async def declared_params_only(request: web.Request, handler: Any) -> web.StreamResponse:
        route = request.match_info.route.resource
        if (
            not request.path.startswith("/v1/")
            or route is None  # no route: aiohttp's own 404 or 405
            or request.match_info.http_exception is not None
        ):
            return await handler(request)  # type: ignore[no-any-return]
        endpoint = (request.method, shape(route.canonical))
        if endpoint in UNCHECKED:
            return await handler(request)  # type: ignore[no-any-return]
        if endpoint not in endpoints:
            return _unrecognized(request)
        error = answer(endpoint, await request_params(request))
        if error is not None:
            return web.json_response({"error": error}, status=400)
        return await handler(request)  # type: ignore[no-any-return]

    app.middlewares.append(declared_params_only)
