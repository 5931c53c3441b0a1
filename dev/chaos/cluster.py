"""The system the chaos suite attacks: the local stack (Temporal dev server on its SQLite
file, the Stripe emulator keeping its objects on disk, a worker, an API) plus a second worker
and a second API, on a PostgreSQL of its own that may be killed, with short reconciliation
timers. Every program is supervised as `tasks.py run` supervises it; a fault that must keep
a program down for a while holds it out of supervision until it is brought back."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dev.chaos import postgres
from dev.stack.database import ensure_database
from dev.stack.procs import Child, Children, free_ports
from dev.stack.stack import Stack, StackConfig, start_api, start_stack, start_worker
from dev.stack.stripe_emulator import register_webhook
from dev.stack.supervisor import Supervisor

# Short enough that a lost webhook or a parked order is mended within the run.
TIMERS = {
    "PAYMENT_RECONCILE_AFTER": "PT5S",
    "PAYMENT_RECONCILE_MAX_INTERVAL": "PT20S",
    "ATTENTION_RETRY": "PT15S",
    # Cancelled orders' workflows close within the run, so late events take the
    # late-payment path.
    "CANCELLED_GRACE_PERIOD": "PT20S",
    # A frontend retries sooner than the production default lets an API wait.
    "TEMPORAL_COMMAND_TIMEOUT_SECONDS": "15",
    # Orders whose workflow a fault terminated are found and resumed within the run.
    "ORDER_SWEEP_INTERVAL": "PT15S",
}
# Stripe keeps an idempotency key 24 hours, and a webhook may come days late: compressed
# like the timers, a late event here meets an expired key, as it would at Stripe.
STRIPE_KEY_SECONDS = 30.0
# Settings that would point the stack somewhere else: the suite makes its own.
_NOT_INHERITED = (
    "DATABASE_URL",
    "TEMPORAL_ADDRESS",
    "STRIPE_API_BASE",
    "STRIPE_SECRET_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "PAYLOAD_ENCRYPTION_KEYS",
    "WORKER_METRICS_ADDRESS",
    "API_METRICS_ADDRESS",
    *TIMERS,
)


@dataclass
class Cluster:
    stack: Stack
    database: Child
    api_urls: list[str]
    _held: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _db_children: Children = field(default_factory=Children)

    def programs(self) -> list[Child]:
        return [self.database, *self.stack.children.started]

    def program(self, name: str) -> Child:
        return next(c for c in self.programs() if c.name == name)

    def named(self, prefix: str) -> list[Child]:
        """Every program of a kind: "worker" gives worker and worker-2."""
        return [c for c in self.programs() if c.name.split("-")[0] == prefix]

    def hold(self, child: Child) -> None:
        """Keep the supervisor from restarting it until `release`."""
        with self._lock:
            self._held.add(child.name)

    def release(self, child: Child) -> None:
        """Start it again now (waiting until it is ready), then supervise it again."""
        try:
            if child.process.poll() is not None:
                self.stack.children.restart(child)
        finally:
            with self._lock:
                self._held.discard(child.name)

    def all_running(self) -> bool:
        return all(c.process.poll() is None for c in self.programs())

    def supervise(self, say: Callable[[str], None]) -> None:
        def supervised() -> list[Child]:
            with self._lock:
                return [c for c in self.programs() if c.name not in self._held]

        supervisor = Supervisor(self.stack.children, supervised, say=say)

        def loop() -> None:
            while not self._stop.wait(0.3):
                supervisor.check()

        self._thread = threading.Thread(target=loop, name="supervisor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=130)
        self.stack.stop()
        self._db_children.stop_all()


def start_cluster(data_dir: Path, say: Callable[[str], None]) -> Cluster:
    """Everything from scratch in `data_dir` (emptied first)."""
    if data_dir.exists():
        shutil.rmtree(data_dir)
    (data_dir / "logs").mkdir(parents=True)
    (data_dir / "logs").chmod(0o700)
    db_children = Children()
    db_port, api_port, temporal_port, stripe_port, metrics_port, api2_port, m1, m2 = free_ports(8)
    database = postgres.start_postgres(
        db_children, data_dir / "postgres", db_port, data_dir / "logs" / "postgres.log"
    )
    say(f"PostgreSQL on 127.0.0.1:{db_port} (ours to kill)")
    database_url = postgres.url(db_port)
    ensure_database(database_url)
    environ = {k: v for k, v in os.environ.items() if k not in _NOT_INHERITED}
    environ["DATABASE_URL"] = database_url
    environ["API_METRICS_ADDRESS"] = f"127.0.0.1:{m1}"
    try:
        stack = start_stack(
            StackConfig(
                data_dir=data_dir,
                api_port=api_port,
                temporal_port=temporal_port,
                ui_port=None,
                stripe_port=stripe_port,
                metrics_port=metrics_port,
                temporal_in_memory=False,  # its SQLite file outlives a kill -9
                stripe_persists=True,
                stripe_key_seconds=STRIPE_KEY_SECONDS,
                extra_env={
                    **TIMERS,
                    "DATABASE_URL": database_url,
                    "API_METRICS_ADDRESS": f"127.0.0.1:{m1}",
                },
            ),
            environ=environ,
            say=say,
        )
    except BaseException:
        db_children.stop_all()
        raise
    try:
        urls = [stack.api_url, _second_api(stack, data_dir, api2_port)]
        _second_worker(stack, data_dir, m2)
        _webhook_to_second_api(stack, urls[1])
        say(
            "A second worker and a second API (placing orders under capture at shipment);"
            " Stripe's webhooks go to both APIs"
        )
    except BaseException:
        stack.stop()
        db_children.stop_all()
        raise
    return Cluster(stack=stack, database=database, api_urls=urls, _db_children=db_children)


def _second_worker(stack: Stack, data_dir: Path, metrics_port: int) -> None:
    env = {**stack.env, "WORKER_METRICS_ADDRESS": f"127.0.0.1:{metrics_port}"}
    start_worker(stack.children, "worker-2", env, data_dir / "logs" / "worker-2.log")


def _second_api(stack: Stack, data_dir: Path, port: int) -> str:
    # Its metrics go unserved: the first API's address is taken, and nothing scrapes here.
    # It places orders under capture at shipment: both modes run in every run (an order
    # keeps the mode of the API that placed it; any API serves it after that).
    env = {**stack.env, "API_METRICS_ADDRESS": "", "PAYMENT_CAPTURE": "at_shipment"}
    start_api(stack.children, "api-2", port, env, data_dir / "logs" / "api-2.log")
    return f"http://127.0.0.1:{port}"


def _webhook_to_second_api(stack: Stack, api_url: str) -> None:
    """Every event then arrives twice (once per API), as a duplicate delivery would; a
    restarted emulator gets both registrations again."""
    emulator = next(c for c in stack.children.started if c.name == "localstripe")
    base, secret = stack.stripe_api_base or "", stack.env["STRIPE_WEBHOOK_SECRET"]

    def register() -> None:
        url = f"{api_url}/api/webhooks/stripe"
        register_webhook(base, name="vult-orders-2", url=url, secret=secret)

    emulator.on_ready(register)
    register()
