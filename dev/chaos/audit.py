"""After the faults: every order against PostgreSQL, its workflow, and the emulator's own
record of every PaymentIntent and refund; then the events the orders told against their
facts, and what the inbox got of them (dev/chaos/event_audit.py). Each invariant reports
how many things it checked and every violation it found."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import psycopg
import stripe
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowQueryFailedError
from temporalio.service import RPCError

from dev.chaos.event_audit import Told, audit_events
from dev.chaos.invariants import Invariant as Invariant
from dev.chaos.shoppers import Journey
from dev.chaos.stripe_lists import every
from vult.db.urls import libpq_url
from vult.domain import fulfilment
from vult.domain.contracts import OrderState
from vult.domain.payments import CHARGEBACK_OPEN, OWNER_KEY, REFUND_KEY
from vult.domain.status import may_still_change
from vult.temporal.search_attributes import NEEDS_ATTENTION, ORDER_STATUS

PAID_STATUSES = {"Confirmed", "Processing", "Shipped", "Delivered"}
OWNER = "vult-orders"  # the cluster's STRIPE_OWNER (the default)
# A refund that has not failed: it returns (or will return) the money.
_LIVE_REFUND = {"succeeded", "pending", "requires_action"}
BAD_ENDINGS = ("Failed", "TimedOut", "Terminated", "Canceled")


@dataclass
class Workflow:
    exists: bool
    status: str | None = None  # the workflow's own, from its `state` query
    search_status: str | None = None
    needs_attention: bool = False
    failing_task: str | None = None  # why its workflow task is failing
    running: bool = False  # its latest run
    run_id: str = ""  # its latest run's
    attention: str | None = None  # why it needs attention, from its `state` query
    last: str | None = None  # the last thing it did with Stripe's word (its state's note)


@dataclass
class Records:
    """Everything the audit reads, read once."""

    orders: dict[str, dict[str, Any]]  # order id -> its row
    workflows: dict[str, Workflow]
    # Runs (workflow id, run id) that failed, timed out, were terminated or cancelled.
    bad_endings: list[tuple[str, str]]
    intents: dict[str, dict[str, Any]]  # PaymentIntent id -> the emulator's object
    refunds: dict[str, list[dict[str, Any]]]  # PaymentIntent id -> its live refunds
    disputes: dict[str, dict[str, Any]] = field(default_factory=dict)  # by PaymentIntent id
    # Refunds of any status (failed ones included), by PaymentIntent id: for foreign ones.
    any_refunds: dict[str, int] = field(default_factory=dict)
    # Runs the fault "Temporal terminates order workflows" ended (the sweep resumes them).
    terminated: set[tuple[str, str]] = field(default_factory=set)
    # The order events, their deliveries and what the inbox got; None: not audited.
    told: Told | None = None


def read_orders(database_url: str) -> dict[str, dict[str, Any]]:
    """Each order's row, with its lines (what shipped), the sum of its returns and their
    keys."""
    sql = (
        "SELECT order_id::text AS id, status, customer_email AS email, sub_total, tax,"
        " shipping_cost, total, stripe_payment_intent_id AS pi, amount_refunded,"
        " dispute_status, stripe_payment_status, resolution_note, amount_captured,"
        " customer_email_refused AS email_refused FROM orders"
    )
    lines = (
        "SELECT order_id::text AS id, line_item_id::text AS line, unit_price, quantity,"
        " quantity_shipped, quantity_returned FROM line_items"
    )
    returns = (
        "SELECT order_id::text AS id, sum(amount) AS amount,"
        " array_agg(return_key ORDER BY return_key) AS keys FROM order_returns GROUP BY 1"
    )
    with psycopg.connect(libpq_url(database_url), connect_timeout=10) as conn:
        cursor = conn.cursor(row_factory=psycopg.rows.dict_row)
        orders = {
            row["id"]: {**row, "lines": [], "returned": Decimal(0), "return_keys": []}
            for row in cursor.execute(sql)
        }
        for row in cursor.execute(lines):
            orders[row["id"]]["lines"].append(row)
        for row in cursor.execute(returns):
            orders[row["id"]]["returned"] = row["amount"]
            orders[row["id"]]["return_keys"] = list(row["keys"])
    return orders


def shipped_share(order: Mapping[str, Any]) -> Decimal | None:
    """What the order's shipment is worth by the fulfilment rule; None before it ships."""
    lines = order.get("lines") or []
    if not lines or any(li["quantity_shipped"] is None for li in lines):
        return None
    amounts = fulfilment.OrderAmounts(
        order["sub_total"], order["tax"], order["shipping_cost"], order["total"]
    )
    priced = [fulfilment.OrderLine(li["line"], li["unit_price"], li["quantity"]) for li in lines]
    return fulfilment.shipped_share(
        amounts, priced, {li["line"]: li["quantity_shipped"] for li in lines}
    )


