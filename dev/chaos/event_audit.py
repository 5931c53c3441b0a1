"""The order events (vult/domain/order_events.py) against the facts every order shows, and
against what the inbox got of them: the receiver's tries and the customers' mail.

Facts. An event's id comes from its order and its fact (`event_id`), so the audit computes
the id each fact must have been told under: placed (every order); paid, or authorized when
the order's PaymentIntent captures at shipment (every order that was Confirmed: its status
is Confirmed or later, or its journey saw it so; a Cancelled order may have been, unseen);
cancelled; shipped (its lines say what shipped); delivered; returned (each return the order
took, by its key); refunded (each refund that succeeded at Stripe of the PaymentIntent the
order names, whoever made it: the row's refunded amount counts it); disputed and
dispute_closed (the dispute of that PaymentIntent, once the row records it, and once the row
records its end). payment_failed: at least one when the order was seen Failed, at most one
per decline Stripe reported for the order's PaymentIntents. needs_attention: any number
(one per parking, which nothing else records). Each fact's event exactly once; an event no
fact accounts for (another id of its type, a fact the order does not show) is a violation.

Deliveries. Each event has one delivery per target: the shop's endpoint (the inbox's
receiver) and, for the customer's mails (CUSTOMER_MAILS), the customer's e-mail; each must be
delivered. Every webhook try the receiver got must verify (Standard Webhooks signature) and
carry the event's id as `webhook-id` (with the event's type and order in its body); at
least one try of each event was answered 2xx in time. Every mail's Message-ID is
`<{event id}@{domain}>` of a customer-mail event of the recipient's order, one Message-ID
per event, and each such event was mailed.

The bound on tries. A delivery's workflow makes at most 1 + len(DELIVERY_RETRY_DELAYS)
tries per run (`runs`: 1 unless ops sent it again). Beyond those, a try is made again only
when a fault lands between its request and its record: the worker killed (the try times out
and Temporal retries it), PostgreSQL killed, stopped or down as the try is recorded (the
activity fails and is retried; after a restart one record may also meet a dead pooled
connection), the Temporal server killed before the try's completion reached it, the inbox
killed between keeping a mail and answering. Such a repeat carries the same `webhook-id` or
Message-ID. Each lane's faults (dev/chaos/faults.py) come seconds apart and a try takes at
most the webhook timeout and one write, so one fault at most lands in one delivery's tries,
and it costs at most two repeats: a delivery may reach the receiver at most (1 + len(delays))
* runs + MAX_REPEATS times, and the mail server at most 1 + MAX_REPEATS times (a mail is
kept only when accepted). Repeats are counted (at least: the receiver's tries beyond the
tries recorded, the mails beyond one) and reported.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg
from psycopg.rows import dict_row

from dev.chaos.cluster import DELIVERY_RETRY_DELAYS, WEBHOOK_TIMEOUT_SECONDS
from dev.chaos.invariants import Invariant
from dev.chaos.shoppers import Journey
from dev.inbox.local_receiver import LOCAL_RECEIVER
from vult.db.urls import libpq_url
from vult.domain.order_events import CUSTOMER_MAILS, EMAIL_TARGET, OrderEventType, event_id
from vult.domain.payments import OPEN_DISPUTE, REFUND_KEY

E = OrderEventType
# Tries a delivery may be made again beyond its workflow's, by faults (the module's doc).
MAX_REPEATS = 2
CONFIRMED_OR_LATER = frozenset({"Confirmed", "Processing", "Shipped", "Delivered"})
UNFINISHED = ("pending", "failing")
_MESSAGE_ID = re.compile(r"<([^<>@\s]+)@([^<>@\s]+)>")

TOLD = "every fact an order shows was told: its event, of its type, under the fact's id"
ONCE = "no fact told twice; no event for a fact the order does not show"
DELIVERED = "every event delivered to each of its targets (none pending, failing or failed)"
RECEIVED = "every event reached the webhook receiver and was answered 2xx in time"
SIGNED = "every webhook try verified by its Standard Webhooks signature"
SAME_ID = "every webhook try carried its event's id as webhook-id (and its type and order)"
BOUNDED = (
    f"tries per delivery within 1 + len(DELIVERY_RETRY_DELAYS) per run"
    f" + {MAX_REPEATS} repeats (mails: 1 + {MAX_REPEATS})"
)
MAILED = "one e-mail per customer-mail event, under Message-ID <event id@domain>"


@dataclass
class Told:
    """What the orders told and where it went, read once after the run."""

    # order_events: id, order_id, type, body_id and body_order (what its body says).
    events: list[dict[str, Any]]
    # event_deliveries: event_id, target, state, attempts, runs, answer (the last one).
    deliveries: list[dict[str, Any]]
    tries: list[dict[str, Any]]  # the receiver's records (the inbox's /api/deliveries)
    mails: list[dict[str, Any]]  # the mails the inbox's SMTP server took (/api/mails)
    # PaymentIntent id -> Stripe's payment_intent.payment_failed events for it (declines).
    declines: dict[str, int] = field(default_factory=dict)
    retry_delays: tuple[float, ...] = DELIVERY_RETRY_DELAYS
    webhook_timeout: float = WEBHOOK_TIMEOUT_SECONDS
    endpoints: tuple[str, ...] = (LOCAL_RECEIVER,)


def read_told(database_url: str, inbox_url: str, declines: dict[str, int]) -> Told:
    with psycopg.connect(libpq_url(database_url), connect_timeout=10) as conn:
        cursor = conn.cursor(row_factory=dict_row)
        events = cursor.execute(
            "SELECT event_id AS id, order_id::text AS order_id, type, body->>'id' AS body_id,"
            " body->>'orderId' AS body_order FROM order_events"
        ).fetchall()
        deliveries = cursor.execute(
            "SELECT event_id, target, state, attempts, runs, last_answer AS answer"
            " FROM event_deliveries"
        ).fetchall()
    with httpx.Client(timeout=120) as http:
        tries = http.get(f"{inbox_url}/api/deliveries")
        tries.raise_for_status()
        mails = http.get(f"{inbox_url}/api/mails")
        mails.raise_for_status()
    return Told(
        events=events,
        deliveries=deliveries,
        tries=list(tries.json()),
        mails=list(mails.json()),
        declines=declines,
    )


def unfinished_deliveries(database_url: str) -> list[str]:
    """Deliveries still pending or failing, described."""
    with psycopg.connect(libpq_url(database_url), connect_timeout=5) as conn:
        rows = conn.execute(
            "SELECT d.event_id, e.type, d.target, d.state, d.attempts, d.last_answer"
            " FROM event_deliveries d JOIN order_events e USING (event_id)"
            " WHERE d.state = ANY(%s) ORDER BY e.occurred_at",
            (list(UNFINISHED),),
        ).fetchall()
    return [
        f"{event} ({kind}) to {target}: {state} after {attempts} tries ({answer})"
        for event, kind, target, state, attempts, answer in rows
    ]


async def wait_for_deliveries(
    database_url: str, budget: float
) -> tuple[float, list[str], list[str]]:
    """Wait (at most `budget` seconds) until no delivery is pending or failing; returns how
    long it took, those unfinished when it began, and those still unfinished at its end
    (empty when none)."""
    began = time.monotonic()
    first: list[str] | None = None
    left: list[str] = ["(not read yet)"]
    while time.monotonic() - began < budget:
        try:
            left = await asyncio.to_thread(unfinished_deliveries, database_url)
        except psycopg.OperationalError as exc:
            left = [f"(the database: {exc})"]
        first = left if first is None else first
        if not left:
            break
        await asyncio.sleep(2)
    return time.monotonic() - began, first or [], left


def _body(attempt: Mapping[str, Any]) -> dict[str, Any]:
    try:
        body = json.loads(attempt.get("body") or "")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _message_id(mail: Mapping[str, Any]) -> tuple[str, str] | None:
    """(event id, domain) from a mail's Message-ID, or None when it is not that form."""
    found = _MESSAGE_ID.fullmatch(str(mail.get("messageId") or "").strip())
    return (found.group(1), found.group(2)) if found else None


