"""The faults the suite injects, at random moments while journeys are under way.

Every kill is SIGKILL of the program's whole process group (the supervisor starts it again,
as `tasks.py run` does), except PostgreSQL's "immediate stop" (SIGQUIT: `pg_ctl stop -m
immediate`) and the outages, which hold a program down for a while before it comes back.
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

from dev.chaos import postgres
from dev.chaos.cluster import Cluster
from dev.stack.procs import Child

# Every kind of fault, each injected at least once per run.
KINDS = (
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
# Kinds a longer run repeats (the outages stay once each: they take the longest).
REPEATABLE = (
    *KINDS[:5],
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
    """Each kind once, `extra` repeats of the quick ones, in a random order."""
    kinds = [*KINDS, *(rng.choice(REPEATABLE) for _ in range(extra))]
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


async def inject(
    cluster: Cluster,
    kind: str,
    rng: random.Random,
    outage_seconds: float,
    emulator_outage_seconds: float,
    resend: Callable[[], Awaitable[str]],
    others: dict[str, Callable[[], Awaitable[str]]] | None = None,
) -> tuple[str, float]:
    """Inject one fault; returns its target and how long the target was down. `others`:
    the faults the driver injects itself (through Temporal's or the emulator's API)."""
    began = time.monotonic()
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
    else:
        raise ValueError(kind)
    victim = child.process
    if kind in ("PostgreSQL outage", "Stripe emulator outage"):
        cluster.hold(child)
        _kill(victim)
        await asyncio.sleep(
            outage_seconds if child is cluster.database else emulator_outage_seconds
        )
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
) -> list[Injected]:
    """One fault after another, a random pause (within `gap`) before each."""
    done: list[Injected] = []
    for kind in kinds:
        await asyncio.sleep(rng.uniform(*gap))
        at, flying = time.monotonic() - started_at, in_flight()
        say(f"  {at:6.1f}s  {kind} ({flying} journeys in flight)")
        target, down = await inject(
            cluster, kind, rng, outage_seconds, emulator_outage_seconds, resend, others
        )
        done.append(Injected(at, kind, target, flying, down))
        say(f"  {time.monotonic() - started_at:6.1f}s  {target}: done, {down:.1f}s after it began")
    return done
