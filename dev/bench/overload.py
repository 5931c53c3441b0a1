"""The overload phase (`python3 tasks.py bench --overload`, issue 32): a flash sale.

1. Ramp: shoppers at 1, 2, 4, ... for a few seconds each; saturation is the fewest
   shoppers whose lifecycles per second reach 90% of the ramp's best (the machine is busy).
   The lifecycle p99 at one shopper is the unloaded p99.
2. Steps at 1x, 5x and 20x saturation, each for a fixed time: every shopper is a client of
   its own (X-Forwarded-For) running whole lifecycles, one after another, with an e-mail and
   an Idempotency-Key of their own; a refused request (503 or 429, nothing started) is sent
   again after its Retry-After, as a polite client does. A shopper still refused when the
   step ends gives up (nothing was started for it); one whose order was placed finishes it.
3. Idle pages: the 1x step again with `--idle-pages` open checkout pages, each a client of
   its own with an order of its own, waiting on `status-change` and opening it again.
4. The audit of dev/chaos/audit.py over every order the steps placed: each 201 order exists
   once per key, each Confirmed order paid exactly once, no payment kept for an order not
   Confirmed, nothing left PaymentProcessing, no workflow failed or parked.

Each step reports completed lifecycles per second, refusals (and how fast they came), the
latency of admitted lifecycles, and, per lifecycle, the worker's workflow-cache evictions
and misses (a miss is a task that replayed its history), workflow tasks, and activity runs,
failed ones apart (its Prometheus metrics)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import stripe

from dev.bench.lifecycle import (
    LIFECYCLE,
    Failed,
    NotAdmitted,
    Target,
    create_order,
    pay_and_confirm,
)
from dev.bench.measure import Latencies, percentiles
from dev.chaos.audit import Records, audit, bad_endings, read_orders, read_stripe, read_workflows
from dev.chaos.invariants import Invariant
from dev.chaos.shoppers import Journey, shopper_address
from dev.stack.stack import client_settings
from vult.temporal.client import connect

# The idle pages' clients: 198.19.x.x, apart from the shoppers' (dev/chaos/shoppers.py).
_PAGES = 1 << 16
# Each step's shoppers finish the lifecycles they started within this, after it ends.
DRAIN_SECONDS = 180.0
# The worker's Prometheus counters each step reports the growth of (summed over labels).
WORKER_COUNTERS = {
    "cache evictions": "temporal_sticky_cache_total_forced_eviction",
    "cache misses": "temporal_sticky_cache_miss",
    # The SDK times the replay of every workflow task it runs: this counts the tasks.
    "workflow tasks": "temporal_workflow_task_replay_latency_count",
    "activity runs failed": "temporal_activity_execution_failed",
    "local activity runs failed": "temporal_local_activity_execution_failed",
    "local activity runs": "temporal_local_activity_total",
    "activity runs": "temporal_activity_execution_latency_count",
}


@dataclass
class Step:
    label: str
    shoppers: int
    seconds: float
    completed: int = 0  # lifecycles that reached Confirmed within the step
    gave_up: int = 0  # shoppers refused until the step ended (nothing started)
    errors: int = 0
    lat: Latencies = field(default_factory=Latencies)
    worker: dict[str, float] = field(default_factory=dict)
    idle_pages: dict[str, Any] = field(default_factory=dict)

    @property
    def per_second(self) -> float:
        return self.completed / self.seconds

    def lifecycle_p99_ms(self) -> float:
        return percentiles(self.lat.samples.get(LIFECYCLE, [])).get("p99_ms", float("nan"))

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "shoppers": self.shoppers,
            "seconds": self.seconds,
            "completed": self.completed,
            "per_second": self.per_second,
            "gave_up": self.gave_up,
            "errors": self.errors,
            "latency": self.lat.summary(),
            "refused": dict(self.lat.shed),
            "worker": self.worker,
            "idle_pages": self.idle_pages,
        }


class Sale:
    """The shoppers of every step, numbered across steps, and what they did."""

    def __init__(self, http: aiohttp.ClientSession, target: Target, metrics_url: str) -> None:
        self.http = http
        self.target = target
        self.metrics_url = metrics_url
        self.journeys: list[Journey] = []
        self.tag = uuid.uuid4().hex[:8]  # this run's orders: their e-mails carry it
        self._numbers = iter(range(10**9))
        self.page_orders: list[str] = []  # an unpaid order per idle page (make_page_orders)

    def _journey(self) -> Journey:
        n = next(self._numbers)
        j = Journey(
            number=n,
            path="pay",
            key=str(uuid.uuid4()),
            email=f"sale-{self.tag}-{n}@example.com",
        )
        self.journeys.append(j)
        return j

    async def _lifecycle(self, step: Step, client: str, ends: float) -> bool:
        """One lifecycle; False when the shopper was refused until the step's end."""
        j = self._journey()
        try:
            order_id = await create_order(
                self.http,
                self.target,
                step.lat,
                client=client,
                email=j.email,
                key=j.key,
                admit_by=ends,
            )
        except NotAdmitted:
            j.finished = True  # refused until the end: no order, as the audit checks
            step.gave_up += 1
            return False
        j.order_ids.add(order_id)
        # Admitted: timed from sending the create that was let in (its time is the last
        # sample: nothing ran between its recording and here) to Confirmed.
        admitted = time.perf_counter() - step.lat.samples["POST /api/orders"][-1]
        await pay_and_confirm(self.http, self.target, step.lat, order_id, client=client)
        now = time.perf_counter()
        step.lat.add(LIFECYCLE, now - admitted)
        j.finished = True
        if now <= ends:
            step.completed += 1
        return True

    async def _shopper(self, step: Step, number: int, ends: float) -> None:
        client = shopper_address(number)
        while time.perf_counter() < ends:
            try:
                if not await self._lifecycle(step, client, ends):
                    return  # told to come back after the step: it leaves, as a shopper would
            except (Failed, aiohttp.ClientError, TimeoutError) as exc:
                step.errors += 1
                if step.errors <= 3:
                    print(f"    error: {type(exc).__name__}: {exc}", flush=True)
                await asyncio.sleep(1)

    async def run(
        self, step: Step, beside: Callable[[float], Coroutine[Any, Any, None]] | None = None
    ) -> Step:
        """The step's shoppers for its time (and `beside(ends)` with them), then their
        drain; the worker's counters over both."""
        print(f"  {step.label}: {step.shoppers} shoppers for {step.seconds:.0f}s", flush=True)
        before = await self.worker_counters()
        ends = time.perf_counter() + step.seconds
        tasks = [asyncio.create_task(self._shopper(step, n, ends)) for n in range(step.shoppers)]
        if beside is not None:
            tasks.append(asyncio.create_task(beside(ends)))
        done, pending = await asyncio.wait(tasks, timeout=step.seconds + DRAIN_SECONDS)
        for task in pending:  # bounded: a lifecycle that never ended is an error
            task.cancel()
            step.errors += 1
        for task in done:
            if task.exception() is not None:
                step.errors += 1
        after = await self.worker_counters()
        lifecycles = max(step.completed, 1)
        step.worker = {
            name: (after.get(metric, 0.0) - before.get(metric, 0.0)) / lifecycles
            for name, metric in WORKER_COUNTERS.items()
        }
        print(
            f"    {step.per_second:.1f} lifecycles/s,"
            f" admitted p99 {step.lifecycle_p99_ms():.0f} ms,"
            f" refused {sum(step.lat.shed.values())}, gave up {step.gave_up},"
            f" errors {step.errors}",
            flush=True,
        )
        return step

    async def worker_counters(self) -> dict[str, float]:
        """The worker's Prometheus counters, each summed over its labels."""
        try:
            async with self.http.get(self.metrics_url) as response:
                text = await response.text()
        except aiohttp.ClientError:
            return {}
        sums: dict[str, float] = {}
        wanted = set(WORKER_COUNTERS.values())
        for line in text.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            name = line.split("{", 1)[0].split(" ", 1)[0]
            if name in wanted:
                sums[name] = sums.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
        return sums

    def idle_pages(self, step: Step) -> Callable[[float], Coroutine[Any, Any, None]]:
        """The open checkout pages, each its own client waiting on its own unpaid order
        (`make_page_orders`), answered and opened again until the step ends."""
        stats = step.idle_pages

        async def wait_on(number: int, order_id: str, ends: float) -> None:
            url = f"{self.target.api}/api/orders/{order_id}/status-change"
            headers = {"X-Forwarded-For": shopper_address(_PAGES + number)}
            while time.perf_counter() < ends:
                left = max(1.0, min(30.0, ends - time.perf_counter()))
                began = time.perf_counter()
                params = {"from": "Pending", "timeout": f"{left:.1f}"}
                try:
                    async with self.http.get(url, params=params, headers=headers) as response:
                        await response.read()
                        key = f"answered {response.status}"
                except aiohttp.ClientError as exc:
                    key = f"failed {type(exc).__name__}"
                stats[key] = stats.get(key, 0) + 1
                late = time.perf_counter() - began - left
                stats["latest answer after its timeout (s)"] = max(
                    stats.get("latest answer after its timeout (s)", 0.0), late
                )

        async def beside(ends: float) -> None:
            pages = enumerate(self.page_orders)
            await asyncio.gather(*(wait_on(n, order_id, ends) for n, order_id in pages))

        return beside

    async def make_page_orders(self, pages: int) -> None:
        """One unpaid order for each idle page (these stay Pending; not audited as sale
        orders: their e-mail has no tag)."""
        lat = Latencies()
        self.page_orders = []
        for batch in range(0, pages, 10):
            made = await asyncio.gather(
                *(
                    create_order(self.http, self.target, lat, client=shopper_address(_PAGES + n))
                    for n in range(batch, min(batch + 10, pages))
                )
            )
            self.page_orders.extend(made)


