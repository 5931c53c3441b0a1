"""The faults the suite injects, at random moments while journeys are under way.

Every kill is SIGKILL of the program's whole process group (the supervisor starts it again,
as `tasks.py run` does), except PostgreSQL's "immediate stop" (SIGQUIT: `pg_ctl stop -m
immediate`) and the outages, which hold a program down for a while before it comes back.

The inbox's faults (where the order events' mail and webhooks go) run in a lane of their
own, at the same time as the system's (but not during its PostgreSQL outage, when no
delivery is tried): the SMTP server and the receiver down (the inbox
killed and kept down), the SMTP server answering 451 to every recipient, the receiver
answering 503, and the receiver answering after the workers' webhook timeout. Each lasts
`inbox_fault_seconds`, well within the deliveries' tries (dev/chaos/cluster.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from dev.chaos import postgres
from dev.chaos.cluster import WEBHOOK_TIMEOUT_SECONDS, Cluster
from dev.inbox.local_receiver import LOCAL_RECEIVER
from dev.stack.procs import Child

# Every kind of fault on the system, each injected at least once per run.
SYSTEM_KINDS = (
    "kill -9 a worker",
    "kill -9 an API process",
    "kill -9 the Temporal dev server",
    "kill -9 PostgreSQL",
    "PostgreSQL immediate stop",
    "PostgreSQL outage",
    "Stripe emulator outage",
    "Stripe refuses the service's key",
    "Temporal cancellation requests",
    "Temporal terminates order workflows",
    "Stripe redelivers old events",
)
# The inbox's, in their own lane, each at least once per run.
INBOX_KINDS = (
    "inbox outage (SMTP and receiver down)",
    "SMTP server answers 451",
    "webhook receiver answers 503",
    "webhook receiver answers too late",
)
KINDS = (*SYSTEM_KINDS, *INBOX_KINDS)
# The inbox's that it plays itself (POST /api/faults); the outage is a kill.
_PLAYED = frozenset(INBOX_KINDS) - {"inbox outage (SMTP and receiver down)"}
# A webhook answered this long after the workers' timeout: every try meanwhile fails.
LATE_BY_SECONDS = 2.0
# Kinds a longer run repeats (the outages stay once each: they take the longest).
REPEATABLE = (
    *SYSTEM_KINDS[:5],
    "Temporal cancellation requests",
    "Temporal terminates order workflows",
    "Stripe redelivers old events",
)


@dataclass
class Injected:
    at: float  # seconds into the run
    kind: str
    target: str
    in_flight: int  # journeys under way at that moment
    down_seconds: float  # how long it lasted: a program's, until it ran again


def plan(rng: random.Random, extra: int) -> list[str]:
    """Each system kind once, `extra` repeats of the quick ones, in a random order."""
    kinds = [*SYSTEM_KINDS, *(rng.choice(REPEATABLE) for _ in range(extra))]
    rng.shuffle(kinds)
    return kinds


def inbox_plan(rng: random.Random, extra: int) -> list[str]:
    """Each inbox kind once, `extra` repeats, in a random order."""
    kinds = [*INBOX_KINDS, *(rng.choice(INBOX_KINDS) for _ in range(extra))]
    rng.shuffle(kinds)
    return kinds


def _kill(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL to the program's whole process group (PostgreSQL: postmaster and backends)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


async def _back(child: Child, victim: subprocess.Popen[bytes], budget: float = 180.0) -> None:
    """Wait until the supervisor has replaced `victim` with a running process (bounded).
    `victim` is taken before the fault: the supervisor may restart the program at once."""
    deadline = time.monotonic() + budget
    while time.monotonic() < deadline:
        if child.process is not victim and child.process.poll() is None:
            return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"{child.name} was not started again within {budget:.0f}s")


async def _inbox_faults(cluster: Cluster, body: dict[str, Any]) -> None:
    """Set the inbox's faults (POST /api/faults), trying while it is (re)starting."""
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(timeout=10) as http:
        while True:
            try:
                answer = await http.post(f"{cluster.inbox_url}/api/faults", json=body)
                answer.raise_for_status()
                return
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)


