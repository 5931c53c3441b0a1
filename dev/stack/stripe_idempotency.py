"""Idempotency keys in the Stripe emulator, kept as Stripe keeps them (API v1). Stock
localstripe ignores the header, so a retried create there makes a second PaymentIntent or
refund where Stripe would not; and an emulator kinder than Stripe hides retry bugs that
Stripe would show. The rules, from Stripe's "Idempotent requests"
(https://docs.stripe.com/api/idempotent_requests) and "Advanced error handling"
(https://docs.stripe.com/error-low-level#idempotency):

- the status and body of the first request with a key are saved once its endpoint began
  executing, whatever they are, a 5xx included, and every later request with that key (per
  account: the secret key) gets them back with `Idempotent-Replayed: true`;
- what never began executing is not saved, so a corrected retry may reuse the key: a
  refusal by an outer middleware (a 401, the parameter checks of dev/stack/stripe_params.py),
  and a 400 that is parameter validation (see `began_execution`);
- the key sent again for another request (other parameters, path or method) is refused:
  400 `idempotency_error`, nothing run;
- the key sent while its first request is still running is refused: 409 `idempotency_error`
  ("Errors", https://docs.stripe.com/api/errors: "409 Conflict ... perhaps due to using the
  same idempotent key"; code `idempotency_key_in_use`, https://docs.stripe.com/error-codes);
- keys are at most 255 characters, and may be pruned once 24 hours old: a pruned key is new
  again (`lifetime`; the chaos suite shortens it with its other timers).

The answers live in the emulator's store, so they survive its restarts with its objects;
expired ones are pruned as more are saved.

Test controls, authorised by a secret key as dev/stack/stripe_money.py's are:
- `POST /_vult/idempotency/age` `{"seconds": N}`: every key the caller's account saved is N
  seconds older (a test makes a key 25 hours old without waiting);
- `POST /_vult/fail_next` `{"path", "status", "count", "after"}`: the next `count` POSTs to
  `path` (with a key or not) answer `status` with Stripe's `api_error` body, either without
  doing the work (`after: false`) or after doing it (`after: true`: the work is done at
  Stripe, the answer is lost to a 5xx). Either is what the request's key saves, so a retry
  with that key gets the 5xx again: only reading Stripe's state tells what happened.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import parse_qsl

from aiohttp import web
from localstripe.errors import UserError

from dev.stack.stripe_controls import secret_key

KIND = "idempotency"  # the store's keys for saved answers start with this
STRIPE_LIFETIME = 24 * 3600.0
MAX_KEY_LENGTH = 255  # "Idempotency keys are up to 255 characters long."
# Expired answers are dropped after every this many stored, so a long-running emulator's
# store (rewritten to disk after each write) does not grow without bound.
FORGET_EVERY = 256

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
log = logging.getLogger(__name__)


class Saved(NamedTuple):
    """The first answer to a key, and what was asked (`request_fingerprint`)."""

    status: int
    body: bytes
    saved_at: float  # time.time()
    request: str


@dataclass
class Fault:
    """The next `count` requests to a path answer `status`, after the work when `after`."""

    status: int
    count: int
    after: bool


def request_fingerprint(method: str, path: str, content_type: str, body: bytes) -> str:
    """What the request asks: method, path and parsed parameters. Two encodings of the same
    form parameters in another order are the same request; any other difference is not."""
    params: Any
    if content_type == "application/json":
        try:
            params = json.loads(body or b"null")
        except ValueError:
            params = body.decode("utf-8", "replace")
    else:  # the SDK's application/x-www-form-urlencoded; stable: `a[]` keeps its order
        pairs = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        params = sorted(pairs, key=lambda pair: pair[0])
    canonical = json.dumps([method, path, params], sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def began_execution(status: int, body: bytes) -> bool:
    """Whether Stripe would save this answer. "Advanced error handling" (content errors):
    results are cached once an API method began execution, but not a 401, a 429, or "most
    400s that send invalid parameters", which the layers in front of idempotency answer.
    Those that reach the handler here are a 400 `invalid_request_error` with a `parameter_*`
    code, or with no code at all: localstripe's own checks ("Bad request", "Unexpected ...")
    are untyped. Anything else the handler answered (a 2xx, a card decline, a state error
    with its code, a 5xx) began executing."""
    if status == 401 or status == 429:
        return False
    if status != 400:
        return True
    try:
        error = json.loads(body)["error"]
    except (ValueError, KeyError, TypeError):
        return True
    if not isinstance(error, dict) or error.get("type") != "invalid_request_error":
        return True
    code = error.get("code")
    return isinstance(code, str) and not code.startswith("parameter")


def live(value: object, lifetime: float, now: float) -> Saved | None:
    """The saved answer, unless it is older than `lifetime` (pruned: the key is new again)
    or of a shape this module no longer writes."""
    if isinstance(value, Saved) and now - value.saved_at <= lifetime:
        return value
    return None


def forget_expired(store: MutableMapping[str, Any], lifetime: float, now: float) -> int:
    """Drop the saved answers older than `lifetime` (and any of an old shape); returns how
    many."""
    expired = [
        slot
        for slot, value in store.items()
        if slot.startswith(f"{KIND}:") and live(value, lifetime, now) is None
    ]
    for slot in expired:
        del store[slot]
    return len(expired)


def age_account(store: MutableMapping[str, Any], account: str, seconds: float) -> int:
    """Make every answer `account` saved `seconds` older; returns how many."""
    mine = [
        (slot, value)
        for slot, value in store.items()
        if slot.startswith(f"{KIND}:{account}:") and isinstance(value, Saved)
    ]
    for slot, value in mine:
        store[slot] = value._replace(saved_at=value.saved_at - seconds)
    return len(mine)


def account_of(request: web.Request) -> str:
    """Keys are per account: here, per Authorization header (its secret key)."""
    header = request.headers.get("Authorization", "")
    return hashlib.sha256(header.encode()).hexdigest()[:16]


def idempotency_error(status: int, message: str, code: str | None = None) -> web.Response:
    error = {"type": "idempotency_error", "message": message}
    if code is not None:
        error["code"] = code
    return web.json_response({"error": error}, status=status)


def mismatch(key: str) -> web.Response:
    """Stripe's answer, word for word, to a key reused for another request."""
    return idempotency_error(
        400,
        "Keys for idempotent requests can only be used with the same parameters they were "
        f"first used with. Try using a key other than '{key}' if you meant to execute a "
        "different request.",
    )


