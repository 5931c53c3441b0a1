"""The PostgreSQL activities on a real database: safe to run twice, never move an order back."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.order_db import OrderDbActivities
from tests.support.workflows import order_request
from vult.domain.contracts import (
    CreateOrderRow,
    RecordReturn,
    ReturnRecord,
    StatusChange,
    WriteStamp,
)
from vult.domain.failures import Failure
from vult.domain.pricing import Pricing
from vult.domain.status import OrderStatus

S = OrderStatus
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.fixture
def db(engine: AsyncEngine) -> OrderDbActivities:
    return OrderDbActivities(engine, Pricing(Decimal("0.08"), Decimal("4.99"), "USD"))


def new_order(product: uuid.UUID | None = None) -> CreateOrderRow:
    request = order_request() if product is None else order_request(product)
    return CreateOrderRow(order_id=uuid.uuid4(), created_at=NOW, request=request)


async def row_of(engine: AsyncEngine, order_id: uuid.UUID, *columns: str) -> tuple[Any, ...]:
    async with engine.connect() as conn:
        row = await conn.execute(
            text(f"SELECT {', '.join(columns)} FROM orders WHERE order_id = :id"),
            {"id": order_id},
        )
        return tuple(row.one())


async def rows_for(engine: AsyncEngine, order_id: uuid.UUID) -> tuple[int, int]:
    async with engine.connect() as conn:
        orders = (
            await conn.execute(
                text("SELECT count(*) FROM orders WHERE order_id = :id"), {"id": order_id}
            )
        ).scalar_one()
        items = (
            await conn.execute(
                text("SELECT count(*) FROM line_items WHERE order_id = :id"), {"id": order_id}
            )
        ).scalar_one()
    return orders, items


async def test_creating_the_same_order_twice_writes_one_row(
    db: OrderDbActivities, engine: AsyncEngine
) -> None:
    req = new_order()
    env = ActivityEnvironment()
    first = await env.run(db.create_order_row, req)
    again = await env.run(db.create_order_row, req)
    assert again == first
    assert first.total == Decimal("259.98") + Decimal("20.80") + Decimal("4.99")
    assert await rows_for(engine, req.order_id) == (1, 1)


async def test_a_taken_order_number_is_retried_with_a_new_one(
    db: OrderDbActivities, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = ActivityEnvironment()
    first = await env.run(
        db.create_order_row,
        new_order(),
    )
    taken_serial = int(first.order_number.rsplit("-", 1)[1])
    draws = iter([taken_serial, taken_serial, 424242])
    monkeypatch.setattr(random, "randrange", lambda a, b: next(draws))

    second = await env.run(
        db.create_order_row,
        new_order(),
    )
    assert second.order_number == "VLT-20261127-424242"
    assert second.order_number != first.order_number


async def test_the_number_drawn_by_the_api_is_used_unless_taken(db: OrderDbActivities) -> None:
    env = ActivityEnvironment()
    first = await env.run(
        db.create_order_row, new_order().model_copy(update={"order_number": "VLT-20261127-555555"})
    )
    assert first.order_number == "VLT-20261127-555555"
    clash = await env.run(
        db.create_order_row, new_order().model_copy(update={"order_number": first.order_number})
    )
    assert clash.order_number != first.order_number


async def test_an_unknown_product_is_refused_without_retry(db: OrderDbActivities) -> None:
    missing = uuid.uuid4()
    with pytest.raises(ApplicationError) as caught:
        await ActivityEnvironment().run(
            db.create_order_row,
            new_order(missing),
        )
    assert caught.value.type == Failure.INVALID_ORDER and caught.value.non_retryable
    assert caught.value.details[0] == [f"Product not found: {missing}"]


async def test_a_status_change_applies_once_and_a_replay_is_a_no_op(
    db: OrderDbActivities, engine: AsyncEngine
) -> None:
    env = ActivityEnvironment()
    created = await env.run(
        db.create_order_row,
        new_order(),
    )
    change = StatusChange(
        order_id=created.order_id,
        expected=[S.Pending],
        new_status=S.PaymentProcessing,
        at=NOW,
        payment_intent_id="pi_1",
    )
    await env.run(db.change_order_status, change)
    await env.run(db.change_order_status, change)  # a retry after the commit
    assert await row_of(engine, created.order_id, "status", "stripe_payment_intent_id") == (
        "PaymentProcessing",
        "pi_1",
    )


async def test_refunds_ops_settled_are_added_once_and_read_back(
    db: OrderDbActivities, engine: AsyncEngine
) -> None:
    """Failed refunds ops resolved are kept on the row (the after-close workflow reads
    them): each resolution adds its own, a retried write adds nothing."""
    env = ActivityEnvironment()
    created = await env.run(db.create_order_row, new_order())
    order_id = created.order_id
    assert (await env.run(db.read_order_payment, order_id)).settled_refund_ids == []
    first = StatusChange(
        order_id=order_id,
        expected=[S.Pending],
        new_status=S.Pending,
        at=NOW,
        resolution_note="paid back by transfer",
        settled_refund_ids=["re_1"],
    )
    await env.run(db.change_order_status, first)
    await env.run(db.change_order_status, first)  # a retry after the commit
    later = first.model_copy(update={"settled_refund_ids": ["re_2", "re_1"]})
    await env.run(db.change_order_status, later)
    settled = (await env.run(db.read_order_payment, order_id)).settled_refund_ids
    assert sorted(settled) == ["re_1", "re_2"]


async def test_a_replay_with_another_payment_intent_names_the_workflows_own(
    db: OrderDbActivities, engine: AsyncEngine
) -> None:
    """A worker died after Stripe made a PaymentIntent and the row named it, before the
    workflow saw either; its retry made another one. The row names the workflow's."""
    env = ActivityEnvironment()
    created = await env.run(db.create_order_row, new_order())
    first = StatusChange(
        order_id=created.order_id,
        expected=[S.Pending],
        new_status=S.PaymentProcessing,
        at=NOW,
        payment_intent_id="pi_lost",
    )
    await env.run(db.change_order_status, first)
    await env.run(db.change_order_status, first.model_copy(update={"payment_intent_id": "pi_2"}))
    assert await row_of(engine, created.order_id, "status", "stripe_payment_intent_id") == (
        "PaymentProcessing",
        "pi_2",
    )