def _id(reference: Any) -> str | None:
    """An object's id, whether Stripe sent the id or (expanded) the object."""
    if isinstance(reference, dict):
        return str(reference.get("id"))
    return str(reference) if reference else None


def read_stripe(client: stripe.StripeClient) -> dict[str, Any]:
    """The emulator's PaymentIntents, live refunds, refunds of any status (counted), latest
    dispute and declines (its payment_intent.payment_failed events), each by PaymentIntent
    id."""
    intents = {pi["id"]: pi for pi in every(lambda p: client.v1.payment_intents.list(params=p))}
    by_charge = {_id(pi.get("latest_charge")): pi["id"] for pi in intents.values()}
    refunds: dict[str, list[dict[str, Any]]] = defaultdict(list)
    any_refunds: dict[str, int] = defaultdict(int)
    for refund in every(lambda p: client.v1.refunds.list(params=p)):
        pi = _id(refund.get("payment_intent")) or by_charge.get(_id(refund.get("charge")))
        any_refunds[str(pi)] += 1
        if refund.get("status") in _LIVE_REFUND:
            refunds[str(pi)].append(refund)
    disputes: dict[str, dict[str, Any]] = {}
    for dispute in sorted(
        every(lambda p: client.v1.disputes.list(params=p)), key=lambda d: d.get("created", 0)
    ):
        disputes[str(_id(dispute.get("payment_intent")))] = dispute
    declines: dict[str, int] = defaultdict(int)
    for event in every(lambda p: client.v1.events.list(params=p)):
        if event.get("type") == "payment_intent.payment_failed":
            declines[str(_id(((event.get("data") or {}).get("object") or {}).get("id")))] += 1
    return {
        "intents": intents,
        "refunds": refunds,
        "any_refunds": any_refunds,
        "disputes": disputes,
        "declines": dict(declines),
    }


async def read_workflow(client: Client, order_id: str) -> Workflow:
    handle = client.get_workflow_handle(f"order-{order_id}")
    try:
        desc = await handle.describe()
    except RPCError:
        return Workflow(exists=False)
    pending = desc.raw_description.pending_workflow_task
    failing: str | None
    try:
        state: OrderState | None = await handle.query("state", result_type=OrderState)
    except (RPCError, WorkflowQueryFailedError) as exc:
        state = None  # "Workflow Task in failed state", most likely
        failing = f"its state cannot be read: {exc}"
    else:
        failing = f"{pending.attempt} attempts" if pending.attempt > 1 else None
    return Workflow(
        exists=True,
        status=state.status.value if state and state.status else None,
        search_status=desc.typed_search_attributes.get(ORDER_STATUS),
        needs_attention=bool(desc.typed_search_attributes.get(NEEDS_ATTENTION)),
        failing_task=failing,
        running=desc.status == WorkflowExecutionStatus.RUNNING,
        run_id=desc.run_id,
        attention=state.ops.attention if state else None,
        last=state.payments.last_note if state else None,
    )


def disagreeing(orders: dict[str, dict[str, Any]], workflows: dict[str, Workflow]) -> list[str]:
    """Orders whose running workflow does not say what their row says (yet: a workflow
    task lost with a killed worker runs again only after its timeout)."""
    return sorted(
        order_id
        for order_id, wf in workflows.items()
        if wf.running and order_id in orders and wf.status != orders[order_id]["status"]
    )