def in_progress(key: str) -> web.Response:
    """Stripe's answer to a key whose first request is still running."""
    return idempotency_error(
        409,
        "There is currently another in-progress request using this Idempotent Key (that "
        "probably means you submitted twice, and the other request is still going through): "
        f"{key}. Please try again later.",
        "idempotency_key_in_use",
    )


def api_error(status: int) -> web.Response:
    """A server error as Stripe's API sends one."""
    error = {"type": "api_error", "message": "An unknown error occurred"}
    return web.json_response({"error": error}, status=status)


def _refusal(status: int, message: str) -> web.Response:
    return web.json_response(
        {"error": {"type": "invalid_request_error", "message": message}}, status=status
    )


def _fault_from(body: Any) -> tuple[str, Fault] | None:
    """The `fail_next` control's body, or None when it is not one."""
    if not isinstance(body, dict):
        return None
    path, status = body.get("path"), body.get("status", 500)
    count, after = body.get("count", 1), body.get("after", False)
    if not (isinstance(path, str) and path.startswith("/v1/") and isinstance(after, bool)):
        return None
    numbers = (status, count)
    if any(isinstance(n, bool) or not isinstance(n, int) for n in numbers):
        return None
    if not (500 <= status <= 599 and count >= 1):
        return None
    return path, Fault(status, count, after)