async def test_a_change_from_a_status_the_row_is_not_in_is_refused(
    db: OrderDbActivities, engine: AsyncEngine
) -> None:
    env = ActivityEnvironment()
    created = await env.run(
        db.create_order_row,
        new_order(),
    )
    late = StatusChange(
        order_id=created.order_id,
        expected=[S.PaymentProcessing],
        new_status=S.Failed,
        at=NOW,
    )
    with pytest.raises(ApplicationError) as caught:
        await env.run(db.change_order_status, late)
    assert caught.value.type == Failure.STATUS_CONFLICT
    assert await row_of(engine, created.order_id, "status") == ("Pending",)


CHAIN, ENDED_CHAIN = "run-2", "run-1"


def began(second: int) -> datetime:
    """When a workflow task began, `second` seconds into the order's life."""
    return NOW + timedelta(seconds=second)


def stamped(
    order_id: uuid.UUID,
    number: int,
    expected: S,
    new: S,
    *,
    task: int,
    chain: str = CHAIN,
    **fields: Any,
) -> StatusChange:
    return StatusChange(
        order_id=order_id,
        expected=[expected],
        new_status=new,
        at=NOW,
        stamp=WriteStamp(chain=chain, task_began=began(task), number=number),
        **fields,
    )


async def paid_order(env: ActivityEnvironment, db: OrderDbActivities) -> uuid.UUID:
    """An order whose workflow wrote 1 (PaymentProcessing, task at 5 s) and 2 (Confirmed,
    task at 9 s)."""
    order_id = (await env.run(db.create_order_row, new_order())).order_id
    pay = stamped(order_id, 1, S.Pending, S.PaymentProcessing, task=5)
    await env.run(db.change_order_status, pay)
    await env.run(db.change_order_status, stamped(order_id, 2, pay.new_status, S.Confirmed, task=9))
    return order_id


async def refused(env: ActivityEnvironment, db: OrderDbActivities, change: StatusChange) -> None:
    with pytest.raises(ApplicationError) as caught:
        await env.run(db.change_order_status, change)
    assert caught.value.type == Failure.STATUS_CONFLICT


async def test_writes_a_lost_workflow_task_made_are_replaced_by_the_workflows_own(
    db: OrderDbActivities, engine: AsyncEngine
) -> None:
    """The task begun at 14 s wrote 3 (Stripe's amounts) and 4 (Processing), and was lost.
    Run again (begun at 17 s), its write 3 meets a row already Processing: made by an
    earlier task of the chain under a number at or above 3, so the workflow's write
    replaces it (docs/architecture.md), and 4 goes on from there."""
    env = ActivityEnvironment()
    order_id = await paid_order(env, db)
    amounts = {"stripe_payment_status": "succeeded"}
    await env.run(db.change_order_status, stamped(order_id, 3, S.Confirmed, S.Confirmed, task=14))
    await env.run(db.change_order_status, stamped(order_id, 4, S.Confirmed, S.Processing, task=14))
    again = stamped(order_id, 3, S.Confirmed, S.Confirmed, task=17, **amounts)
    await env.run(db.change_order_status, again)
    assert await row_of(engine, order_id, "status", "workflow_write") == ("Confirmed", 3)
    await env.run(db.change_order_status, stamped(order_id, 4, S.Confirmed, S.Processing, task=17))
    assert await row_of(engine, order_id, "status", "workflow_task_began", "workflow_write") == (
        "Processing",
        began(17),
        4,
    )


