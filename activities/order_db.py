"""PostgreSQL writes for the order read model. Each is idempotent under retry."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ARRAY, String, and_, cast, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.elements import ColumnElement
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.order_events import Outbox
from vult.db import addresses, catalogue, changes
from vult.db.errors import described, is_permanent
from vult.db.models import LINE_ITEMS, ORDER_PAYMENT_INTENTS, ORDER_RETURNS, ORDERS
from vult.domain import snapshot
from vult.domain.contracts import (
    CreatedOrderRow,
    CreateOrderRow,
    DeliveryInput,
    OrderLineInfo,
    OrderLines,
    OrderPayment,
    PricedOrder,
    RecordPayment,
    RecordReturn,
    StatusChange,
)
from vult.domain.failures import Failure
from vult.domain.order_numbers import draw_order_number, is_order_number_of
from vult.domain.pricing import Pricing, unchargeable
from vult.domain.status import OrderStatus

# A clash among 900,000 numbers a day is rare; ten in a row means something else is wrong.
_ORDER_NUMBER_TRIES = 10


_ORDERS = ORDERS
_ITEMS = LINE_ITEMS
# A retry finds the row it wrote before: insert once, keyed by the order id.
_EXISTING = select(_ORDERS.c.order_number, _ORDERS.c.status, _ORDERS.c.total, _ORDERS.c.currency)


class OrderDbActivities:
    """SQLAlchemy Core on one connection per transaction: these run for every order, and
    the ORM's unit of work cost more CPU than the statements themselves (docs/performance.md)."""

    def __init__(self, engine: AsyncEngine, pricing: Pricing, outbox: Outbox | None = None) -> None:
        self._engine = engine
        self._pricing = pricing
        # Where the order events each write records go (activities/order_events.py).
        self._outbox = outbox or Outbox()

    @activity.defn(name="create_order_row")
    async def create_order_row(self, req: CreateOrderRow) -> CreatedOrderRow:
        """Snapshot the products, total the order and insert it once (keyed by order id)."""
        try:
            return await self._create(req)
        except DBAPIError as exc:
            if not is_permanent(exc):
                raise  # the database is away: retried
            problem = f"The order could not be stored ({described(exc)})"
            raise ApplicationError(
                problem, [problem], type=Failure.INVALID_ORDER, non_retryable=True
            ) from None

    async def _create(self, req: CreateOrderRow) -> CreatedOrderRow:
        for attempt in range(_ORDER_NUMBER_TRIES):
            # The API's number, unless taken or drawn on the other side of midnight.
            given = req.order_number
            if attempt == 0 and given and is_order_number_of(given, req.created_at):
                number = given
            else:
                number = draw_order_number(req.created_at)
            async with self._engine.begin() as conn:
                priced = req.priced or await self._price(conn, req)
                inserted = await conn.scalar(
                    insert(_ORDERS)
                    .values(**self._order_values(req, priced), order_number=number)
                    .on_conflict_do_nothing()
                    .returning(_ORDERS.c.order_id)
                )
                if inserted is not None:
                    await conn.execute(
                        insert(_ITEMS),
                        [
                            {
                                "line_item_id": uuid.uuid5(req.order_id, str(position)),
                                "order_id": req.order_id,
                                "position": position,
                                **line.model_dump(),
                            }
                            for position, line in enumerate(priced.lines)
                        ],
                    )
                    deliveries = await self._outbox.record(conn, req.order_id, req.events)
                    created = CreatedOrderRow(
                        order_id=req.order_id,
                        order_number=number,
                        status=OrderStatus.Pending,
                        total=priced.total,
                        currency=priced.currency,
                    )
                else:
                    created = None
            if created is not None:
                await self._outbox.start(deliveries)
                return created
            async with self._engine.connect() as conn:
                # Nothing inserted: either this order exists (a retry after the insert
                # committed) or the number is taken. The first returns the row; the second
                # draws a new number.
                existing = (
                    await conn.execute(_EXISTING.where(_ORDERS.c.order_id == req.order_id))
                ).one_or_none()
                retried = await self._outbox.pending(conn, [e.event_id for e in req.events])
            if existing is not None:
                await self._outbox.start(retried)
                return CreatedOrderRow(
                    order_id=req.order_id,
                    order_number=existing.order_number,
                    status=OrderStatus(existing.status),
                    total=existing.total,
                    currency=existing.currency,
                )
            activity.logger.info("order number %s taken, drawing another", number)
        raise RuntimeError(f"no free order number after {_ORDER_NUMBER_TRIES} tries")

    async def _price(self, conn: AsyncConnection, req: CreateOrderRow) -> PricedOrder:
        """For an order placed before the API priced it (its input has no `priced`): the
        snapshot and quote, made here from the catalogue as it is now."""
        wanted = {li.product_id for li in req.request.line_items}
        products = await catalogue.products(conn, wanted)
        problems = [
            f"Product not found: {li.product_id}"
            for li in req.request.line_items
            if li.product_id not in products
        ]
        if not problems:
            priced = snapshot.price(req.request.line_items, products, self._pricing)
            if (problem := unchargeable(priced.totals(), self._pricing)) is None:
                return priced
            problems.append(problem)
        raise ApplicationError(
            "; ".join(problems), problems, type=Failure.INVALID_ORDER, non_retryable=True
        )

    def _order_values(self, req: CreateOrderRow, priced: PricedOrder) -> dict[str, object]:
        r = req.request
        ship, bill = r.shipping_address, r.billing_address
        return dict(
            order_id=req.order_id,
            customer_id=r.customer_id,
            customer_email=r.customer_email,
            status=OrderStatus.Pending.value,
            sub_total=priced.sub_total,
            tax=priced.tax,
            shipping_cost=priced.shipping_cost,
            total=priced.total,
            currency=priced.currency,
            **addresses.columns(addresses.SHIPPING, ship),
            use_separate_billing_address=bill is not None,
            **addresses.columns(addresses.BILLING, bill),
            created_date=req.created_at,
            updated_date=req.created_at,
            request_fingerprint=req.request_fingerprint or r.fingerprint(),
        )

    @activity.defn(name="change_order_status")
    async def change_order_status(self, change: StatusChange) -> None:
        """Move the row to `new_status` only from an expected status; a replay is a no-op,
        except that it makes the row name the workflow's PaymentIntent."""
        try:
            await self._change(change)
        except DBAPIError as exc:
            if not is_permanent(exc):
                raise
            raise ApplicationError(
                f"The status change was refused by the database ({described(exc)})",
                type=Failure.STATUS_REFUSED,
                non_retryable=True,
            ) from None

    async def _change(self, change: StatusChange) -> None:
        values: dict[str, object] = {"status": change.new_status.value, "updated_date": change.at}
        stamp = change.stamp
        if stamp is not None:
            values["workflow_chain"] = stamp.chain
            values["workflow_task_began"] = stamp.task_began
            values["workflow_write"] = stamp.number
        if change.payment_intent_id is not None:
            values["stripe_payment_intent_id"] = change.payment_intent_id
        if change.stripe_payment_status is not None:
            values["stripe_payment_status"] = change.stripe_payment_status
        if change.new_status in (OrderStatus.PaymentProcessing, OrderStatus.Confirmed):
            values["payment_error_message"] = None
        if change.payment_error_message is not None:
            values["payment_error_message"] = change.payment_error_message[:1000]
        for name in (
            "cancellation_reason",
            "stripe_refund_id",
            "shipping_carrier",
            "tracking_number",
            "amount_refunded",
            "dispute_status",
            "resolution_note",
            "resumed_at",
            "amount_captured",
            "pending_cancel_reason",
        ):
            value = getattr(change, name)
            if value is not None:
                values[name] = value

        if change.settled_refund_ids:
            # Added to those settled before, each once (a retried write adds nothing).
            merged = (
                func.unnest(
                    func.array_cat(
                        func.coalesce(_ORDERS.c.settled_refund_ids, cast([], ARRAY(String(255)))),
                        cast(change.settled_refund_ids, ARRAY(String(255))),
                    )
                )
                .table_valued("refund_id")
                .render_derived()
            )
            values["settled_refund_ids"] = select(
                func.array_agg(merged.c.refund_id.distinct())
            ).scalar_subquery()
        if change.new_status == OrderStatus.Delivered:
            values["delivered_date"] = change.at
        async with self._engine.begin() as conn:
            if change.payment_intent_id is not None:
                # Recorded with the first write that names it, so the webhook route knows
                # it for ours (the account is shared) before anyone can pay it.
                await conn.execute(
                    insert(ORDER_PAYMENT_INTENTS)
                    .values(
                        payment_intent_id=change.payment_intent_id,
                        order_id=change.order_id,
                        created_date=change.at,
                    )
                    .on_conflict_do_nothing()
                )
            expected: ColumnElement[bool] = _ORDERS.c.status.in_([s.value for s in change.expected])
            if stamp is not None:
                # The row holds a write of this chain of runs, made by a task begun no
                # later than this one, numbered at or above this one: a workflow task made
                # it and was lost before it was recorded (its worker or the server died),
                # and the workflow, running that task again, may have decided otherwise.
                # The workflow is the truth: its write replaces that one. (A late write of
                # an ended run, or of an attempt that stalled while the task ran again, or
                # a row whose workflow_chain was cleared by hand, is held to the status.)
                lost = and_(
                    _ORDERS.c.workflow_chain == stamp.chain,
                    _ORDERS.c.workflow_task_began <= stamp.task_began,
                    _ORDERS.c.workflow_write >= stamp.number,
                )
                expected = or_(expected, lost)
            changed = await conn.scalar(
                update(_ORDERS)
                .where(_ORDERS.c.order_id == change.order_id, expected)
                .values(**values)
                .returning(_ORDERS.c.order_id)
            )
            if changed is not None:
                if change.new_status == OrderStatus.Shipped:
                    await _record_shipment(conn, change)
                deliveries = await self._outbox.record(conn, change.order_id, change.events)
                await changes.announce(conn, change.order_id)
            else:
                deliveries = None
        if deliveries is not None:
            await self._outbox.start(deliveries)
            return
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(_ORDERS.c.status, _ORDERS.c.stripe_payment_intent_id).where(
                        _ORDERS.c.order_id == change.order_id
                    )
                )
            ).one_or_none()
        if row is None:
            raise ApplicationError(
                f"order {change.order_id} does not exist",
                type=Failure.ORDER_NOT_FOUND,
                non_retryable=True,
            )
        status, pi = row
        same_pi = change.payment_intent_id is None or change.payment_intent_id == pi
        if status == change.new_status.value:
            if same_pi or change.stamp is not None:
                # Unstamped: this change was already applied (a retry after commit); its
                # events were recorded with it, their deliveries perhaps not yet started.
                # Stamped (its own retry matched the stamp above): the row holds someone
                # else's write (an ended run's, a hand's) naming the same status, and it
                # stands as it is.
                async with self._engine.connect() as conn:
                    retried = await self._outbox.pending(conn, [e.event_id for e in change.events])
                await self._outbox.start(retried)
                return
            # An unstamped write (from a build before 1.1) applied by an attempt whose
            # result the workflow never saw (its task was lost with a crash): that
            # attempt's PaymentIntent was never handed to anyone, and the workflow's own is
            # the one the row must name. (A stamped one is replaced above.)
            async with self._engine.begin() as conn:
                await conn.execute(
                    update(_ORDERS)
                    .where(_ORDERS.c.order_id == change.order_id, _ORDERS.c.status == status)
                    .values(**values)
                )
                await changes.announce(conn, change.order_id)
            return
        raise ApplicationError(
            f"order {change.order_id} is {status}, expected one of "
            f"{[s.value for s in change.expected]} to become {change.new_status.value}",
            type=Failure.STATUS_CONFLICT,
            non_retryable=True,
        )

    @activity.defn(name="record_payment")
    async def record_payment(self, record: RecordPayment) -> bool:
        """Stripe's amounts on the row of an order whose workflow has closed, whatever its
        status. False when there is no such order."""
        async with self._engine.begin() as conn:
            changed = await conn.scalar(
                update(_ORDERS)
                .where(_ORDERS.c.order_id == record.order_id)
                .values(
                    stripe_payment_status=record.stripe_payment_status,
                    amount_refunded=record.amount_refunded,
                    dispute_status=record.dispute_status,
                    updated_date=record.at,
                )
                .returning(_ORDERS.c.order_id)
            )
            deliveries = []
            if changed is not None:
                deliveries = await self._outbox.record(conn, record.order_id, record.events)
                await changes.announce(conn, record.order_id)
        await self._outbox.start(deliveries)
        return changed is not None

    @activity.defn(name="accept_update")
    async def accept_update(self, update: str) -> None:
        """Nothing: the workflow task that accepted `update` ends by scheduling this, so
        the server records the acceptance before the update writes or calls Stripe."""

    @activity.defn(name="read_order_lines")
    async def read_order_lines(self, order_id: uuid.UUID) -> OrderLines:
        """The order's amounts and lines, with what shipped and was returned (a read)."""
        async with self._engine.connect() as conn:
            order = (
                await conn.execute(
                    select(
                        _ORDERS.c.sub_total,
                        _ORDERS.c.tax,
                        _ORDERS.c.shipping_cost,
                        _ORDERS.c.total,
                    ).where(_ORDERS.c.order_id == order_id)
                )
            ).one()
            lines = await conn.execute(
                select(
                    LINE_ITEMS.c.line_item_id,
                    LINE_ITEMS.c.unit_price,
                    LINE_ITEMS.c.quantity,
                    LINE_ITEMS.c.quantity_shipped,
                    LINE_ITEMS.c.quantity_returned,
                )
                .where(LINE_ITEMS.c.order_id == order_id)
                .order_by(LINE_ITEMS.c.position)
            )
            return OrderLines(
                sub_total=order.sub_total,
                tax=order.tax,
                shipping_cost=order.shipping_cost,
                total=order.total,
                lines=[
                    OrderLineInfo(
                        line_item_id=str(li.line_item_id),
                        unit_price=li.unit_price,
                        quantity=li.quantity,
                        shipped=li.quantity_shipped or 0,
                        returned=li.quantity_returned,
                    )
                    for li in lines
                ],
            )

    @activity.defn(name="record_return")
    async def record_return(self, req: RecordReturn) -> datetime | None:
        """The return on the order (its row in order_returns, the lines' returned
        quantities, Stripe's amounts), once: a retry finds its row and does nothing.
        Answers when the return was recorded: the first write's time, which a workflow
        task run again after a lost one answers with too. (Typed optional: a history
        recorded before this answered nothing.)"""
        record = req.record
        async with self._engine.begin() as conn:
            inserted = await conn.scalar(
                insert(ORDER_RETURNS)
                .values(
                    order_id=req.order_id,
                    return_key=record.key,
                    reason=record.reason,
                    amount=record.amount,
                    refund_id=record.refund_id or None,
                    refund_status=record.refund_status or None,
                    line_items=[
                        {"lineItemId": li.line_item_id, "quantity": li.quantity}
                        for li in record.line_items
                    ],
                    created_date=record.at,
                )
                .on_conflict_do_nothing()
                .returning(ORDER_RETURNS.c.return_key)
            )
            if inserted is None:
                retried = await self._outbox.pending(conn, [e.event_id for e in req.events])
                recorded_at = await conn.scalar(
                    select(ORDER_RETURNS.c.created_date).where(
                        ORDER_RETURNS.c.order_id == req.order_id,
                        ORDER_RETURNS.c.return_key == record.key,
                    )
                )
            else:
                retried = await self._record_return(conn, req)
                recorded_at = record.at
        await self._outbox.start(retried)
        return recorded_at

    async def _record_return(self, conn: AsyncConnection, req: RecordReturn) -> list[DeliveryInput]:
        record = req.record
        for li in record.line_items:
            await conn.execute(
                update(LINE_ITEMS)
                .where(
                    LINE_ITEMS.c.order_id == req.order_id,
                    LINE_ITEMS.c.line_item_id == uuid.UUID(li.line_item_id),
                )
                .values(quantity_returned=LINE_ITEMS.c.quantity_returned + li.quantity)
            )
        await conn.execute(
            update(_ORDERS)
            .where(_ORDERS.c.order_id == req.order_id)
            .values(
                stripe_payment_status=req.stripe_payment_status,
                amount_refunded=req.amount_refunded,
                updated_date=req.at,
            )
        )
        deliveries = await self._outbox.record(conn, req.order_id, req.events)
        await changes.announce(conn, req.order_id)
        return deliveries

    @activity.defn(name="read_order_payment")
    async def read_order_payment(self, order_id: uuid.UUID) -> OrderPayment:
        """The order's status and the PaymentIntent it recorded (a read: safe to repeat)."""
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(
                        _ORDERS.c.status,
                        _ORDERS.c.stripe_payment_intent_id,
                        _ORDERS.c.settled_refund_ids,
                    ).where(_ORDERS.c.order_id == order_id)
                )
            ).one_or_none()
        if row is None:
            return OrderPayment(exists=False)
        return OrderPayment(
            exists=True,
            status=OrderStatus(row.status),
            payment_intent_id=row.stripe_payment_intent_id,
            settled_refund_ids=list(row.settled_refund_ids or []),
        )


async def _record_shipment(conn: AsyncConnection, change: StatusChange) -> None:
    """What shipped, on the lines: every line in full, or the quantities named (the rest
    of each line: none)."""
    if change.ship_all:
        await conn.execute(
            update(LINE_ITEMS)
            .where(LINE_ITEMS.c.order_id == change.order_id)
            .values(quantity_shipped=LINE_ITEMS.c.quantity)
        )
    elif change.shipped_lines is not None:
        await conn.execute(
            update(LINE_ITEMS)
            .where(LINE_ITEMS.c.order_id == change.order_id)
            .values(quantity_shipped=0)
        )
        for line_id, quantity in change.shipped_lines.items():
            await conn.execute(
                update(LINE_ITEMS)
                .where(
                    LINE_ITEMS.c.order_id == change.order_id,
                    LINE_ITEMS.c.line_item_id == uuid.UUID(line_id),
                )
                .values(quantity_shipped=quantity)
            )
