"""The local stack survives its own crashes: a worker, API or Stripe emulator killed with
SIGKILL is started again by the supervisor (the emulator with our webhook registered
again), and orders keep going through. A worker started by hand joins the running stack."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import pytest
import stripe

from dev.stack.database import drop_database, ensure_database, with_database
from dev.stack.procs import Child, free_port
from dev.stack.stack import ROOT, Stack, StackConfig, start_stack
from dev.stack.supervisor import Supervisor
from tests.support.integration import GOOD_CARD, order_body, pay_with_card
from vult.db.urls import libpq_url


class Running(NamedTuple):
    stack: Stack
    said: list[str]  # what the supervisor said


@pytest.fixture(scope="module")
def stack_database(database_url: str) -> Iterator[str]:
    """A database of the stack's own: its Temporal server is new, so every open order in a
    shared one would look as if its workflow were gone, and the stack's order sweep would
    resume them all."""
    url = with_database(database_url, f"vult_stack_{uuid.uuid4().hex[:12]}")
    ensure_database(url)
    yield url
    drop_database(url)


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory, stack_database: str) -> Iterator[Running]:
    database_url = stack_database
    data = tmp_path_factory.mktemp("stack")
    started = start_stack(
        StackConfig(
            data_dir=data,
            api_port=free_port(),
            temporal_port=free_port(),
            ui_port=None,
            stripe_port=free_port(),
            metrics_port=free_port(),
            temporal_in_memory=True,
            # A database of its own; the stack's programs get it in their environment.
            extra_env={"DATABASE_URL": libpq_url(database_url)},
        ),
        environ={"DATABASE_URL": libpq_url(database_url), "PATH": os.environ["PATH"]},
        say=lambda _: None,
    )
    said: list[str] = []
    supervisor = Supervisor(started.children, started.supervised, say=said.append)
    stop = threading.Event()

    def supervise() -> None:
        while not stop.wait(0.2):
            supervisor.check()

    thread = threading.Thread(target=supervise, daemon=True)
    thread.start()
    yield Running(started, said)
    stop.set()
    thread.join(timeout=5)
    started.stop()


def child(stack: Stack, name: str) -> Child:
    return next(c for c in stack.children.started if c.name == name)


async def restarted(stack: Stack, name: str, old_pid: int, timeout: float = 60) -> None:
    for _ in range(int(timeout / 0.2)):
        current = child(stack, name).process
        if current.pid != old_pid and current.poll() is None:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{name} was not started again")


async def a_paid_order(stack: Stack) -> dict[str, Any]:
    """Place, pay and wait for Confirmed, through the stack's API and emulator."""
    client = stripe.StripeClient(
        stack.env["STRIPE_SECRET_KEY"], base_addresses={"api": stack.stripe_api_base or ""}
    )
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http:
        for _ in range(150):  # the API may still be coming back
            try:
                created = await http.post("/api/orders", json=order_body())
                break
            except httpx.TransportError:
                await asyncio.sleep(0.2)
        assert created.status_code == 201, created.text
        order = created.json()
        intent = await http.post(f"/api/orders/{order['orderId']}/payment")
        assert intent.status_code == 200, intent.text
        assert (
            await pay_with_card(client, intent.json()["paymentIntentId"], GOOD_CARD) == "succeeded"
        )
        # The webhook, not reconciliation (15 minutes away): the emulator must know our URL.
        outcome = await http.get(
            f"/api/orders/{order['orderId']}/status-change?from=PaymentProcessing&timeout=20"
        )
        return dict(outcome.json())


@pytest.mark.parametrize("name", ["worker", "api", "localstripe"])
async def test_a_program_killed_with_sigkill_is_started_again_and_orders_go_through(
    running: Running, name: str
) -> None:
    stack = running.stack
    victim = child(stack, name).process
    os.killpg(victim.pid, signal.SIGKILL)
    await restarted(stack, name, victim.pid)
    order = await a_paid_order(stack)
    assert order["status"] == "Confirmed"
    assert any(line.startswith(f"{name} exited") for line in running.said), running.said


async def test_a_worker_started_by_hand_joins_the_running_stack(running: Running) -> None:
    stack = running.stack
    assert stack.env_file is not None and stack.env_file.exists()
    assert oct(stack.env_file.stat().st_mode & 0o777) == "0o600"  # it holds the payload key
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME")}
    env |= dict(line.split("=", 1) for line in stack.env_file.read_text().splitlines())
    env["WORKER_METRICS_ADDRESS"] = f"127.0.0.1:{free_port()}"
    second = subprocess.Popen(  # noqa: ASYNC220 - started once, read after the test
        [sys.executable, str(ROOT / "worker.py")],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        # With the stack's own worker gone, the second one alone runs the order.
        first = child(stack, "worker").process
        os.killpg(first.pid, signal.SIGSTOP)
        try:
            order = await a_paid_order(stack)
        finally:
            os.killpg(first.pid, signal.SIGCONT)
        assert order["status"] == "Confirmed"
        assert second.poll() is None
    finally:
        second.terminate()
        output = second.communicate(timeout=20)[0].decode(errors="replace")
    assert "Unknown payload encoding" not in output, output


def test_tasks_py_takes_the_stack_file_under_what_the_shell_sets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tasks

    stack_env = tmp_path / "stack.env"
    stack_env.write_text(
        "TEMPORAL_ADDRESS=127.0.0.1:7999\nWORKER_METRICS_ADDRESS=127.0.0.1:9464\nTAX_RATE=0.08\n"
    )
    monkeypatch.setattr(tasks, "STACK_ENV", stack_env)
    monkeypatch.setattr(tasks, "ROOT", tmp_path)
    for name in ("TEMPORAL_ADDRESS", "WORKER_METRICS_ADDRESS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TAX_RATE", "0.10")  # set in the shell: it wins

    assert tasks.join_running_stack()
    assert os.environ["TEMPORAL_ADDRESS"] == "127.0.0.1:7999"
    assert os.environ["TAX_RATE"] == "0.10"
    # The stack's worker holds that metrics port: a second worker takes another.
    assert os.environ["WORKER_METRICS_ADDRESS"] != "127.0.0.1:9464"