async def read_workflows(client: Client, order_ids: set[str]) -> dict[str, Workflow]:
    gate = asyncio.Semaphore(16)

    async def one(order_id: str) -> tuple[str, Workflow]:
        async with gate:
            return order_id, await read_workflow(client, order_id)

    return dict(await asyncio.gather(*(one(i) for i in sorted(order_ids))))


async def bad_endings(client: Client) -> list[tuple[str, str]]:
    query = " OR ".join(f'ExecutionStatus = "{s}"' for s in BAD_ENDINGS)
    return [(w.id, w.run_id) async for w in client.list_workflows(query, limit=1000)]


def redeliveries_acknowledged(answers: Mapping[str, int]) -> Invariant:
    """`answers`: how the APIs answered the events delivered again, by status."""
    acknowledged = Invariant("every event delivered again was acknowledged (2xx)")
    for answer, count in sorted(answers.items()):
        acknowledged.checked += count
        if not answer.startswith("2"):
            acknowledged.violations.append(f"{count} answered {answer}")
    return acknowledged


def cents(amount: Decimal) -> int:
    return int((amount * 100).to_integral_value())


def audit(journeys: list[Journey], records: Records) -> list[Invariant]:
    orders, workflows = records.orders, records.workflows
    in_db = Invariant("every order a 201 named is in PostgreSQL")
    has_workflow = Invariant("every order has its workflow")
    agrees = Invariant("database status = workflow status = OrderStatus search attribute")
    one_per_key = Invariant("one order per Idempotency-Key")
    kept_one = Invariant("Confirmed or later: exactly the PaymentIntent it names is kept")
    kept_none = Invariant("not Confirmed or later: no payment kept")
    refunded_once = Invariant(
        "every charge not kept went back in full: refunds (anyone's) + a lost dispute"
    )
    never_twice = Invariant(
        "no PaymentIntent refunded twice by the service (each refund key once; one cancel refund)"
    )
    shipped_returned = Invariant("captured = shipped share, refunded = returned (+ unshipped)")
    within = Invariant("refunds never exceed a charge")
    no_disputed_refund = Invariant("no refund asked for a disputed charge")
    amounts = Invariant("the order's refunded amount and dispute = Stripe's")
    untouched = Invariant("no PaymentIntent of another system touched")
    settled = Invariant("nothing left in PaymentProcessing")
    attention = Invariant("no order left needing attention")
    no_bad_end = Invariant(
        "no workflow failed, timed out, terminated or cancelled (but by the terminate fault)"
    )
    resumed = Invariant("every order that can still change has a running workflow")
    no_failing_task = Invariant("no workflow with a failing workflow task")
    ended_right = Invariant("every journey that ran to its end left its order where it leads")
    reached_end = Invariant("every journey ran to its end within its budget")
    no_5xx = Invariant("no server error (5xx other than 503)")
    customer = Invariant("nothing went wrong that the customer could see")

    by_order = {oid: j for j in journeys for oid in j.order_ids}

    def about(order_id: str, wf: Workflow) -> str:
        """Which journey the order is of, and what its workflow says: what a report of a
        violation needs to be followed up without rerunning the suite."""
        j = by_order.get(order_id)
        journey = f"journey {j.number} ({j.path})" if j else "no journey (another system's?)"
        said = f"; attention: {wf.attention}" if wf.attention else ""
        last = f"; last: {wf.last}" if wf.last else ""
        return f"order {order_id}, {journey}{said}{last}"

    emails: dict[str, int] = defaultdict(int)
    for order in orders.values():
        emails[order["email"]] += 1
    for j in journeys:
        for order_id in j.order_ids:
            in_db.check(order_id in orders, f"journey {j.number}: order {order_id} not found")
        one_per_key.check(
            len(j.order_ids) <= 1 and emails.get(j.email, 0) == len(j.order_ids),
            f"journey {j.number} ({j.key}): 201s named {sorted(j.order_ids)};"
            f" {emails.get(j.email, 0)} orders in the database",
        )
        reached_end.check(j.finished, f"journey {j.number} ({j.path}) gave up: {j.gave_up}")
        if j.finished and j.order_id in orders:
            found = orders[j.order_id]["status"]
            ended_right.check(
                found == j.expected,
                f"journey {j.number} ({j.path}): order {j.order_id} is {found}, not {j.expected}",
            )
        no_5xx.check(not j.server_errors, f"journey {j.number}: {j.server_errors}")
        customer.check(not j.problems, f"journey {j.number} ({j.path}): {j.problems}")

    def captured(pi: dict[str, Any]) -> int:
        if pi.get("status") != "succeeded":
            return 0
        return int(pi.get("amount_received") or pi.get("amount") or 0)

    def capturable(pi: dict[str, Any]) -> int:
        """Authorized, not captured (capture at shipment)."""
        return (
            int(pi.get("amount_capturable") or 0) if pi.get("status") == "requires_capture" else 0
        )

    def keyed(pi_id: str, part: str) -> int:
        """The service's live refunds of `pi_id` whose key names `part` (return, unshipped)."""
        return sum(
            int(r.get("amount") or 0)
            for r in records.refunds.get(pi_id, [])
            if f":{part}:" in str((r.get("metadata") or {}).get(REFUND_KEY) or "")
        )

    def refunded(pi_id: str) -> int:
        return sum(int(r.get("amount") or 0) for r in records.refunds.get(pi_id, []))

    def disputed(pi_id: str) -> int:
        """Money a chargeback took or holds: its amount while open or when lost."""
        dispute = records.disputes.get(pi_id)
        if dispute is None or (
            dispute["status"] not in CHARGEBACK_OPEN and dispute["status"] != "lost"
        ):
            return 0
        return int(dispute.get("amount") or 0)

    def net(pi_id: str) -> int:
        return captured(records.intents[pi_id]) - refunded(pi_id) - disputed(pi_id)

    foreign = {pi: status for j in journeys for pi, status in j.foreign.items()}
    ours = {
        pi_id: pi
        for pi_id, pi in records.intents.items()
        if (pi.get("metadata") or {}).get(OWNER_KEY) == OWNER and pi_id not in foreign
    }
    kept_by_order: dict[str, list[str]] = defaultdict(list)
    for pi_id, pi in ours.items():
        keys = [
            str((r.get("metadata") or {}).get(REFUND_KEY))
            for r in records.refunds.get(pi_id, [])
            if (r.get("metadata") or {}).get(REFUND_KEY)
        ]
        cancels = [k for k in keys if ":refund:" in k]
        never_twice.check(
            len(set(keys)) == len(keys) and len(cancels) <= 1,
            f"{pi_id} has refunds by the service under keys {keys}",
        )
        within.check(
            refunded(pi_id) <= captured(pi),
            f"{pi_id}: refunds {refunded(pi_id)} exceed the {captured(pi)} charged",
        )
        if disputed(pi_id):
            status = records.disputes[pi_id]["status"]
            no_disputed_refund.check(
                not keys, f"{pi_id}: refunded by the service while its dispute is {status}"
            )
        if net(pi_id) > 0 or capturable(pi) > 0:
            kept_by_order[str((pi.get("metadata") or {}).get("order_id"))].append(pi_id)

    for order_id, order in orders.items():
        status, wf = order["status"], workflows.get(order_id, Workflow(exists=False))
        has_workflow.check(wf.exists, f"order {order_id} has no workflow")
        # A run the terminate fault ended keeps the state of its last recorded task: a
        # write its lost last task made is on the row only. The row is the order then
        # (the sweep resumes it if it can still change: checked below).
        ended_by_fault = not wf.running and (f"order-{order_id}", wf.run_id) in records.terminated
        if wf.exists and not ended_by_fault:
            agrees.check(
                status == wf.status == wf.search_status,
                f"order {order_id}: database {status}, workflow {wf.status},"
                f" search attribute {wf.search_status}",
            )
            attention.check(
                not wf.needs_attention, f"{about(order_id, wf)} ({status}) needs attention"
            )
            no_failing_task.check(
                not wf.failing_task,
                f"{about(order_id, wf)}: workflow task failing ({wf.failing_task})",
            )
        if may_still_change(status, order["stripe_payment_status"], order["resolution_note"]):
            resumed.check(wf.running, f"{about(order_id, wf)} ({status}): no running workflow")
        settled.check(status != "PaymentProcessing", f"{about(order_id, wf)} is PaymentProcessing")
        kept = kept_by_order.pop(order_id, [])
        share = shipped_share(order)
        if status in PAID_STATUSES:
            # What it keeps: the total, or once shipped its shipment's share less returns.
            owed = cents(order["total"]) if share is None else cents(share - order["returned"])
            pi = records.intents.get(order["pi"] or "", {})
            holds = net(order["pi"]) + capturable(pi) if pi else 0
            kept_one.check(
                kept == [order["pi"]] and holds == owed,
                f"order {order_id} ({status}) names {order['pi']}; kept: {kept}, holding"
                f" {holds} of {owed}",
            )
            if share is not None and pi:
                manual = pi.get("capture_method") == "manual"
                unshipped = cents(order["total"]) - cents(share)
                shipped_returned.check(
                    (captured(pi) == cents(share) and keyed(order["pi"], "unshipped") == 0)
                    if manual
                    else (
                        captured(pi) == cents(order["total"])
                        and keyed(order["pi"], "unshipped") == unshipped
                    ),
                    f"order {order_id} ({'at shipment' if manual else 'automatic'}): shipped"
                    f" share {cents(share)}, captured {captured(pi)}, unshipped refunded"
                    f" {keyed(order['pi'], 'unshipped')}",
                )
                shipped_returned.check(
                    keyed(order["pi"], "return") == cents(order["returned"]),
                    f"order {order_id}: returns {cents(order['returned'])}, refunded for them"
                    f" {keyed(order['pi'], 'return')}",
                )
        else:
            kept_none.check(not kept, f"order {order_id} ({status}) kept {kept}")
        named_pi = order["pi"] or ""
        if named_pi in ours and captured(ours[named_pi]):
            dispute = records.disputes.get(named_pi)
            row = cents(order["amount_refunded"] or Decimal(0)), order["dispute_status"]
            stripe_says = refunded(named_pi), dispute["status"] if dispute else None
            amounts.check(
                row == stripe_says,
                f"order {order_id}: the row says refunded {row[0]}, dispute {row[1]};"
                f" Stripe says {stripe_says[0]}, {stripe_says[1]}",
            )
    for order_id, kept in kept_by_order.items():  # money for an order the shop lacks
        kept_none.check(False, f"{kept} kept for unknown order {order_id}")

    for pi_id, pi in ours.items():
        order = orders.get(str((pi.get("metadata") or {}).get("order_id")), {})
        if order.get("status") in PAID_STATUSES and order.get("pi") == pi_id:
            continue  # the one payment an order keeps
        if not captured(pi):
            continue
        back = refunded(pi_id) + disputed(pi_id)
        refunded_once.check(
            back == captured(pi) and net(pi_id) == 0,
            f"{pi_id} (order {order.get('id')}, {order.get('status')}) charged"
            f" {captured(pi)}, refunds {[r.get('amount') for r in records.refunds.get(pi_id, [])]},"
            f" disputed {disputed(pi_id)}",
        )

    for pi_id, was in foreign.items():
        found = records.intents.get(pi_id, {})
        untouched.check(
            found.get("status") == was and not records.any_refunds.get(pi_id),
            f"{pi_id} of another system: {was} when made, now {found.get('status')},"
            f" {records.any_refunds.get(pi_id, 0)} refunds",
        )

    for workflow_id, run_id in records.bad_endings:
        deliberate = (workflow_id, run_id) in records.terminated
        no_bad_end.check(deliberate, f"workflow {workflow_id} ({run_id}) did not end well")
    no_bad_end.checked = max(no_bad_end.checked, len(workflows))
    told = (
        audit_events(journeys, orders, ours, records.refunds, records.disputes, records.told)
        if records.told is not None
        else []
    )
    return [
        in_db,
        has_workflow,
        resumed,
        agrees,
        one_per_key,
        kept_one,
        kept_none,
        refunded_once,
        never_twice,
        shipped_returned,
        within,
        no_disputed_refund,
        amounts,
        untouched,
        settled,
        attention,
        no_bad_end,
        no_failing_task,
        ended_right,
        reached_end,
        no_5xx,
        customer,
        *told,
    ]