async def ramp(sale: Sale, counts: list[int], seconds: float) -> tuple[int, float, list[Step]]:
    """Steps at each of `counts` shoppers; returns the saturation (the fewest shoppers
    reaching 90% of the best rate), the unloaded lifecycle p99 (ms, at the first count) and
    the steps."""
    steps = [await sale.run(Step(f"ramp {n}", n, seconds)) for n in counts]
    best = max(s.per_second for s in steps)
    saturation = next(s.shoppers for s in steps if s.per_second >= 0.9 * best)
    return saturation, steps[0].lifecycle_p99_ms(), steps


async def settle_and_audit(sale: Sale, env: dict[str, str]) -> list[Invariant]:
    """Once nothing the sale placed is PaymentProcessing (bounded), the chaos suite's audit
    over the sale's orders and their PaymentIntents."""
    settings = client_settings(env)
    mine = f"sale-{sale.tag}-"

    def sale_orders() -> dict[str, dict[str, Any]]:
        return {
            oid: row
            for oid, row in read_orders(settings.database_url).items()
            if str(row["email"]).startswith(mine)
        }

    for _ in range(60):  # bounded: 120 s
        orders = await asyncio.to_thread(sale_orders)
        if not any(row["status"] == "PaymentProcessing" for row in orders.values()):
            break
        await asyncio.sleep(2)
    client = await connect(settings)
    stripe_client = stripe.StripeClient(
        settings.stripe_secret_key.get_secret_value(),
        base_addresses={"api": settings.stripe_api_base},
    )
    found = await asyncio.to_thread(read_stripe, stripe_client)
    intents = {
        pi_id: pi
        for pi_id, pi in found["intents"].items()
        if str((pi.get("metadata") or {}).get("order_id")) in orders
    }
    records = Records(
        orders=orders,
        workflows=await read_workflows(client, set(orders)),
        bad_endings=[
            (wf, run)
            for wf, run in await bad_endings(client)
            if wf.removeprefix("order-") in orders
        ],
        intents=intents,
        refunds={pi: found["refunds"].get(pi, []) for pi in intents},
        disputes={pi: d for pi, d in found["disputes"].items() if pi in intents},
        any_refunds={pi: n for pi, n in found["any_refunds"].items() if pi in intents},
    )
    return audit(sale.journeys, records)