@dataclass
class _Fact:
    """One kind of fact of one order: the ids it must have been told under (`required`),
    the ids it may have been (`allowed`; None: any), and how many events at least and at
    most (`most` None: no limit)."""

    name: str
    types: frozenset[str]
    required: set[str] = field(default_factory=set)
    allowed: set[str] | None = None
    least: int = 0
    most: int | None = None
    what: dict[str, str] = field(default_factory=dict)  # id -> the fact, for the report


def _facts(
    order_id: str,
    order: Mapping[str, Any],
    seen: set[str],
    ours: Mapping[str, Mapping[str, Any]],
    refunds: Mapping[str, list[dict[str, Any]]],
    disputes: Mapping[str, Mapping[str, Any]],
    declines: int,
) -> list[_Fact]:
    oid = uuid.UUID(order_id)

    def one(kind: OrderEventType, fact: str = "") -> str:
        return event_id(oid, kind, fact)

    def only(name: str, kind: OrderEventType, shown: bool) -> _Fact:
        ids = {one(kind)} if shown else set()
        return _Fact(name, frozenset({kind.value}), set(ids), set(ids))

    status, named = order["status"], order.get("pi") or ""
    lines = order.get("lines") or []
    facts = [only("placed", E.PLACED, True)]

    # Paid (captured at once) or authorized (capture at shipment): by the PaymentIntent.
    intent = ours.get(named)
    if intent is None:
        kinds = [E.PAID, E.AUTHORIZED]
    else:
        kinds = [E.AUTHORIZED if intent.get("capture_method") == "manual" else E.PAID]
    confirmed = status in CONFIRMED_OR_LATER or bool(seen & CONFIRMED_OR_LATER)
    maybe = confirmed or status == "Cancelled"  # cancelled after it confirmed, unseen
    ids = {one(k) for k in kinds}
    facts.append(
        _Fact(
            "paid or authorized",
            frozenset({E.PAID.value, E.AUTHORIZED.value}),
            set(ids) if confirmed and len(ids) == 1 else set(),
            set(ids) if maybe else set(),
            least=1 if confirmed else 0,
            most=1,
        )
    )
    facts.append(
        _Fact(
            "payment failed",
            frozenset({E.PAYMENT_FAILED.value}),
            least=1 if status == "Failed" or "Failed" in seen else 0,
            most=declines,
        )
    )
    facts.append(only("cancelled", E.CANCELLED, status == "Cancelled"))
    shipped = bool(lines) and all(li.get("quantity_shipped") is not None for li in lines)
    facts.append(only("shipped", E.SHIPPED, shipped))
    facts.append(only("delivered", E.DELIVERED, status == "Delivered"))
    returned = {one(E.RETURNED, key) for key in order.get("return_keys") or []}
    facts.append(_Fact("returned", frozenset({E.RETURNED.value}), returned, set(returned)))

    # Refunds: each one of the named PaymentIntent that went through must be told; one of
    # another of the order's PaymentIntents may be (told while it was the current one).
    what: dict[str, str] = {}
    for r in refunds.get(named, []) if named in ours else []:
        key = (r.get("metadata") or {}).get(REFUND_KEY)
        by = f"the service's, key {key}" if key else "not the service's (the Dashboard's)"
        what[one(E.REFUNDED, str(r["id"]))] = f"refund {r['id']} of {named}, {by}"
    succeeded = {
        one(E.REFUNDED, str(r["id"]))
        for r in refunds.get(named, [])
        if named in ours and r.get("status") == "succeeded"
    }
    any_of_ours = {
        one(E.REFUNDED, str(r["id"]))
        for pi_id, pi in ours.items()
        if str((pi.get("metadata") or {}).get("order_id")) == order_id
        for r in refunds.get(pi_id, [])
    }
    facts.append(
        _Fact(
            "refunded",
            frozenset({E.REFUNDED.value}),
            succeeded,
            succeeded | any_of_ours,
            what=what,
        )
    )

    dispute = disputes.get(named) if named in ours else None
    recorded = order.get("dispute_status")
    opened: set[str] = set()
    closed: set[str] = set()
    may_close: set[str] = set()
    if dispute is not None:
        opened = {one(E.DISPUTED, str(dispute["id"]))}
        if dispute.get("status") not in OPEN_DISPUTE:
            may_close = {one(E.DISPUTE_CLOSED, str(dispute["id"]))}
        if recorded and recorded not in OPEN_DISPUTE:
            closed = set(may_close)
    facts.append(
        _Fact(
            "disputed",
            frozenset({E.DISPUTED.value}),
            set(opened) if recorded else set(),
            opened,
        )
    )
    facts.append(_Fact("dispute closed", frozenset({E.DISPUTE_CLOSED.value}), closed, may_close))
    return facts