async def test_a_change_made_outside_the_workflow_is_refused(
    db: OrderDbActivities, engine: AsyncEngine
) -> None:
    """The row's stamp is the workflow's last write: a status the workflow did not write
    there is someone else's, and the next write is held to the status it expects."""
    env = ActivityEnvironment()
    order_id = await paid_order(env, db)
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE orders SET status = 'Cancelled' WHERE order_id = :id"), {"id": order_id}
        )
    await refused(env, db, stamped(order_id, 3, S.Confirmed, S.Processing, task=14))
    assert await row_of(engine, order_id, "status", "workflow_write") == ("Cancelled", 2)


async def test_an_ended_runs_late_write_does_not_undo_the_resumed_runs(
    db: OrderDbActivities, engine: AsyncEngine
) -> None:
    """The ended run's write 3 (Processing) was in flight when ops terminated it. The
    resumed run (a chain of its own) numbers on from the row (2) and cancels: its own
    write 3. Then the ended run's write lands, later: another chain's, held to the status
    it expects, and refused."""
    env = ActivityEnvironment()
    order_id = (await env.run(db.create_order_row, new_order())).order_id
    first = stamped(order_id, 1, S.Pending, S.PaymentProcessing, task=5, chain=ENDED_CHAIN)
    await env.run(db.change_order_status, first)
    paid = stamped(order_id, 2, S.PaymentProcessing, S.Confirmed, task=9, chain=ENDED_CHAIN)
    await env.run(db.change_order_status, paid)
    cancel = stamped(order_id, 3, S.Confirmed, S.Cancelled, task=40, cancellation_reason="no")
    await env.run(db.change_order_status, cancel)
    late = stamped(order_id, 3, S.Confirmed, S.Processing, task=30, chain=ENDED_CHAIN)
    await refused(env, db, late)
    assert await row_of(engine, order_id, "status", "workflow_chain") == ("Cancelled", CHAIN)


async def test_a_stalled_attempt_of_a_task_run_again_since_never_moves_the_order_back(
    db: OrderDbActivities, engine: AsyncEngine
) -> None:
    """An attempt of the task (begun at 14 s) stalled in its write 3 (Processing); the task
    timed out and ran again (begun at 17 s, at the same history length, as later attempts
    do): write 3 landed, then 4 (Shipped). The stalled attempt commits now: its task began
    before the row's write's, so it is held to the status, and refused."""
    env = ActivityEnvironment()
    order_id = await paid_order(env, db)
    await env.run(db.change_order_status, stamped(order_id, 3, S.Confirmed, S.Processing, task=17))
    shipped = stamped(order_id, 4, S.Processing, S.Shipped, task=17, ship_all=True)
    await env.run(db.change_order_status, shipped)
    await refused(env, db, stamped(order_id, 3, S.Confirmed, S.Processing, task=14))
    assert await row_of(engine, order_id, "status", "workflow_write") == ("Shipped", 4)


async def test_a_lost_write_is_replaced_by_the_next_run_of_the_chain(
    db: OrderDbActivities, engine: AsyncEngine
) -> None:
    """A lost task wrote 3 (Processing); run again, it decided not to write and the run
    continued as new. The next run (the same chain, later tasks, the count carried) makes
    write 3: it replaces the lost one."""
    env = ActivityEnvironment()
    order_id = await paid_order(env, db)
    await env.run(db.change_order_status, stamped(order_id, 3, S.Confirmed, S.Processing, task=14))
    await env.run(db.change_order_status, stamped(order_id, 3, S.Confirmed, S.Cancelled, task=60))
    assert await row_of(engine, order_id, "status", "workflow_write") == ("Cancelled", 3)


async def test_a_row_put_right_by_hand_holds_when_its_chain_is_cleared(
    db: OrderDbActivities, engine: AsyncEngine
) -> None:
    """Write 3 committed but was reported failed (its retries spent), so the workflow's
    next write is numbered 3 again. Ops who put the row right by hand in between clear
    `workflow_chain` (docs/operations.md): the next write is then held to the status."""
    env = ActivityEnvironment()
    order_id = await paid_order(env, db)
    await env.run(db.change_order_status, stamped(order_id, 3, S.Confirmed, S.Processing, task=14))
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE orders SET status = 'Cancelled', workflow_chain = NULL WHERE order_id = :id"
            ),
            {"id": order_id},
        )
    await refused(env, db, stamped(order_id, 3, S.Confirmed, S.Confirmed, task=21))
    assert await row_of(engine, order_id, "status") == ("Cancelled",)


