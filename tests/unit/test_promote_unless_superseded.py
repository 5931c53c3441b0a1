"""WORKER_PROMOTE=unless-superseded: a restarted worker makes its build current only when no
build is, or the current one is older (by the server's create time) and never replaced it;
the local stack's supervisor restarts its worker with it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest

from dev.stack.procs import Child, Children
from dev.stack.stack import start_worker
from vult.temporal.deployments import Build, why_not_current

T0 = datetime(2026, 1, 1, tzinfo=UTC)
# Build ids that sort the wrong way round as text: only the create times may decide.
OLD = Build("9.9.9+gfffffff", T0)
NEW = Build("10.0.0+g0000000", T0 + timedelta(minutes=5))


def test_no_current_build_or_this_one_current_lets_it_be_current() -> None:
    assert why_not_current(OLD, None) is None
    assert why_not_current(OLD, OLD) is None


def test_a_build_newer_than_the_current_one_becomes_current() -> None:
    assert why_not_current(NEW, OLD) is None


def test_an_older_build_never_replaces_a_newer_current_one() -> None:
    reason = why_not_current(OLD, NEW)
    assert reason is not None and "newer" in reason


def test_a_build_created_at_the_same_time_does_not_replace_the_current_one() -> None:
    assert why_not_current(Build("b", T0), Build("a", T0)) is not None


def test_a_restart_does_not_undo_a_rollback_or_cut_a_ramp_short() -> None:
    rolled_back_from = Build(NEW.build_id, NEW.created, has_been_current=True)
    assert "replaced" in (why_not_current(rolled_back_from, OLD) or "")
    ramped = Build(NEW.build_id, NEW.created, ramping=True)
    assert "ramped" in (why_not_current(ramped, OLD) or "")


def test_without_create_times_the_current_build_stays() -> None:
    assert why_not_current(Build("b", None), OLD) is not None
    assert why_not_current(NEW, Build(OLD.build_id, None)) is not None


class _Recording(Children):
    """Starts nothing: records the environment each start was given."""

    def __init__(self) -> None:
        super().__init__()
        self.envs: list[dict[str, str]] = []

    def start(self, name: str, cmd: list[str], **kw: Any) -> Child:
        self.envs.append(dict(kw["env"]))
        child = Child(name, cast(Any, None), kw.get("log"), cmd, kw["env"], kw.get("cwd"))
        self.started.append(child)
        return child


@pytest.mark.parametrize(
    ("configured", "first", "restart"),
    [
        (None, "always", "unless-superseded"),
        ("always", "always", "unless-superseded"),
        ("first", "first", "first"),
        ("never", "never", "never"),
    ],
)
def test_the_stack_starts_its_worker_as_configured_and_restarts_it_safely(
    monkeypatch: pytest.MonkeyPatch, configured: str | None, first: str, restart: str
) -> None:
    if configured is None:
        monkeypatch.delenv("WORKER_PROMOTE", raising=False)
    else:
        monkeypatch.setenv("WORKER_PROMOTE", configured)
    children = _Recording()
    worker = start_worker(children, "worker", {"X": "1"}, Path("worker.log"))
    assert children.envs == [{"WORKER_PROMOTE": first, "X": "1"}]
    # The supervisor restarts a child with the env it keeps (Children.restart).
    assert worker.env == {"WORKER_PROMOTE": restart, "X": "1"}