async def overload(
    http: aiohttp.ClientSession,
    target: Target,
    env: dict[str, str],
    *,
    ramp_seconds: float,
    step_seconds: float,
    idle_pages: int,
) -> dict[str, Any]:
    sale = Sale(http, target, f"http://{env['WORKER_METRICS_ADDRESS']}/metrics")
    print("Overload: the ramp (finding saturation)", flush=True)
    saturation, unloaded_p99, ramped = await ramp(sale, [1, 2, 4, 8, 16, 32], ramp_seconds)
    print(f"  saturation: {saturation} shoppers; unloaded p99 {unloaded_p99:.0f} ms", flush=True)
    steps = [
        await sale.run(Step(f"{times}x saturation", times * saturation, step_seconds))
        for times in (1, 5, 20)
    ]
    if idle_pages:
        print(f"  making {idle_pages} unpaid orders for the idle pages", flush=True)
        await sale.make_page_orders(idle_pages)
        paged = Step(f"1x saturation, {idle_pages} idle pages", saturation, step_seconds)
        steps.append(await sale.run(paged, beside=sale.idle_pages(paged)))
    print("  settling, then the audit", flush=True)
    invariants = await settle_and_audit(sale, env)
    return {
        "saturation": saturation,
        "unloaded_p99_ms": unloaded_p99,
        "ramp": [s.as_dict() for s in ramped],
        "steps": [s.as_dict() for s in steps],
        "peak_per_second": max(s.per_second for s in [*ramped, *steps]),
        "audit": [
            {"name": i.name, "checked": i.checked, "violations": i.violations[:10]}
            for i in invariants
        ],
    }