def install(
    app: web.Application, store: MutableMapping[str, Any], lifetime: float = STRIPE_LIFETIME
) -> None:
    """Add the middleware innermost (it runs after authentication and the parameter checks,
    and the emulator's own save-after-each-write keeps what it stored) and the controls."""
    stored = 0
    in_flight: set[str] = set()  # slots whose first request is running
    faults: dict[str, Fault] = {}  # path -> the failure its next POSTs meet

    async def run(request: web.Request, handler: Handler) -> web.StreamResponse:
        """The endpoint's answer, its errors included, as the response to be saved."""
        try:
            return await handler(request)
        except UserError as exc:
            refused: web.StreamResponse = exc.to_response()
            return refused
        except web.HTTPException:
            raise  # no such route: no endpoint began
        except Exception:
            log.exception("the emulator failed on %s %s", request.method, request.path)
            return api_error(500)

    async def execute(request: web.Request, handler: Handler) -> web.StreamResponse:
        fault = faults.get(request.path)
        if fault is None:
            return await run(request, handler)
        fault.count -= 1
        if fault.count == 0:
            del faults[request.path]
        if fault.after:
            await run(request, handler)  # done at Stripe; its answer is lost
        return api_error(fault.status)

    @web.middleware
    async def idempotent(request: web.Request, handler: Handler) -> web.StreamResponse:
        nonlocal stored
        if request.method != "POST" or not request.path.startswith("/v1/"):
            return await handler(request)
        key = request.headers.get("Idempotency-Key")
        if not key:
            return await execute(request, handler)
        if len(key) > MAX_KEY_LENGTH:
            return _refusal(400, f"Idempotency keys are at most {MAX_KEY_LENGTH} characters")
        asked = request_fingerprint(
            request.method, request.path, request.content_type, await request.read()
        )
        slot = f"{KIND}:{account_of(request)}:{key}"
        saved = live(store.get(slot), lifetime, time.time())
        if saved is not None and saved.request != asked:
            return mismatch(key)
        if saved is not None:
            return web.Response(
                status=saved.status,
                body=saved.body,
                content_type="application/json",
                headers={"Idempotent-Replayed": "true"},
            )
        if slot in in_flight:
            return in_progress(key)
        in_flight.add(slot)
        try:
            response = await execute(request, handler)
        finally:
            in_flight.discard(slot)
        body = response.body if isinstance(response, web.Response) else None
        if isinstance(body, bytes) and began_execution(response.status, body):
            store[slot] = Saved(response.status, body, time.time(), asked)
            stored += 1
            if stored % FORGET_EVERY == 0:
                forget_expired(store, lifetime, time.time())
        return response

    async def age(request: web.Request) -> web.Response:
        if not secret_key(request):
            return _refusal(401, "A secret key is required")
        try:
            seconds = (await request.json())["seconds"]
        except (ValueError, KeyError, TypeError):
            seconds = None
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            return _refusal(400, 'Expected {"seconds": N}')
        if not math.isfinite(seconds) or seconds < 0:
            return _refusal(400, "seconds must be a finite number, 0 or more")
        return web.json_response({"aged": age_account(store, account_of(request), seconds)})

    async def fail_next(request: web.Request) -> web.Response:
        if not secret_key(request):
            return _refusal(401, "A secret key is required")
        try:
            armed = _fault_from(await request.json())
        except ValueError:
            armed = None
        if armed is None:
            return _refusal(
                400, 'Expected {"path": "/v1/...", "status": 5xx, "count": N, "after": bool}'
            )
        path, fault = armed
        faults[path] = fault
        return web.json_response(
            {"path": path, "status": fault.status, "count": fault.count, "after": fault.after}
        )

    app.middlewares.append(idempotent)
    app.router.add_post("/_vult/idempotency/age", age)
    app.router.add_post("/_vult/fail_next", fail_next)