def audit_events(
    journeys: Iterable[Journey],
    orders: Mapping[str, Mapping[str, Any]],
    ours: Mapping[str, Mapping[str, Any]],
    refunds: Mapping[str, list[dict[str, Any]]],
    disputes: Mapping[str, Mapping[str, Any]],
    told: Told,
) -> list[Invariant]:
    """`ours`: the service's PaymentIntents (not another system's), by id; `refunds`: the
    live refunds of each; `disputes`: the latest dispute of each."""
    said = Invariant(TOLD)
    once = Invariant(ONCE)
    delivered = Invariant(DELIVERED)
    received = Invariant(RECEIVED)
    signed = Invariant(SIGNED)
    same_id = Invariant(SAME_ID)
    bounded = Invariant(BOUNDED)
    mailed = Invariant(MAILED)

    seen: dict[str, set[str]] = defaultdict(set)
    paths: dict[str, str] = {}
    for j in journeys:
        for order_id in j.order_ids:
            seen[order_id] |= j.seen
            paths[order_id] = f"journey {j.number} ({j.path})"
    declines: Counter[str] = Counter()
    for pi_id, count in told.declines.items():
        if pi_id in ours:
            declines[str((ours[pi_id].get("metadata") or {}).get("order_id"))] += count

    events = {str(e["id"]): e for e in told.events}
    by_order: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in told.events:
        by_order[str(e["order_id"])].append(e)
    known_types = {k.value for k in E}

    # Facts -> events.
    for order_id, order in sorted(orders.items()):
        found = by_order.get(order_id, [])
        facts = _facts(
            order_id,
            order,
            seen.get(order_id, set()),
            ours,
            refunds,
            disputes,
            declines.get(order_id, 0),
        )
        accounted: set[str] = set()
        for fact in facts:
            ids = {str(e["id"]) for e in found if e["type"] in fact.types}
            accounted |= ids
            journey = paths.get(order_id, "no journey")
            about = f"order {order_id} ({order['status']}, {journey}), {fact.name}"
            for missing in sorted(fact.required - ids):
                fact_is = f" for {fact.what[missing]}" if missing in fact.what else ""
                said.check(
                    False,
                    f"{about}: no event {missing}{fact_is}; its events of the kind:"
                    f" {sorted(ids) or 'none'}",
                )
            said.checked += len(fact.required & ids)
            if fact.least and not fact.required:
                said.check(
                    len(ids) >= fact.least,
                    f"{about}: {len(ids)} events, at least {fact.least} expected",
                )
            once.checked += len(ids)
            extra = sorted(ids - fact.allowed) if fact.allowed is not None else []
            if extra:
                once.violations.append(
                    f"{about}: {extra} told, for a fact it does not show (its events of"
                    f" the kind: {sorted(ids)})"
                )
            if fact.most is not None and len(ids) > fact.most:
                once.violations.append(
                    f"{about}: {len(ids)} events {sorted(ids)}, at most {fact.most}"
                )
        for e in found:
            eid = str(e["id"])
            if e["type"] not in known_types:
                once.check(False, f"order {order_id}: event {eid} of unknown type {e['type']}")
            elif e["type"] == E.NEEDS_ATTENTION.value:
                once.checked += 1
            elif eid not in accounted:  # cannot be: every other type is some fact's
                once.check(False, f"order {order_id}: event {eid} ({e['type']}) unaccounted")
            once.check(
                e.get("body_id") == eid and e.get("body_order") == order_id,
                f"event {eid}: its body names event {e.get('body_id')},"
                f" order {e.get('body_order')}",
            )
    for order_id in sorted(set(by_order) - set(orders)):
        once.check(False, f"events {[e['id'] for e in by_order[order_id]]} of no order")

    # Events -> deliveries.
    rows = _rows(told)
    tries, mails = _tries(told), _mails(told)
    for attempt in told.tries:
        body = _body(attempt)
        eid = str(body.get("id"))
        event = events.get(eid)
        signed.check(
            attempt.get("verified") is True,
            f"try {attempt.get('n')} (webhook-id {attempt.get('webhookId')}) to"
            f" {attempt.get('endpoint')}: not verified ({attempt.get('error')})",
        )
        outbox = "no such event" if event is None else f"{event['type']}, order {event['order_id']}"
        same_id.check(
            event is not None
            and attempt.get("webhookId") == eid
            and attempt.get("endpoint") in told.endpoints
            and body.get("type") == event["type"]
            and body.get("orderId") == event["order_id"],
            f"try {attempt.get('n')} to {attempt.get('endpoint')}: webhook-id"
            f" {attempt.get('webhookId')}, body {eid} ({body.get('type')}, order"
            f" {body.get('orderId')}); the outbox has {outbox}",
        )
    for mail in told.mails:
        named = _message_id(mail)
        event = events.get(named[0]) if named else None
        recipient = orders.get(str(event["order_id"])) if event else None
        to = {str(a).lower() for a in mail.get("to") or []}
        mailed.check(
            event is not None
            and event["type"] in CUSTOMER_MAILS
            and recipient is not None
            and str(recipient["email"]).lower() in to,
            f"mail {mail.get('n')} to {sorted(to)}, Message-ID {mail.get('messageId')}: not the"
            " mail of a customer-mail event of the recipient's order",
        )

    tries_per_run = 1 + len(told.retry_delays)
    for eid, e in sorted(events.items()):
        order = orders.get(str(e["order_id"]), {})
        what = f"event {eid} ({e['type']}, order {e['order_id']})"
        wanted = set(told.endpoints)
        if e["type"] in CUSTOMER_MAILS:
            wanted.add(EMAIL_TARGET)
        refused = order.get("email_refused") is not None
        for target in sorted(wanted | set(rows.get(eid, {}))):
            row = rows.get(eid, {}).get(target)
            fine = {"delivered"}
            if target == EMAIL_TARGET and refused:
                fine |= {"refused", "disabled"}  # the address was refused for good
            if row is None:
                state = "no delivery"
            elif target not in wanted:
                state = "not a target of this event"
            else:
                state = f"{row['state']} after {row['attempts']} tries ({row.get('answer')})"
            delivered.check(
                row is not None and target in wanted and row["state"] in fine,
                f"{what} to {target}: {state}",
            )
            if row is None:
                continue
            cap = tries_per_run * max(int(row.get("runs") or 1), 1) + MAX_REPEATS
            got = _got(eid, target, tries, mails)
            got_cap = 1 + MAX_REPEATS if target == EMAIL_TARGET else cap
            attempts = int(row.get("attempts") or 0)
            bounded.check(
                got <= got_cap and attempts <= cap,
                f"{what} to {target}: {got} received (at most {got_cap}), {attempts} tries"
                f" recorded (at most {cap})",
            )
        if LOCAL_RECEIVER in wanted:
            answered = [
                t
                for t in tries.get(eid, [])
                if t.get("endpoint") == LOCAL_RECEIVER
                and t.get("verified") is True
                and 200 <= int(t.get("status") or 0) < 300
                and float(t.get("delaySeconds") or 0) < told.webhook_timeout
            ]
            received.check(
                bool(answered),
                f"{what}: {len(tries.get(eid, []))} tries received, none answered 2xx in time",
            )
        if e["type"] in CUSTOMER_MAILS and not refused:
            message_ids = sorted({str(m.get("messageId")) for m in mails.get(eid, [])})
            mailed.check(
                len(message_ids) == 1,
                f"{what}: " + (f"Message-IDs {message_ids}" if message_ids else "no e-mail"),
            )
    return [said, once, delivered, received, signed, same_id, bounded, mailed]


