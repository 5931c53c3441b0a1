"""`python3 tasks.py chaos`: hundreds of orders down every path while programs are killed,
then an audit of every order against Stripe's records, and of every event the orders told
against what the inbox got.

Starts a stack of its own (two workers, two API processes, the Temporal dev server, the
Stripe emulator, the inbox taking the order events' mail and webhooks, PostgreSQL; short
reconciliation timers and delivery tries), drives journeys (pay; pay and deliver;
double-click on pay; decline then retry; cancel before, after and while paying; cancel
racing the card's confirmation) retrying as a frontend does, and meanwhile injects at random
moments: kill -9 of a worker, an API process, the Temporal dev server and PostgreSQL,
PostgreSQL's immediate stop, a PostgreSQL outage of over a minute, and a Stripe emulator
outage (its webhooks are lost); and in a lane of their own, the inbox down, its SMTP server
answering 451, its webhook receiver answering 503 or too late. Then everything comes back,
reconciliation settles what it must, the deliveries finish, and the audit runs. Exits 1 on
any violation; the seed it prints replays the same plan (journey paths, fault order and
moments; timings between processes still vary).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sys
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import httpx
import psycopg
import stripe
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.service import RPCError

from dev.chaos import faults, redelivery
from dev.chaos.audit import (
    Invariant,
    Records,
    audit,
    bad_endings,
    disagreeing,
    read_orders,
    read_stripe,
    read_workflows,
    redeliveries_acknowledged,
)
from dev.chaos.cluster import Cluster, start_cluster
from dev.chaos.event_audit import figures, read_told, wait_for_deliveries
from dev.chaos.shoppers import Journey, Shop, journey
from dev.stack.stack import ROOT, client_settings
from vult.db.engine import make_engine
from vult.db.urls import libpq_url
from vult.process.event_loop import run
from vult.process.settings import Settings
from vult.temporal.client import connect
from vult.temporal.orphans import orders_without_workflow
from vult.temporal.search_attributes import NEEDS_ATTENTION

SETTLE_BUDGET = 240.0
# Then until no delivery is pending or failing: past a try lost with a killed worker (its
# activity's 3-minute timeout) and a start lost with one (the sweep's 2 minutes).
DELIVERIES_BUDGET = 300.0
# The customers' browsers (Stripe.js) and the Dashboard use a key of their own: only the
# service's is refused by the "Stripe refuses the service's key" fault.
SHOPPERS_KEY = "sk_test_chaos_shoppers_and_dashboard"
TERMINATED_AT_ONCE = 6
KEY_REFUSED_SECONDS = 20.0  # after the last fault, for reconciliation and parked orders
# After the last journey, before the late redelivery: past the cancelled orders' grace and
# the emulator's idempotency keys (dev/chaos/cluster.py).
LATE_AFTER = 35.0


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python3 tasks.py chaos",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--seed", type=int, help="replay a run (default: a new random seed)")
    p.add_argument("-n", "--orders", type=int, default=300, help="journeys at least (300)")
    p.add_argument("-c", "--concurrency", type=int, default=24, help="journeys at once (24)")
    p.add_argument("--extra-faults", type=int, default=8, help="kills beyond one of each kind (8)")
    p.add_argument("--outage-seconds", type=float, default=70.0, help="the PostgreSQL outage (70)")
    p.add_argument(
        "--emulator-outage-seconds", type=float, default=15.0, help="the emulator's outage (15)"
    )
    p.add_argument(
        "--inbox-fault-seconds",
        type=float,
        default=12.0,
        help="each of the inbox's faults: down, 451, 503, answering too late (12)",
    )
    p.add_argument(
        "--short",
        action="store_true",
        help="the variant the test suite runs: 64 journeys, 12 at once, one fault of each kind",
    )
    p.add_argument("--data-dir", type=Path, default=ROOT / ".data" / "chaos")
    args = p.parse_args(argv)
    if args.short:
        args.orders, args.concurrency, args.extra_faults = 64, 12, 0
    if args.seed is None:
        args.seed = int.from_bytes(os.urandom(4), "big")
    return args


def say(line: str) -> None:
    print(line, flush=True)


async def drive(
    args: argparse.Namespace,
    cluster: Cluster,
    rng: random.Random,
    answers: Counter[str],
    terminated: set[tuple[str, str]],
) -> tuple[list[Journey], list[faults.Injected], float]:
    """Journeys, `concurrency` at a time, until `orders` have run and every fault is in;
    then every event delivered again, late. `answers` counts how the APIs answered the
    events delivered again, by status; `terminated` gets the runs the fault terminated."""
    env = cluster.stack.env
    base = cluster.stack.stripe_api_base or ""
    limits = httpx.Limits(max_connections=args.concurrency * 4)
    async with httpx.AsyncClient(timeout=30, limits=limits) as http:
        shop = Shop(
            apis=cluster.api_urls,
            stripe_base=base,
            stripe_key=SHOPPERS_KEY,
            ops_token=env["OPS_API_TOKEN"],
            rng=rng,
            http=http,
            stripe=stripe.StripeClient(
                SHOPPERS_KEY, base_addresses={"api": base}, max_network_retries=0
            ),
        )
        temporal = await connect(
            Settings(
                temporal_address=env["TEMPORAL_ADDRESS"],
                payload_encryption_keys=env["PAYLOAD_ENCRYPTION_KEYS"],
            )
        )

        async def cancellation_requests() -> str:
            """The Web UI's "Request Cancellation" on every running order workflow: some
            hold the lock, wait for it or for their handlers right then."""
            asked = 0
            query = 'WorkflowType = "OrderWorkflow" AND ExecutionStatus = "Running"'
            with contextlib.suppress(RPCError):
                async for found in temporal.list_workflows(query, limit=60):
                    with contextlib.suppress(RPCError):
                        await temporal.get_workflow_handle(found.id).cancel()
                        asked += 1
            return f"{asked} order workflows"

        async def terminations() -> str:
            """Terminate (the Web UI's "More Actions", the CLI) a few running order
            workflows at random: paid, unpaid, mid-cancellation, whatever they are doing.
            No workflow can refuse it; the sweep (or the next command) resumes each."""
            query = 'WorkflowType = "OrderWorkflow" AND ExecutionStatus = "Running"'
            with contextlib.suppress(RPCError):
                running = [w async for w in temporal.list_workflows(query, limit=200)]
                for found in rng.sample(running, min(len(running), TERMINATED_AT_ONCE)):
                    with contextlib.suppress(RPCError):
                        await temporal.get_workflow_handle(found.id, run_id=found.run_id).terminate(
                            reason="chaos: terminated at random"
                        )
                        terminated.add((found.id, found.run_id))
            return f"{len(terminated)} order workflows so far"

        async def refuse_key() -> str:
            """The service's Stripe key refused (401) for a while: rotated, then put right."""
            try:
                answer = await http.post(
                    f"{base}/_vult/refuse_key",
                    json={"key": env["STRIPE_SECRET_KEY"], "seconds": KEY_REFUSED_SECONDS},
                    headers={"Authorization": f"Bearer {SHOPPERS_KEY}"},
                )
            except httpx.TransportError:
                return "none (the emulator is down)"
            answer.raise_for_status()
            await asyncio.sleep(KEY_REFUSED_SECONDS)
            return f"the service's key, for {KEY_REFUSED_SECONDS:.0f}s"

        run_id = f"{args.seed:x}"
        secret = env["STRIPE_WEBHOOK_SECRET"]

        async def resend() -> str:
            """Some of the emulator's events so far, delivered again in a shuffled order."""
            try:
                events = await asyncio.to_thread(redelivery.stripe_events, shop.stripe)
            except stripe.APIConnectionError:
                return "none (the emulator is down)"
            chosen = rng.sample(events, min(len(events), 40))
            answers.update(await redelivery.redeliver(http, shop.apis, secret, chosen, rng))
            return f"{len(chosen)} events"

        journeys: list[Journey] = []
        flying = 0
        started = time.monotonic()
        # Journeys keep coming while faults remain, so that each fault finds orders in
        # flight; the faults end (each is bounded in time), and this bounds the count too.
        cap = args.orders * 20
        system = faults.run_faults(
            cluster,
            faults.plan(rng, args.extra_faults),
            rng,
            lambda: flying,
            started,
            gap=(3.0, 8.0) if args.short else (4.0, 15.0),
            outage_seconds=args.outage_seconds,
            emulator_outage_seconds=args.emulator_outage_seconds,
            resend=resend,
            say=say,
            others={
                "Temporal cancellation requests": cancellation_requests,
                "Temporal terminates order workflows": terminations,
                "Stripe refuses the service's key": refuse_key,
            },
        )
        # The inbox's lane, at the same time: spread over the system lane's first minutes
        # (which the PostgreSQL outage alone makes longer than this lane), so the run takes
        # no longer; never during the PostgreSQL outage, when no order tells anything and
        # the inbox's faults would meet no delivery. Its own generator: its plan replays
        # whatever the journeys draw.
        inbox_rng = random.Random(f"inbox-{args.seed}")
        inbox = faults.run_faults(
            cluster,
            faults.inbox_plan(inbox_rng, args.extra_faults // 2),
            inbox_rng,
            lambda: flying,
            started,
            gap=(4.0, 15.0) if args.short else (8.0, 30.0),
            outage_seconds=args.outage_seconds,
            emulator_outage_seconds=args.emulator_outage_seconds,
            resend=resend,
            say=say,
            inbox_fault_seconds=args.inbox_fault_seconds,
            not_while=lambda: cluster.is_held(cluster.database),
        )

        async def both_lanes() -> list[faults.Injected]:
            lanes = await asyncio.gather(system, inbox)
            return sorted((f for lane in lanes for f in lane), key=lambda f: f.at)

        fault_task = asyncio.create_task(both_lanes())
        numbers = iter(range(cap))

        async def shopper() -> None:
            nonlocal flying
            for number in numbers:
                if number >= args.orders and fault_task.done():
                    return
                flying += 1
                try:
                    journeys.append(await journey(shop, number, run_id))
                finally:
                    flying -= 1

        async def progress() -> None:
            while True:
                await asyncio.sleep(15)
                ended = len(journeys)
                gave_up = sum(1 for j in journeys if j.gave_up)
                say(
                    f"  {time.monotonic() - started:6.1f}s  journeys: {ended} ended"
                    f" ({gave_up} gave up), {flying} in flight"
                )

        reporter = asyncio.create_task(progress())
        try:
            await asyncio.gather(*(shopper() for _ in range(args.concurrency)))
            injected = await fault_task
        finally:
            reporter.cancel()
            fault_task.cancel()
        seconds = time.monotonic() - started
        # Late: every payment event once more, after cancelled orders' workflows closed.
        await asyncio.sleep(LATE_AFTER)
        events = await asyncio.to_thread(redelivery.stripe_events, shop.stripe)
        late = await redelivery.redeliver(http, shop.apis, secret, events, rng)
        answers.update(late)
        say(f"Late redelivery of all {len(events)} events: {dict(late)}")
        return journeys, injected, seconds


async def settle(cluster: Cluster, settings: Settings, client: Client) -> float:
    """Wait until every program runs, nothing is PaymentProcessing, nothing is parked,
    every order that can still change has a running workflow (the sweep resumed those a
    fault terminated), and every running workflow says what its row says."""
    began = time.monotonic()
    deadline = began + SETTLE_BUDGET
    engine = make_engine(settings.database_url, pool_size=2)
    try:
        while time.monotonic() < deadline:
            if await _settled(cluster, settings, client, engine):
                break
            await asyncio.sleep(2)
    finally:
        await engine.dispose()
    return time.monotonic() - began


async def _settled(
    cluster: Cluster, settings: Settings, client: Client, engine: AsyncEngine
) -> bool:
    if cluster.all_running():
        try:
            with psycopg.connect(libpq_url(settings.database_url), connect_timeout=5) as conn:
                row = conn.execute(
                    "SELECT count(*) FROM orders WHERE status = 'PaymentProcessing'"
                ).fetchone()
            parked = await client.count_workflows(f"{NEEDS_ATTENTION.name} = true")
            late = await client.count_workflows(
                'WorkflowType = "LatePaymentWorkflow" AND ExecutionStatus = "Running"'
            )
            if row is not None and row[0] == 0 and parked.count == 0 and late.count == 0:
                if await orders_without_workflow(engine, client):
                    return False
                # A task lost with a killed worker runs again only after its timeout: its
                # workflow says what the row says once it has.
                orders = await asyncio.to_thread(read_orders, settings.database_url)
                return not disagreeing(orders, await read_workflows(client, set(orders)))
        except (psycopg.OperationalError, RPCError, DBAPIError):
            pass
    return False


async def gather_records(
    settings: Settings,
    client: Client,
    journeys: list[Journey],
    terminated: set[tuple[str, str]],
    inbox_url: str,
) -> Records:
    orders = read_orders(settings.database_url)
    ids = set(orders) | {i for j in journeys for i in j.order_ids}
    stripe_client = stripe.StripeClient(
        settings.stripe_secret_key.get_secret_value(),
        base_addresses={"api": settings.stripe_api_base},
    )
    found = read_stripe(stripe_client)
    told = read_told(settings.database_url, inbox_url, found["declines"])
    return Records(
        orders=orders,
        workflows=await read_workflows(client, ids),
        bad_endings=await bad_endings(client),
        terminated=terminated,
        intents=found["intents"],
        refunds=found["refunds"],
        disputes=found["disputes"],
        any_refunds=found["any_refunds"],
        told=told,
    )


def report(
    args: argparse.Namespace,
    journeys: list[Journey],
    injected: list[faults.Injected],
    invariants: list[Invariant],
    told: dict[str, object],
    unfinished: list[str],
) -> bool:
    say("\nFaults injected:")
    for f in injected:
        say(
            f"  {f.at:6.1f}s  {f.kind:30} {f.target:12} {f.in_flight:3} journeys in flight,"
            f" lasted {f.down_seconds:.1f}s"
        )
    paths: dict[str, int] = {}
    for j in journeys:
        paths[j.path] = paths.get(j.path, 0) + 1
    say(f"\nJourneys: {len(journeys)} ({', '.join(f'{p} {n}' for p, n in sorted(paths.items()))})")
    say("\nOrder events:")
    for name, figure in told.items():
        say(f"  {name}: {figure}")
    if unfinished:
        say(f"  {len(unfinished)} deliveries still pending or failing when the audit began:")
        for line in unfinished[:20]:
            say(f"    {line}")
    say("\nInvariants:")
    ok = True
    for inv in invariants:
        mark = "ok  " if not inv.violations else "FAIL"
        say(f"  {mark} {inv.name}: {inv.checked} checked, {len(inv.violations)} violations")
        for violation in inv.violations[:10]:
            say(f"         {violation}")
        ok = ok and not inv.violations
    say(f"\nseed {args.seed}: {'no violations' if ok else 'VIOLATIONS FOUND'}")
    return ok


async def main(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    say(f"Chaos run, seed {args.seed} (replay: python3 tasks.py chaos --seed {args.seed} ...)")
    say(f"Data and logs in {args.data_dir}")
    cluster = await asyncio.to_thread(start_cluster, args.data_dir, lambda s: say(f"  {s}"))
    try:
        cluster.supervise(lambda line: say(f"  supervisor: {line}"))
        env = cluster.stack.env
        settings = client_settings(env)
        say(f"Driving at least {args.orders} journeys, {args.concurrency} at a time; faults:")
        answers: Counter[str] = Counter()
        terminated: set[tuple[str, str]] = set()
        journeys, injected, seconds = await drive(args, cluster, rng, answers, terminated)
        say(f"Load and faults done in {seconds:.0f}s; settling ...")
        client = await connect(settings)
        settled = await settle(cluster, settings, client)
        say(f"Settled in {settled:.0f}s; waiting for the order events' deliveries ...")
        waited, then, unfinished = await wait_for_deliveries(
            settings.database_url, DELIVERIES_BUDGET
        )
        say(
            f"{len(then)} deliveries pending or failing then, {len(unfinished)} after"
            f" {waited:.0f}s; auditing ..."
        )
        for line in then[:5]:
            say(f"  {line}")
        records = await gather_records(settings, client, journeys, terminated, cluster.inbox_url)
        assert records.told is not None
        told = figures(records.told)
        invariants = [*audit(journeys, records), redeliveries_acknowledged(answers)]
    finally:
        await asyncio.to_thread(cluster.stop)
    ok = report(args, journeys, injected, invariants, told, unfinished)
    (args.data_dir / "report.json").write_text(
        json.dumps(
            {
                "seed": args.seed,
                "faults": [asdict(f) for f in injected],
                "invariants": [asdict(i) for i in invariants],
                "order events": told,
                "unfinished deliveries": unfinished,
                "journeys": [
                    {**asdict(j), "order_ids": sorted(j.order_ids), "seen": sorted(j.seen)}
                    for j in journeys
                ],
            },
            indent=1,
        )
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(run(main(parse(sys.argv[1:]))))
