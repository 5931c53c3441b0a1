"""The status table (vult/domain/status.py) and the code agree: what each status accepts
is what the workflow's validators accept, what its timers are, and where its handlers move
an order. A new status or command that is in one and not the other fails here."""

from __future__ import annotations

import ast
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from unittest import mock

import pytest
from temporalio.exceptions import ApplicationError

from vult.domain.contracts import (
    Cancelling,
    CancelOrder,
    Fulfilment,
    Hold,
    OrderState,
    OrderTiming,
    OrderWorkflowInput,
    Payments,
    ReturnRequest,
    ShipOrder,
)
from vult.domain.status import (
    ALLOWED_TRANSITIONS,
    REFUSALS,
    STATUS_TABLE,
    WHILE_PLACING,
    Clock,
    Command,
    OrderStatus,
    accepts,
)
from workflows.decisions import Timer, deadlines
from workflows.order import OrderWorkflow

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
S = OrderStatus
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)

# Each command's validator on the workflow, called as Temporal would before the update runs.
VALIDATORS: dict[Command, Callable[[OrderWorkflow], None]] = {
    Command.PAY: lambda w: w._validate_request_payment(),
    Command.CANCEL: lambda w: w._validate_cancel(CancelOrder()),
    Command.START_PROCESSING: lambda w: w._validate_start_processing(),
    Command.SHIP: lambda w: w._validate_ship(ShipOrder(carrier="UPS", tracking_number="1Z")),
    Command.DELIVER: lambda w: w._validate_deliver(),
    Command.TAKE_RETURN: lambda w: w._validate_take_return(
        ReturnRequest(key="k", reason="damaged", amount=Decimal("1.00"))
    ),
}
# The timers a status-driven clock sets.
TIMERS = {
    Clock.PAYMENT_WINDOW: {Timer.PAYMENT_WINDOW},
    Clock.RECONCILE: {Timer.RECONCILE},
    Clock.AUTHORIZATION: {Timer.AUTHORIZATION_REMINDER, Timer.AUTHORIZATION_EXPIRED},
    Clock.CANCELLED_GRACE: {Timer.GRACE_OVER},
    Clock.RETURN_WINDOW: {Timer.RETURN_WINDOW_OVER},
}


def _workflow(status: OrderStatus | None) -> OrderWorkflow:
    """The workflow object whose validators are checked, made outside a worker: its
    constructor's patch question (`workflow.patched`) answered as a new run's would be,
    and its clock read as now."""
    state = OrderState(status=status)
    with (
        mock.patch("temporalio.workflow.patched", return_value=True),
        mock.patch("temporalio.workflow.now", return_value=datetime.now(UTC)),
    ):
        return OrderWorkflow(OrderWorkflowInput(order_id=uuid.uuid4(), state=state))


def test_every_status_has_a_row_and_every_command_a_validator_and_a_refusal() -> None:
    assert set(STATUS_TABLE) == set(OrderStatus)
    assert set(VALIDATORS) == set(Command) == set(REFUSALS)
    assert TIMERS.keys() == set(Clock)


@pytest.mark.parametrize("command", list(Command))
@pytest.mark.parametrize("status", [None, *OrderStatus])
def test_a_validator_accepts_a_command_exactly_where_the_table_does(
    status: OrderStatus | None, command: Command
) -> None:
    workflow = _workflow(status)
    if accepts(status, command):
        VALIDATORS[command](workflow)
    else:
        with pytest.raises(ApplicationError) as refused:
            VALIDATORS[command](workflow)
        assert refused.value.message == REFUSALS[command].format(status=status)
    assert accepts(None, command) == (command in WHILE_PLACING)


@pytest.mark.parametrize("status", list(OrderStatus))
def test_a_status_starts_exactly_the_clocks_of_its_row(status: OrderStatus) -> None:
    """Every field a clock reads is set, so each clock the status allows is due: the
    status-driven timers `deadlines` returns are exactly the row's."""
    state = OrderState(
        status=status,
        created_at=NOW,
        payments=Payments(next_reconcile_at=NOW),
        cancelling=Cancelling(at=NOW),
        fulfilment=Fulfilment(delivered_at=NOW),
        hold=Hold(authorized_at=NOW),
    )
    found = {timer for _, timer in deadlines(state, OrderTiming())}
    status_driven = set().union(*TIMERS.values())
    wanted = set().union(*(TIMERS[clock] for clock in STATUS_TABLE[status].clocks))
    assert found & status_driven == wanted


def _changes_in_the_workflows() -> list[tuple[str, str | None, str]]:
    """Every `row.change(ctx, FROM, TO, ...)` in workflows/: (where, FROM if a literal
    status, TO)."""
    found = []
    for path in sorted((ROOT / "workflows").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "change"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "row"
            ):
                continue
            current, new = node.args[1], node.args[2]
            assert isinstance(new, ast.Attribute), f"{path.name}:{node.lineno}: a literal status"
            before = current.attr if isinstance(current, ast.Attribute) else None
            found.append((f"{path.name}:{node.lineno}", before, new.attr))
    return found


def test_every_transition_the_handlers_make_is_in_the_table_and_each_row_is_used() -> None:
    changes = _changes_in_the_workflows()
    assert changes
    targets = {t for _, t in ALLOWED_TRANSITIONS}
    for where, before, new in changes:
        if before is not None:
            assert (S(before), S(new)) in ALLOWED_TRANSITIONS, where
        assert S(new) in targets, where
    # Each status the table moves orders into is one some handler moves them into.
    assert {S(new) for _, _, new in changes} == targets


def test_the_checkout_page_offers_cancel_where_the_table_allows_it() -> None:
    script = (ROOT / "api" / "shop" / "shop.js").read_text()
    listed = ast.literal_eval(script.split("const CANCELLABLE = ", 1)[1].split(";", 1)[0])
    assert {S(s) for s in listed} == {
        s for s in OrderStatus if (s, S.Cancelled) in ALLOWED_TRANSITIONS
    }
