"""One error hierarchy: each error carries its HTTP status and body, rendered in one place."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.validation import describe_errors


class ApiError(Exception):
    status_code = 400
    headers: dict[str, str] | None = None

    def body(self) -> dict[str, object]:
        return {"error": str(self)}


class InvalidOrder(ApiError):
    """400 with every problem found, as the seed's CreateOrder answers."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors

    def body(self) -> dict[str, object]:
        return {"errors": self.errors}


class KeyReused(InvalidOrder):
    """422: an Idempotency-Key sent again with a different request, refused as Stripe does."""

    status_code = 422

    def __init__(self) -> None:
        super().__init__(["Idempotency-Key was used with a different request"])


class BadRequest(ApiError):
    status_code = 400


class NotFound(ApiError):
    status_code = 404


class Accepted(ApiError):
    """202: recorded, not yet done; the order's workflow completes it."""

    status_code = 202

    def body(self) -> dict[str, object]:
        return {"message": str(self)}


class Unauthorized(ApiError):
    status_code = 401


class ServiceUnavailable(ApiError):
    """503, always with a Retry-After: a polite client knows when to come back."""

    status_code = 503
    headers: dict[str, str] | None = {"Retry-After": "5"}


class OutcomeUnknown(ServiceUnavailable):
    """503: the command may or may not have taken effect; the message says how to retry."""

    def body(self) -> dict[str, object]:
        return {"error": str(self), "outcomeKnown": False}


class NothingStarted(ApiError):
    """A refusal made before anything was started: `outcomeKnown: true`, and a Retry-After
    saying when the same request (with the same Idempotency-Key) may be sent again."""

    def __init__(self, message: str, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.headers = {"Retry-After": str(retry_after_seconds)}

    def body(self) -> dict[str, object]:
        return {"error": str(self), "outcomeKnown": True}


class Overloaded(NothingStarted, ServiceUnavailable):
    """503: too many commands in flight (api/admission.py)."""

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__(
            "The order service is busy: nothing was done. Send the same request again "
            f"in {retry_after_seconds} s (with the same Idempotency-Key, if it had one).",
            retry_after_seconds,
        )


class TooManyFromClient(NothingStarted):
    """429: this client already has its bound of commands (or of waits) open here
    (api/client_limits.py)."""

    status_code = 429

    def __init__(self, kind: str, retry_after_seconds: int) -> None:
        what = "order commands" if kind == "command" else "waits for an order to change"
        super().__init__(
            f"Too many {what} from this client at once: nothing was done. Send the same "
            f"request again in {retry_after_seconds} s, once an earlier one has answered "
            "(with the same Idempotency-Key, if it had one).",
            retry_after_seconds,
        )


class BeingResumed(ServiceUnavailable):
    """503: the order's workflow ended while the order could still change; it is being
    resumed now (once its last steps settled, about 15 s), then the same request works."""

    headers = {"Retry-After": "15"}

    def body(self) -> dict[str, object]:
        return {"error": str(self), "resuming": True}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(DBAPIError)
    async def _database(_: Request, exc: DBAPIError) -> JSONResponse:
        if not (exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError)):
            raise exc  # a bug, not an outage: a 500 with the traceback in the log
        # The database went away (restart, failover): the pool has dropped its connections
        # and the next request gets fresh ones.
        return JSONResponse(
            {"error": "The order database is unavailable; please try again"},
            status_code=503,
            headers=ServiceUnavailable.headers,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        # The framework's own refusals (an unknown route, a body it cannot read) in the
        # same {"error"} shape as ours.
        return JSONResponse(
            {"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        # Path or query parameters of the wrong type (e.g. an id that is not a GUID).
        messages = describe_errors(exc.errors())
        return JSONResponse({"error": "; ".join(messages), "errors": messages}, status_code=400)