def report(r: dict[str, Any]) -> bool:
    """The overload table and its checks; True when every check passes."""
    peak, unloaded = r["peak_per_second"], r["unloaded_p99_ms"]
    print("\n== Overload (issue 32) ==")
    print(
        f"saturation {r['saturation']} shoppers; peak {peak:.1f} lifecycles/s;"
        f" unloaded lifecycle p99 {unloaded:.0f} ms"
    )
    head = f"{'step':<36}{'per s':>7}{'of peak':>8}{'p50 ms':>8}{'p99 ms':>8}{'refused':>9}"
    print(f"\n{head}{'refusal p99':>12}{'gave up':>8}{'errors':>7}")
    checks: list[tuple[str, bool, str]] = []
    for step in [*r["ramp"], *r["steps"]]:
        life = step["latency"].get(LIFECYCLE, {})
        refusals = [v for k, v in step["latency"].items() if k.endswith(" refused")]
        refusal_p99 = max((v.get("p99_ms", 0.0) for v in refusals), default=0.0)
        print(
            f"{step['label']:<36}{step['per_second']:>7.1f}{step['per_second'] / peak:>8.0%}"
            f"{life.get('p50_ms', float('nan')):>8.0f}{life.get('p99_ms', float('nan')):>8.0f}"
            f"{sum(step['refused'].values()):>9}{refusal_p99:>11.0f} {step['gave_up']:>7}"
            f"{step['errors']:>7}"
        )
        if step["label"].endswith("saturation") or "idle pages" in step["label"]:
            p99 = life.get("p99_ms", float("inf"))
            checks += [
                (
                    f"{step['label']}: within 10% of the peak",
                    step["per_second"] >= 0.9 * peak,
                    f"{step['per_second'] / peak:.0%}",
                ),
                (
                    f"{step['label']}: admitted p99 <= 2x unloaded",
                    p99 <= 2 * unloaded,
                    f"{p99:.0f} vs {unloaded:.0f} ms",
                ),
                (
                    f"{step['label']}: every refusal within 1 s",
                    refusal_p99 <= 1000,
                    f"p99 {refusal_p99:.0f} ms",
                ),
                (f"{step['label']}: no errors", step["errors"] == 0, str(step["errors"])),
            ]
    print("\nworker, per completed lifecycle (its Prometheus counters)")
    names = list(WORKER_COUNTERS)
    print(f"{'step':<36}" + "".join(f"{n[:14]:>15}" for n in names))
    for step in [*r["ramp"], *r["steps"]]:
        values = "".join(f"{step['worker'].get(n, float('nan')):>15.2f}" for n in names)
        print(f"{step['label']:<36}{values}")
    for step in r["steps"]:
        if step["idle_pages"]:
            print(f"\nidle pages ({step['label']}): {step['idle_pages']}")
    print("\naudit")
    for inv in r["audit"]:
        mark = "ok  " if not inv["violations"] else "FAIL"
        print(f"  {mark} {inv['name']}: {inv['checked']} checked, {len(inv['violations'])} bad")
        for violation in inv["violations"]:
            print(f"         {violation}")
    checks.append(("audit: no violations", not any(i["violations"] for i in r["audit"]), ""))
    print("\nchecks")
    for name, ok, value in checks:
        print(f"  [{'PASS' if ok else 'MISS'}] {name}: {value}")
    return all(ok for _, ok, _ in checks)