def _rows(told: Told) -> dict[str, dict[str, dict[str, Any]]]:
    """The deliveries by event id, then target."""
    rows: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for d in told.deliveries:
        rows[str(d["event_id"])][str(d["target"])] = d
    return rows


def _tries(told: Told) -> dict[str, list[dict[str, Any]]]:
    """The receiver's tries by the event id their body names."""
    tries: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for attempt in told.tries:
        tries[str(_body(attempt).get("id"))].append(attempt)
    return tries


def _mails(told: Told) -> dict[str, list[dict[str, Any]]]:
    """The mails by the event id their Message-ID names."""
    mails: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for mail in told.mails:
        named = _message_id(mail)
        if named is not None:
            mails[named[0]].append(mail)
    return mails


def _got(
    eid: str,
    target: str,
    tries: Mapping[str, list[dict[str, Any]]],
    mails: Mapping[str, list[dict[str, Any]]],
) -> int:
    """How many times the target got the event: mails kept, or webhook tries received."""
    if target == EMAIL_TARGET:
        return len(mails.get(eid, []))
    return sum(1 for t in tries.get(eid, []) if t.get("endpoint") == target)


def repeats(told: Told) -> int:
    """Tries a target got beyond those recorded (mails: beyond one): the repeats faults
    caused, at least (a try the inbox never got, while it was down, hides one)."""
    tries, mails = _tries(told), _mails(told)
    found = 0
    for d in told.deliveries:
        got = _got(str(d["event_id"]), str(d["target"]), tries, mails)
        once = 1 if d["target"] == EMAIL_TARGET else int(d.get("attempts") or 0)
        found += max(0, got - once)
    return found


def figures(told: Told) -> dict[str, Any]:
    """What the run told, for the report: events by type, deliveries by target and state,
    the receiver's tries, repeats, mails."""
    deliveries = Counter(f"{d['target']} {d['state']}" for d in told.deliveries)
    return {
        "events": len(told.events),
        "events by type": dict(sorted(Counter(str(e["type"]) for e in told.events).items())),
        "deliveries": len(told.deliveries),
        "deliveries by target and state": dict(sorted(deliveries.items())),
        "tries recorded": sum(int(d.get("attempts") or 0) for d in told.deliveries),
        "deliveries tried more than once, by target": dict(
            sorted(
                Counter(
                    str(d["target"]) for d in told.deliveries if int(d.get("attempts") or 0) > 1
                ).items()
            )
        ),
        "webhook tries received": len(told.tries),
        "webhook tries answered other than 2xx in time": sum(
            1
            for t in told.tries
            if not 200 <= int(t.get("status") or 0) < 300
            or float(t.get("delaySeconds") or 0) >= told.webhook_timeout
        ),
        "mails": len(told.mails),
        "repeats": repeats(told),
    }
