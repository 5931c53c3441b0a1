"""The replay gate: every history of every release in tests/replay/ replays on today's
workflow code, with the worker's own sandbox and both workflow types.

An order's workflow (AUTO_UPGRADE) moves to each new build while it is open, so a change
that emits other commands for a recorded history would fail that order's next workflow
task on every attempt. Such a change must be guarded by `workflow.patched`; this test is
what tells. Each release folder is recorded by `python3 tasks.py record-corpus` on that
release's code (docs/architecture.md, "Changing workflow code") and never rewritten.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from tests.support.variants import GuardedChange, UnguardedChange
from vult.temporal.sandbox import sandbox_runner
from workflows.event_delivery import EnableEndpointWorkflow, EventDeliveryWorkflow
from workflows.late_payment import LatePaymentWorkflow
from workflows.order import OrderWorkflow

CORPUS = Path(__file__).parent
RELEASES = sorted(p for p in CORPUS.iterdir() if p.is_dir() and not p.name.startswith("_"))


def _recorded_at(release: Path) -> str:
    """When it was recorded from the tree of its day ("" for an older commit recorded
    later, through a worktree, or a hand-saved one)."""
    manifest = json.loads((release / "manifest.json").read_text())
    return "" if manifest.get("from_worktree") else str(manifest.get("recorded_at", ""))


def _workflow_type(path: Path) -> str:
    first = json.loads(path.read_text())["events"][0]
    return str(first["workflowExecutionStartedEventAttributes"]["workflowType"]["name"])


# The workflow types whose runs move to each new build (AUTO_UPGRADE).
AUTO_UPGRADE = {"OrderWorkflow", "EventDeliveryWorkflow"}
# The newest release: the one recorded on today's workflow code (or its last change).
NEWEST = max(RELEASES, key=_recorded_at)
# OrderWorkflow (AUTO_UPGRADE) moves to every new build: each of its histories, of every
# release, must replay. LatePaymentWorkflow is PINNED: a run finishes on the build it
# started on and never replays on another, so only the newest release's runs are held to
# today's code (a change to it is recorded as a new release: docs/architecture.md).
HISTORIES = sorted(
    h
    for r in RELEASES
    for h in r.glob("*.json")
    if h.name != "manifest.json" and (r == NEWEST or _workflow_type(h) in AUTO_UPGRADE)
)
# Every path a journey can take, as the recorder names them: the newest recorded release
# must hold each one.
PATHS = {
    "after_close_events_together",
    "after_close_refund_recorded",
    "at_shipment_cancelled_before_shipment",
    "at_shipment_captured_outside_then_partly_shipped",
    "at_shipment_partly_shipped_then_returned",
    "at_shipment_shipment_repeated_after_its_write_failed",
    "authorization_lapsed_cancelled",
    "authorization_renewal_wants_customer_cancelled",
    "authorization_renewed_then_delivered",
    "cancel_recorded_mid_charge",
    "cancelled_confirmed_refunded",
    "cancelled_failed",
    "cancelled_payment_processing",
    "cancelled_pending",
    "capture_refused_then_resolved",
    "continued_as_new_first_run",
    "continued_as_new_second_run",
    "dashboard_full_refund_not_fulfilled",
    "dashboard_partial_refund_then_cancelled",
    "declined_then_paid",
    "delivered_dispute_open_past_return_window",
    "disputed_won_delivered",
    "failed_refund_retried_then_resolved",
    "late_payment_delivered_order",
    "late_payment_refunded_order",
    "paid",
    "paid_delivered",
    "parked_then_retried",
    "partly_shipped_then_returned",
    "payment_window_expired",
    "payment_window_waits_for_processing",
    "pending_cancel_finished_by_workflow",
    "reconciled_without_webhook",
    "resumed_paid_then_cancelled",
    "resumed_paid_then_delivered",
    "resumed_unpaid_then_expired",
    "return_refund_failed_then_retried",
    "superseded_success_refunded",
    "three_d_secure_confirmed",
    "event_delivered",
    "event_delivered_after_a_failed_try",
    "event_endpoint_gone",
    "endpoint_enabled",
}


def _history(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(path.stem, path.read_text())


async def _replay(path: Path, *workflows: type) -> Exception | None:
    replayer = Replayer(
        workflows=list(workflows)
        or [OrderWorkflow, LatePaymentWorkflow, EventDeliveryWorkflow, EnableEndpointWorkflow],
        data_converter=pydantic_data_converter,
        workflow_runner=sandbox_runner(),  # the worker's own
    )
    result = await replayer.replay_workflow(_history(path), raise_on_replay_failure=False)
    return result.replay_failure


@pytest.mark.parametrize("path", HISTORIES, ids=[f"{p.parent.name}/{p.stem}" for p in HISTORIES])
async def test_a_recorded_history_replays_on_todays_code(path: Path) -> None:
    failure = await _replay(path)
    assert failure is None, f"{path.parent.name}/{path.name}: {failure}"


def test_every_release_folder_says_what_it_holds() -> None:
    assert RELEASES
    for release in RELEASES:
        manifest = json.loads((release / "manifest.json").read_text())
        assert manifest["release"] == release.name
        held = {h.stem for h in release.glob("*.json")} - {"manifest"}
        assert held == set(manifest["paths"]), release.name


def test_the_newest_release_holds_every_path_and_both_workflow_types() -> None:
    """Recorded by tasks.py record-corpus from the tree of its day: the release a new
    path is added with, and each after it, holds every path."""
    manifest = json.loads((NEWEST / "manifest.json").read_text())
    assert "recorded_at" in manifest, NEWEST.name
    assert PATHS <= set(manifest["paths"]), sorted(PATHS - set(manifest["paths"]))
    types = {_workflow_type(h) for h in NEWEST.glob("*.json") if h.name != "manifest.json"}
    assert types == {
        "OrderWorkflow",
        "LatePaymentWorkflow",
        "EventDeliveryWorkflow",
        "EnableEndpointWorkflow",
    }


# ---- the gate can fail ----------------------------------------------------------------


def _delivers(history: Path) -> bool:
    """The history holds a `deliver` update (a long one may have continued as new before
    it: the corpus's server suggests that after 100 events)."""
    events = json.loads(history.read_text())["events"]
    return any(
        e.get("workflowExecutionUpdateAcceptedEventAttributes", {})
        .get("acceptedRequest", {})
        .get("input", {})
        .get("name")
        == "deliver"
        for e in events
    )


DELIVERED = [
    h for h in HISTORIES if h.stem in ("paid_delivered", "declined_then_paid") and _delivers(h)
]


@pytest.mark.parametrize("path", DELIVERED, ids=[f"{p.parent.name}/{p.stem}" for p in DELIVERED])
async def test_an_unpatched_command_change_fails_the_gate_and_a_patched_one_passes(
    path: Path,
) -> None:
    failure = await _replay(path, UnguardedChange)
    assert failure is not None and "nondeterminism" in str(failure).lower(), failure
    assert await _replay(path, GuardedChange) is None


def test_the_gate_has_delivered_histories_to_try() -> None:
    assert {h.parent for h in DELIVERED} == set(RELEASES)  # each release has one at least
