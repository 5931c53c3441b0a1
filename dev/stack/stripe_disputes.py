"""Disputes in the emulator as Stripe has them at the pinned API version (development only).

Stock localstripe knows no disputes. At `2026-10-28.endive` a Dispute's `status` is one of
ten (the Dispute object; the pinned SDK's `stripe/_dispute.py`), and a dispute is either
an inquiry or a chargeback (Stripe docs, "How disputes work", inquiries; "Manage disputes
through pre-arbitration and arbitration", appeals):

- an inquiry (`warning_needs_response`, then `warning_under_review` once answered) moves no
  money and leaves the charge refundable (`is_charge_refundable: true`); it ends
  `warning_closed`, or is escalated to a chargeback (`needs_response`, its money withdrawn:
  `charge.dispute.funds_withdrawn`), or is `prevented`. A full refund resolves it: refunding
  the payment in full closes the inquiry;
- a chargeback withdraws the money at once (`charge.dispute.funds_withdrawn`) and the charge
  cannot be refunded (`is_charge_refundable: false`; a refund is refused with Stripe's 400
  `charge_disputed`, "Error codes"), nor may a refund still pending complete: it fails with
  `charge_for_pending_refund_disputed` (Refund object, `failure_reason`). It goes
  `needs_response` -> `under_review` -> `won` (`charge.dispute.funds_reinstated`; the charge
  refundable again) or `lost`; when the customer's bank rejects the response, an account
  with appeals enabled sees `appeal_needs_response` -> `appeal_under_review` -> `won` or
  `lost`, and an appeal not made is `lost`. Every change sends `charge.dispute.updated`;
  `won`, `lost` and `warning_closed` also `charge.dispute.closed`. A dispute keeps its
  amount whatever its outcome.

Added here, in the emulator's own process: `GET /v1/disputes` (filters `payment_intent`,
`charge`) and `GET /v1/disputes/{id}`; the testing page's dispute cards (a charge succeeds,
then its dispute opens: 4000 0000 0000 0259 a fraudulent chargeback, 4000 0000 0000 2685 a
product-not-received one, 4000 0000 0000 1976 an inquiry, with `charge.dispute.created`
only); and test controls, authorised by a secret key:

- `POST /_vult/charges/{id}/dispute`, optional `{"inquiry": true}`: a dispute of that
  charge opens now (as a cardholder's bank can open one at any time; never on a charge
  refunded in full, "Refund and cancel payments");
- `POST /_vult/disputes/{id}/status` `{"status": ...}`: the dispute moves on, one step of
  the lifecycle above at a time;
- `POST /_vult/disputes/{id}/close` `{"outcome": "won"|"lost"}`: an open chargeback is
  decided now, from whichever of its statuses.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web

from dev.stack import stripe_refunds
from dev.stack.stripe_controls import secret_key
from dev.stack.stripe_refunds import card_number, control_error, json_body

# Card -> (reason, inquiry): "Testing", disputes.
DISPUTE_CARDS = {
    "4000000000000259": ("fraudulent", False),
    "4000000000002685": ("product_not_received", False),
    "4000000000001976": ("general", True),
}
INQUIRY_OPEN = frozenset({"warning_needs_response", "warning_under_review"})
CHARGEBACK_OPEN = frozenset(
    {"needs_response", "under_review", "appeal_needs_response", "appeal_under_review"}
)
CLOSED = frozenset({"won", "lost", "warning_closed"})  # charge.dispute.closed
# Status -> where it may go next. `prevented` (and the closed ones) end a dispute.
NEXT: dict[str, frozenset[str]] = {
    "warning_needs_response": frozenset(
        {"warning_under_review", "warning_closed", "needs_response", "prevented"}
    ),
    "warning_under_review": frozenset({"warning_closed", "needs_response", "prevented"}),
    "needs_response": frozenset({"under_review", "lost"}),
    "under_review": frozenset({"won", "lost", "appeal_needs_response"}),
    "appeal_needs_response": frozenset({"appeal_under_review", "lost"}),
    "appeal_under_review": frozenset({"won", "lost"}),
}
_EVIDENCE_DAYS = 7
_DISPUTE_AFTER_SECONDS = 1.5  # its events after the success event's, as at Stripe


def charged_back(status: str) -> bool:
    """Whether the charge's money is with the cardholder's bank: no refund then."""
    return status in CHARGEBACK_OPEN or status == "lost"


def install(app: web.Application, resources: Any, errors: Any) -> type:
    """Add the Dispute model, its routes and controls, and its hold on refunds. Returns the
    Dispute class (its objects live in the emulator's store)."""
    schedule, Event = resources.schedule_webhook, resources.Event
    Charge, Refund = resources.Charge, resources.Refund

    class Dispute(resources.StripeObject):  # type: ignore[misc]
        object = "dispute"
        _id_prefix = "dp_"

        def __init__(self, charge: Any, reason: str, inquiry: bool) -> None:
            super().__init__()
            self.amount = charge.amount
            self.currency = charge.currency
            self.charge = charge.id
            self.payment_intent = charge.payment_intent
            self.status = "warning_needs_response" if inquiry else "needs_response"
            self.reason = reason
            self.is_charge_refundable = inquiry
            self.metadata: dict[str, str] = {}
            self.evidence_details = {
                "due_by": int(time.time()) + _EVIDENCE_DAYS * 86400,
                "has_evidence": False,
                "past_due": False,
                "submission_count": 0,
            }

        @classmethod
        def _api_list_all(
            cls,
            url: str,
            payment_intent: str | None = None,
            charge: str | None = None,
            limit: Any = None,
            starting_after: Any = None,
        ) -> Any:
            listed = super()._api_list_all(url, limit=limit, starting_after=starting_after)
            listed._list = [
                d
                for d in listed._list
                if payment_intent in (None, d.payment_intent) and charge in (None, d.charge)
            ]
            listed._list.sort(key=lambda d: d.created, reverse=True)
            return listed

    # Pickled with the store: found again here when the store is loaded.
    Dispute.__module__, Dispute.__qualname__ = __name__, "Dispute"
    globals()["Dispute"] = Dispute
    resources.Dispute = Dispute

    def disputes_of(charge_id: str) -> list[Any]:
        return list(Dispute._api_list_all("/v1/disputes", charge=charge_id)._list)

    def fail_pending_refunds(charge_id: str) -> None:
        for refund in Charge._api_retrieve(charge_id).refunds._list:
            if refund.status == "pending":
                stripe_refunds.fail(resources, refund, "charge_for_pending_refund_disputed")

    def open_dispute(charge: Any, *, reason: str, inquiry: bool, delay: float = 0.0) -> Any:
        """The dispute exists at once (and is saved with the store); its events are sent
        `delay` seconds later, after the charge's own."""
        charge.disputed = True
        dispute = Dispute(charge, reason, inquiry)
        kinds = ["charge.dispute.created"]
        if not inquiry:
            kinds.append("charge.dispute.funds_withdrawn")
            fail_pending_refunds(charge.id)
        for kind in kinds:
            asyncio.get_running_loop().call_later(delay, schedule, Event(kind, dispute))
        return dispute

    def change(dispute: Any, status: str) -> None:
        was, dispute.status = dispute.status, status
        dispute.is_charge_refundable = not charged_back(status)
        evidence = dispute.evidence_details
        if status.endswith("needs_response"):
            evidence["due_by"] = int(time.time()) + _EVIDENCE_DAYS * 86400
        elif status.endswith("under_review"):
            evidence["has_evidence"] = True
            evidence["submission_count"] = int(evidence.get("submission_count", 0)) + 1
        kinds = ["charge.dispute.updated"]
        if was in INQUIRY_OPEN and status in CHARGEBACK_OPEN:  # escalated
            kinds.append("charge.dispute.funds_withdrawn")
            fail_pending_refunds(dispute.charge)
        if status == "won":
            kinds.append("charge.dispute.funds_reinstated")
        if status in CLOSED:
            kinds.append("charge.dispute.closed")
        for kind in kinds:
            schedule(Event(kind, dispute))

    original_success = resources.PaymentIntent._on_success

    def on_success(intent: Any) -> None:
        original_success(intent)
        charge = intent.latest_charge
        found = DISPUTE_CARDS.get(card_number(resources, charge) or "")
        if found is not None:
            reason, inquiry = found
            open_dispute(charge, reason=reason, inquiry=inquiry, delay=_DISPUTE_AFTER_SECONDS)

    resources.PaymentIntent._on_success = on_success

    def charge_to_refund(kwargs: dict[str, Any]) -> Any:
        """The charge a refund's parameters name, or None (then the refund's own checks
        answer)."""
        try:
            if isinstance(kwargs.get("charge"), str):
                return Charge._api_retrieve(kwargs["charge"])
            if isinstance(kwargs.get("payment_intent"), str):
                return resources.PaymentIntent._api_retrieve(kwargs["payment_intent"]).latest_charge
        except errors.UserError:
            return None
        return None

    original_refund_init = Refund.__init__

    def refund_init(refund: Any, *args: Any, **kwargs: Any) -> None:
        charge = charge_to_refund(kwargs)
        if charge is not None and any(charged_back(d.status) for d in disputes_of(charge.id)):
            raise errors.UserError(
                400,
                f"Charge {charge.id} has been charged back; cannot issue a refund.",
                {"code": "charge_disputed"},
            )
        original_refund_init(refund, *args, **kwargs)
        charge = Charge._api_retrieve(refund.charge)
        if charge.amount_refunded >= (getattr(charge, "amount_captured", 0) or charge.amount):
            for dispute in disputes_of(charge.id):
                if dispute.status in INQUIRY_OPEN:
                    change(dispute, "warning_closed")

    Refund.__init__ = refund_init

    def dispute_of(request: web.Request) -> Any:
        try:
            return Dispute._api_retrieve(request.match_info["id"])
        except errors.UserError:
            return None

    async def dispute_charge(request: web.Request) -> web.Response:
        if not secret_key(request):
            return control_error(401, "A secret key is required")
        try:
            charge = Charge._api_retrieve(request.match_info["id"])
        except errors.UserError:
            return control_error(404, "No such charge")
        inquiry = (await json_body(request)).get("inquiry", False)
        if not isinstance(inquiry, bool):
            return control_error(400, "inquiry: true or false")
        if not (charge.status == "succeeded" and charge.captured):
            return control_error(400, "Not a paid charge")
        if charge.refunded:
            return control_error(400, "A charge refunded in full cannot be disputed")
        if any(d.status in INQUIRY_OPEN | CHARGEBACK_OPEN for d in disputes_of(charge.id)):
            return control_error(400, "The charge has an open dispute")
        reason = "general" if inquiry else "fraudulent"
        return web.json_response(open_dispute(charge, reason=reason, inquiry=inquiry)._export())

    async def dispute_status(request: web.Request) -> web.Response:
        if not secret_key(request):
            return control_error(401, "A secret key is required")
        dispute = dispute_of(request)
        if dispute is None:
            return control_error(404, "No such dispute")
        status = (await json_body(request)).get("status")
        allowed = NEXT.get(dispute.status, frozenset())
        if not isinstance(status, str) or status not in allowed:
            after = ", ".join(sorted(allowed)) or "nothing: it is over"
            return control_error(400, f"{dispute.id} is {dispute.status}; next: {after}")
        change(dispute, status)
        return web.json_response(dispute._export())

    async def close_dispute(request: web.Request) -> web.Response:
        if not secret_key(request):
            return control_error(401, "A secret key is required")
        dispute = dispute_of(request)
        if dispute is None:
            return control_error(404, "No such dispute")
        outcome = (await json_body(request)).get("outcome")
        if outcome not in ("won", "lost"):
            return control_error(400, 'outcome: "won" or "lost"')
        if dispute.status not in CHARGEBACK_OPEN:
            return control_error(400, f"{dispute.id} is {dispute.status}: not an open chargeback")
        change(dispute, str(outcome))
        return web.json_response(dispute._export())

    from localstripe import server

    for method, url, route in (
        ("GET", "/v1/disputes", server.api_list_all),
        ("GET", "/v1/disputes/{id}", server.api_retrieve),
    ):
        app.router.add_route(method, url, route(Dispute, url))
    app.router.add_post("/_vult/charges/{id}/dispute", dispute_charge)
    app.router.add_post("/_vult/disputes/{id}/status", dispute_status)
    app.router.add_post("/_vult/disputes/{id}/close", close_dispute)
    return Dispute
