"""The inbox's HTTP server: the pages, the webhook receiver and the JSON API.

    GET  /                  mails and webhook deliveries, newest first
    GET  /webhooks          webhook deliveries
    GET  /mails/{n}         one mail as the customer sees it
    GET  /deliveries/{n}    one webhook delivery, its body included
    POST /webhooks/{name}   the receiver (receiver.py)
    GET  /api/mails         [{n, messageId, to, subject, date, receivedAt, text, html, ...}]
    GET  /api/deliveries    [{n, endpoint, webhookId, type, orderId, receivedAt, verified,
                              status, error, body, ...}]
    GET, POST /api/faults   the faults played (faults.py); POST takes application/json
    DELETE /api/mails, /api/deliveries, /api/faults   forget them all (faults: none)

Request bodies are capped at 1 MB. Pages and the API answer only requests addressed to
127.0.0.1 or localhost (a page elsewhere cannot reach them through a rebound DNS name);
the receiver answers any, as its signatures decide.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from dev.inbox import pages
from dev.inbox.faults import FaultError, Faults
from dev.inbox.mails import read_mail
from dev.inbox.receiver import Receiver
from dev.inbox.shelf import Shelf

MAX_BODY_BYTES = 1024 * 1024
LOCAL_HOSTS = {"127.0.0.1", "localhost", "[::1]"}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Inbox:
    """What both servers share: the two shelves, the faults, the endpoints' secrets."""

    def __init__(self, mails: Shelf, deliveries: Shelf, faults: Faults) -> None:
        self.mails, self.deliveries, self.faults = mails, deliveries, faults
        self._read: dict[int, dict[str, Any]] = {}  # kept mails are never changed

    def mail(self, record: dict[str, Any]) -> dict[str, Any] | None:
        n = int(record["n"])
        if n not in self._read:
            raw = self.mails.raw(n)
            if raw is None:
                return None
            self._read[n] = read_mail(record, raw)
        return self._read[n]

    def all_mails(self) -> list[dict[str, Any]]:
        records = self.mails.newest_first()
        kept = {int(r["n"]) for r in records}
        self._read = {n: m for n, m in self._read.items() if n in kept}
        return [m for r in records if (m := self.mail(r)) is not None]


def _host_name(host: str) -> str:
    """127.0.0.1:8025 -> 127.0.0.1, [::1]:8025 -> [::1]."""
    if host.startswith("["):
        return host[: host.find("]") + 1]
    return host.rsplit(":", 1)[0]


@web.middleware
async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    receiving = request.method == "POST" and request.path.startswith("/webhooks/")
    if not receiving and _host_name((request.host or "").lower()) not in LOCAL_HOSTS:
        return web.Response(status=421, text="this inbox answers 127.0.0.1 and localhost only")
    response = await handler(request)
    response.headers.setdefault("Content-Security-Policy", pages.LIST_CSP)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


def _html(page: str, status: int = 200, csp: str = pages.LIST_CSP) -> web.Response:
    response = web.Response(text=page, content_type="text/html", status=status)
    response.headers["Content-Security-Policy"] = csp
    return response


def _number(request: web.Request) -> int:
    return int(request.match_info["n"])


def make_app(inbox: Inbox, endpoints: Mapping[str, str]) -> web.Application:
    receiver = Receiver(endpoints, inbox.deliveries, inbox.faults)

    async def index(request: web.Request) -> web.Response:
        return _html(pages.index_page(inbox.all_mails(), inbox.deliveries.newest_first()))

    async def webhooks(request: web.Request) -> web.Response:
        return _html(pages.webhooks_page(inbox.deliveries.newest_first()))

    async def one_mail(request: web.Request) -> web.Response:
        record = inbox.mails.get(_number(request))
        mail = inbox.mail(record) if record is not None else None
        if mail is None:
            return _html(pages.not_found_page(), status=404)
        return _html(pages.mail_page(mail), csp=pages.MAIL_CSP)

    async def one_delivery(request: web.Request) -> web.Response:
        delivery = inbox.deliveries.get(_number(request))
        if delivery is None:
            return _html(pages.not_found_page(), status=404)
        return _html(pages.delivery_page(delivery))

    async def api_mails(request: web.Request) -> web.Response:
        return web.json_response(inbox.all_mails())

    async def api_deliveries(request: web.Request) -> web.Response:
        return web.json_response(inbox.deliveries.newest_first())

    async def get_faults(request: web.Request) -> web.Response:
        return web.json_response(inbox.faults.as_json())

    async def set_faults(request: web.Request) -> web.Response:
        # JSON only: a page elsewhere cannot send it without a CORS preflight, never allowed.
        if request.content_type != "application/json":
            return web.json_response({"error": "send application/json"}, status=415)
        try:
            inbox.faults.apply(await request.json())
        except (FaultError, ValueError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(inbox.faults.as_json())

    async def clear_faults(request: web.Request) -> web.Response:
        inbox.faults.reset()
        return web.Response(status=204)

    async def clear_mails(request: web.Request) -> web.Response:
        inbox.mails.clear()
        return web.Response(status=204)

    async def clear_deliveries(request: web.Request) -> web.Response:
        inbox.deliveries.clear()
        return web.Response(status=204)

    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[_guard])
    app.add_routes(
        [
            web.get("/", index),
            web.get("/webhooks", webhooks),
            web.get(r"/mails/{n:\d{1,12}}", one_mail),
            web.get(r"/deliveries/{n:\d{1,12}}", one_delivery),
            web.post("/webhooks/{endpoint}", receiver.receive),
            web.get("/api/mails", api_mails),
            web.get("/api/deliveries", api_deliveries),
            web.get("/api/faults", get_faults),
            web.post("/api/faults", set_faults),
            web.delete("/api/mails", clear_mails),
            web.delete("/api/deliveries", clear_deliveries),
            web.delete("/api/faults", clear_faults),
        ]
    )
    return app