async def _inbox_fault(cluster: Cluster, kind: str, seconds: float) -> None:
    """Play one of the inbox's faults for `seconds`, then none."""
    on: dict[str, Any]
    off: dict[str, Any]
    if kind == "SMTP server answers 451":
        on, off = {"smtp": "transient"}, {"smtp": "ok"}
    else:
        fault: dict[str, float] = {"delaySeconds": WEBHOOK_TIMEOUT_SECONDS + LATE_BY_SECONDS}
        if kind == "webhook receiver answers 503":
            fault = {"status": 503}
        on = {"webhook": {"endpoint": LOCAL_RECEIVER, "status": 204, **fault}}
        off = {"webhook": {"endpoint": LOCAL_RECEIVER, "status": 204, "delaySeconds": 0}}
    await _inbox_faults(cluster, on)
    try:
        await asyncio.sleep(seconds)
    finally:
        await _inbox_faults(cluster, off)


async def inject(
    cluster: Cluster,
    kind: str,
    rng: random.Random,
    outage_seconds: float,
    emulator_outage_seconds: float,
    resend: Callable[[], Awaitable[str]],
    others: dict[str, Callable[[], Awaitable[str]]] | None = None,
    inbox_fault_seconds: float = 12.0,
) -> tuple[str, float]:
    """Inject one fault; returns its target and how long the target was down. `others`:
    the faults the driver injects itself (through Temporal's or the emulator's API)."""
    began = time.monotonic()
    if kind in _PLAYED:
        await _inbox_fault(cluster, kind, inbox_fault_seconds)
        return "inbox", time.monotonic() - began
    if kind == "Stripe redelivers old events":
        return await resend(), time.monotonic() - began
    if others and kind in others:
        return await others[kind](), time.monotonic() - began
    if kind in ("kill -9 a worker", "kill -9 an API process"):
        child = rng.choice(cluster.named("worker" if "worker" in kind else "api"))
    elif kind == "kill -9 the Temporal dev server":
        child = cluster.program("temporal")
    elif kind in ("kill -9 PostgreSQL", "PostgreSQL immediate stop", "PostgreSQL outage"):
        child = cluster.database
    elif kind == "Stripe emulator outage":
        # Webhooks it was about to send are lost with it; reconciliation must find them.
        child = cluster.program("localstripe")
    elif kind == "inbox outage (SMTP and receiver down)":
        # A mail or webhook mid-way is cut; one it kept may go unanswered (a repeat).
        child = cluster.program("inbox")
    else:
        raise ValueError(kind)
    victim = child.process
    held = {
        "PostgreSQL outage": outage_seconds,
        "Stripe emulator outage": emulator_outage_seconds,
        "inbox outage (SMTP and receiver down)": inbox_fault_seconds,
    }
    if kind in held:
        cluster.hold(child)
        _kill(victim)
        await asyncio.sleep(held[kind])
        await asyncio.to_thread(cluster.release, child)
    else:
        if kind == "PostgreSQL immediate stop":
            postgres.stop_immediately(victim)
        else:
            _kill(victim)
        await _back(child, victim)
    return child.name, time.monotonic() - began


async def run_faults(
    cluster: Cluster,
    kinds: list[str],
    rng: random.Random,
    in_flight: Callable[[], int],
    started_at: float,
    *,
    gap: tuple[float, float],
    outage_seconds: float,
    emulator_outage_seconds: float,
    resend: Callable[[], Awaitable[str]],
    say: Callable[[str], None],
    others: dict[str, Callable[[], Awaitable[str]]] | None = None,
    inbox_fault_seconds: float = 12.0,
    not_while: Callable[[], bool] | None = None,
) -> list[Injected]:
    """One fault after another, a random pause (within `gap`) before each, and then
    (`not_while`) until that says no more. `rng` decides the pauses: each lane has its own,
    so that a replay keeps both lanes' plans."""
    done: list[Injected] = []
    for kind in kinds:
        await asyncio.sleep(rng.uniform(*gap))
        for _ in range(int(2 * (outage_seconds + 60))):  # bounded: outages end
            if not_while is None or not not_while():
                break
            await asyncio.sleep(0.5)
        at, flying = time.monotonic() - started_at, in_flight()
        say(f"  {at:6.1f}s  {kind} ({flying} journeys in flight)")
        target, down = await inject(
            cluster,
            kind,
            rng,
            outage_seconds,
            emulator_outage_seconds,
            resend,
            others,
            inbox_fault_seconds,
        )
        done.append(Injected(at, kind, target, flying, down))
        say(f"  {time.monotonic() - started_at:6.1f}s  {target}: done, {down:.1f}s after it began")
    return done
