"""The system the chaos suite attacks: the local stack (Temporal dev server on its SQLite
file, the Stripe emulator keeping its objects on disk, the local inbox taking the customers'
mail and the shop's webhooks, a worker, an API) plus a second worker and a second API, on a
PostgreSQL of its own that may be killed, with short reconciliation timers and short
delivery tries. Every program is supervised as `tasks.py run` supervises it; a fault that
must keep a program down for a while holds it out of supervision until it is brought back."""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from dev.chaos import postgres
from dev.inbox.local_receiver import LOCAL_RECEIVER
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
# Order events: every try of a delivery within the run (production waits up to a day
# between tries), and a webhook answered slower than this is a failed try. The audit
# (dev/chaos/event_audit.py) bounds the tries per delivery with these.
WEBHOOK_TIMEOUT_SECONDS = 3.0
DELIVERY_RETRY_DELAYS = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0)
DELIVERIES = {
    "WEBHOOK_TIMEOUT_SECONDS": f"{WEBHOOK_TIMEOUT_SECONDS:g}",
    "DELIVERY_RETRY_DELAYS": json.dumps(DELIVERY_RETRY_DELAYS),
    # The inbox's SMTP server takes plain mail from anyone on 127.0.0.1: whatever the
    # environment says of another mail server's login is not for it.
    "SMTP_USERNAME": "",
    "SMTP_PASSWORD": "",
    "SMTP_STARTTLS": "false",
    "MAIL_TEMPLATES_DIR": "",
}
# The inbox keeps this many mails and webhook tries (its default, 1000, is less than a run
# makes): the audit reads every one.
INBOX_KEEPS = 1_000_000
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
    # Mail and webhooks go to the stack's own inbox (its SMTP server and receiver).
    "SMTP_HOST",
    "SMTP_PORT",
    "WEBHOOK_ENDPOINTS",
    *TIMERS,
    *DELIVERIES,
)
# What each worker must be started with for its mail and webhooks to reach the inbox.
_INBOX_SETTINGS = ("SMTP_HOST", "SMTP_PORT", "WEBHOOK_ENDPOINTS", *DELIVERIES)


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

    def is_held(self, child: Child) -> bool:
        """Whether a fault keeps it down (an outage) right now."""
        with self._lock:
            return child.name in self._held

    def release(self, child: Child) -> None:
        """Start it again now (waiting until it is ready), then supervise it again."""
        try:
            if child.process.poll() is not None:
                self.stack.children.restart(child)
        finally:
            with self._lock:
                self._held.discard(child.name)

    @property
    def inbox_url(self) -> str:
        """The inbox's pages and JSON API (start_cluster made sure there is one)."""
        assert self.stack.inbox_url is not None
        return self.stack.inbox_url

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
                    **DELIVERIES,
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
        _inbox_checked(stack)
        say(
            f"The inbox at {stack.inbox_url} takes both workers' mail and webhooks; deliveries"
            f" tried after {', '.join(f'{d:g}' for d in DELIVERY_RETRY_DELAYS)} s, a webhook"
            f" answered within {WEBHOOK_TIMEOUT_SECONDS:g} s"
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


def _inbox_checked(stack: Stack) -> None:
    """The inbox runs, keeps everything a run sends it, answers, and both workers were
    started with its SMTP server, its receiver and the suite's delivery settings: else the
    run would audit deliveries that went elsewhere, or nowhere."""
    if stack.inbox_url is None:
        raise RuntimeError(
            "the stack started no inbox (is SMTP_HOST set?): the chaos suite audits the"
            " order events' mail and webhooks in its own inbox"
        )
    inbox = next(c for c in stack.children.started if c.name == "inbox")
    if "--keep" not in inbox.cmd:
        inbox.cmd = [*inbox.cmd, "--keep", str(INBOX_KEEPS)]
        inbox.stop()
        stack.children.restart(inbox)
    answer = httpx.get(f"{stack.inbox_url}/api/faults", timeout=10)
    answer.raise_for_status()
    receiver = f"{stack.inbox_url}/webhooks/{LOCAL_RECEIVER}"
    endpoints = json.loads(stack.env.get("WEBHOOK_ENDPOINTS") or "[]")
    if [e.get("url") for e in endpoints] != [receiver]:
        raise RuntimeError(f"WEBHOOK_ENDPOINTS is not the inbox's receiver alone: {endpoints}")
    workers = [c for c in stack.children.started if c.name.split("-")[0] == "worker"]
    for worker in workers:
        env = worker.env or {}
        wrong = [n for n in _INBOX_SETTINGS if env.get(n) != stack.env.get(n)]
        if wrong:
            raise RuntimeError(f"{worker.name} was started without the inbox's {wrong}")
    if len(workers) != 2:
        raise RuntimeError(f"expected two workers, found {[w.name for w in workers]}")