async def test_a_return_recorded_again_answers_when_it_was_first_recorded(
    db: OrderDbActivities, engine: AsyncEngine
) -> None:
    """A workflow task that recorded a return was lost; run again (later, so with another
    time), it records the same return: nothing more is written, and the answer is the
    first write's time, so both answers to the return say the same."""
    env = ActivityEnvironment()
    created = await env.run(db.create_order_row, new_order())
    record = ReturnRecord(key="rma-1", reason="too small", amount=Decimal("10.00"), at=NOW)
    first = RecordReturn(
        order_id=created.order_id,
        record=record,
        at=NOW,
        stripe_payment_status="partially_refunded",
        amount_refunded=Decimal("10.00"),
    )
    assert await env.run(db.record_return, first) == NOW
    later = NOW + timedelta(seconds=12)
    again = first.model_copy(
        update={"record": record.model_copy(update={"at": later}), "at": later}
    )
    assert await env.run(db.record_return, again) == NOW
    async with engine.connect() as conn:
        stored = (
            await conn.execute(
                text("SELECT count(*), min(created_date) FROM order_returns WHERE order_id = :id"),
                {"id": created.order_id},
            )
        ).one()
    assert tuple(stored) == (1, NOW)


async def test_data_postgresql_refuses_fails_at_once_without_retry_or_customer_data(
    db: OrderDbActivities, engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    req = new_order()
    address = req.request.shipping_address.model_copy(update={"full_name": "Ann\u0000Secretname"})
    req.request.shipping_address = address
    with pytest.raises(ApplicationError) as caught:
        await ActivityEnvironment().run(db.create_order_row, req)
    assert caught.value.type == Failure.INVALID_ORDER and caught.value.non_retryable
    assert "could not be stored" in caught.value.message
    assert "Secretname" not in caught.value.message
    assert "Secretname" not in caplog.text
    assert await rows_for(engine, req.order_id) == (0, 0)


async def test_a_total_no_payment_could_take_is_refused_by_the_activity_too(
    engine: AsyncEngine,
) -> None:
    # The catalogue changed after the API quoted: the activity checks again.
    tiny_limit = OrderDbActivities(engine, Pricing(Decimal("0.08"), Decimal("0"), "USD"))
    req = new_order()
    req.request.line_items[0].quantity = 10_000_000
    with pytest.raises(ApplicationError) as caught:
        await ActivityEnvironment().run(tiny_limit.create_order_row, req)
    assert caught.value.type == Failure.INVALID_ORDER and caught.value.non_retryable
    assert "more than one payment can take" in caught.value.details[0][0]
    assert await rows_for(engine, req.order_id) == (0, 0)


async def test_the_apis_priced_snapshot_is_saved_as_is(
    db: OrderDbActivities, engine: AsyncEngine
) -> None:
    """The API priced the order from one read of the catalogue: the activity saves those
    lines, totals and fingerprint without reading the products or quoting again (the price
    here is not the catalogue's, so a second quote would show)."""
    from vult.domain.contracts import LineSnapshot, PricedOrder

    req = new_order()
    line = req.request.line_items[0]
    priced = PricedOrder(
        lines=[
            LineSnapshot(
                product_id=line.product_id,
                product_name="As the API saw it",
                product_size="XL",
                product_image_url=None,
                unit_price=Decimal("10.00"),
                quantity=line.quantity,
            )
        ],
        sub_total=Decimal("20.00"),
        tax=Decimal("1.60"),
        shipping_cost=Decimal("4.99"),
        total=Decimal("26.59"),
        currency="USD",
    )
    req = req.model_copy(update={"priced": priced, "request_fingerprint": "f" * 64})
    created = await ActivityEnvironment().run(db.create_order_row, req)
    assert created.total == Decimal("26.59")
    assert await row_of(
        engine, req.order_id, "sub_total", "tax", "total", "request_fingerprint"
    ) == (
        Decimal("20.00"),
        Decimal("1.60"),
        Decimal("26.59"),
        "f" * 64,
    )
    async with engine.connect() as conn:
        saved = (
            await conn.execute(
                text(
                    "SELECT product_name, product_size, unit_price FROM line_items"
                    " WHERE order_id = :id"
                ),
                {"id": req.order_id},
            )
        ).one()
    assert tuple(saved) == ("As the API saw it", "XL", Decimal("10.00"))
