"""Starting the whole local system: used by `tasks.py run` and by the benchmark.

Honours every variable that is set (DESIGN.md's names) and fills in safe local values for
the rest: an embedded PostgreSQL in the data folder unless DATABASE_URL is set, the Temporal
dev server (its SQLite file in the data folder, or in memory), the Stripe emulator unless
real Stripe keys are configured, and the local inbox (dev/inbox/: customer e-mails over SMTP
and the shop's webhooks, shown at its address) unless SMTP_HOST is set.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dev.inbox.launch import start_inbox
from dev.inbox.local_receiver import (
    LOCAL_RECEIVER,
    LOCAL_RECEIVER_SECRET,
    webhook_endpoints_setting,
)
from dev.stack.database import embedded_server_url, ensure_database, with_database
from dev.stack.procs import (
    BIN,
    Child,
    Children,
    free_port,
    free_ports,
    open_private_log,
    port_open,
    require_free,
    wait_for_port,
)
from dev.stack.stripe_emulator import register_webhook, start_localstripe
from dev.stack.temporal_server import start_temporal
from vult.db.migrate import upgrade_to_head
from vult.db.urls import async_url
from vult.process.payload_keys import new_key_spec
from vult.process.settings import (
    LOCAL_CODEC_AUTH_TOKEN,
    LOCAL_OPS_API_TOKEN,
    LOCAL_STRIPE_SECRET_KEY,
    LOCAL_WEBHOOK_SECRET,
    Settings,
    is_real_stripe_secret_key,
)

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class StackConfig:
    data_dir: Path
    api_port: int = 8000
    temporal_port: int = 7233
    ui_port: int | None = 8233  # None: headless
    stripe_port: int = 8420
    metrics_port: int = 9464
    temporal_in_memory: bool = False
    stripe_persists: bool = True  # keep the emulator's objects across restarts
    stripe_key_seconds: float | None = None  # idempotency keys' lifetime (None: Stripe's)
    # The local inbox's pages and webhook receiver, and its SMTP server: 0 picks a free
    # port (so stacks started side by side, as the tests start them, never collide);
    # `tasks.py run` asks for 8025 and 1025. inbox_port None: no inbox.
    inbox_port: int | None = 0
    smtp_port: int = 0
    extra_env: dict[str, str] = field(default_factory=dict)


@dataclass
class Stack:
    children: Children
    env: dict[str, str]
    api_url: str
    stripe_api_base: str | None
    temporal_address: str
    temporal_ui: str | None
    database_url: str
    processes: dict[str, int]  # component -> pid, for the benchmark's measurements
    _keep: list[object] = field(default_factory=list)  # keeps the embedded database up
    inbox_url: str | None = None  # the local inbox's pages (None: SMTP_HOST set, or no inbox)

    def supervised(self) -> list[Child]:
        """The programs the local stack restarts when they exit (PostgreSQL runs on its own)."""
        names = ("temporal", "localstripe", "inbox", "worker", "api")
        return [c for c in self.children.started if c.name in names]

    env_file: Path | None = None  # the settings a worker or API started by hand joins with

    def stop(self) -> None:
        self.children.stop_all()
        self._keep.clear()
        if self.env_file is not None:
            self.env_file.unlink(missing_ok=True)


def start_worker(children: Children, name: str, env: dict[str, str], log: Path) -> Child:
    """A worker process with these settings. On a development stack the build just started
    is the one that runs (WORKER_PROMOTE=always), unless the settings say otherwise. Its
    supervised restarts never take the deployment back from a build made current since:
    they run with WORKER_PROMOTE=unless-superseded in place of "always"."""
    env = {"WORKER_PROMOTE": os.environ.get("WORKER_PROMOTE", "always"), **env}
    worker = children.start(
        name, [sys.executable, str(ROOT / "worker.py")], log=log, env=env, cwd=ROOT
    )
    if env["WORKER_PROMOTE"] == "always":
        worker.env = {**env, "WORKER_PROMOTE": "unless-superseded"}  # what a restart uses
    return worker


# How often the local stack's order sweep runs (production's default is five minutes).
LOCAL_SWEEP_INTERVAL = "PT30S"


def run_setup(env: dict[str, str], log: Path) -> None:
    """The set-up job, as production runs it before the worker: here it creates the order
    sweep's schedule (the dev server registered the search attributes at its start)."""
    with open_private_log(log) as out:
        subprocess.run(
            [sys.executable, "-m", "vult.temporal.setup"],
            env={**os.environ, **env},
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            timeout=120,
            check=True,
        )


def start_api(children: Children, name: str, port: int, env: dict[str, str], log: Path) -> Child:
    """An API process on 127.0.0.1:`port` with these settings, once it takes connections."""
    cmd = [str(BIN / "uvicorn"), "--factory", "api.app:app_factory", "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "--no-access-log"]
    api = children.start(name, cmd, log=log, env=env, cwd=ROOT)
    api.ready = lambda started: wait_for_port(started, port, timeout=60)
    api.ready(api)
    return api


def client_settings(env: Mapping[str, str]) -> Settings:
    """The settings a program outside the stack (the chaos suite, the benchmark's audit)
    needs to read its database, Temporal (payloads decrypted) and Stripe emulator."""
    return Settings(
        database_url=env["DATABASE_URL"],
        temporal_address=env["TEMPORAL_ADDRESS"],
        payload_encryption_keys=env["PAYLOAD_ENCRYPTION_KEYS"],
        stripe_secret_key=env["STRIPE_SECRET_KEY"],
        stripe_api_base=env["STRIPE_API_BASE"],
    )


def write_env_file(path: Path, env: dict[str, str]) -> None:
    """The stack's settings, for `tasks.py worker` and `tasks.py api` to join it with. It
    holds the payload key: readable by this user only."""
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text("".join(f"{name}={value}\n" for name, value in sorted(env.items())))


def local_payload_keys(path: Path) -> str:
    """The development key, made once and kept (readable by this user only)."""
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(new_key_spec("local-1") + "\n")
    return path.read_text().strip()


def start_stack(
    config: StackConfig,
    environ: Mapping[str, str] = os.environ,
    say: Callable[[str], None] = print,
) -> Stack:
    """Start every component; on failure, stop what was started and re-raise."""
    data, logs = config.data_dir, config.data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    logs.chmod(0o700)
    children = Children()
    env: dict[str, str] = dict(config.extra_env)
    keep: list[object] = []
    processes: dict[str, int] = {}
    try:
        # PostgreSQL
        database_url = environ.get("DATABASE_URL")
        if database_url:
            say("PostgreSQL: using DATABASE_URL")
        else:
            admin_url, handle = embedded_server_url(data / "postgres")
            keep.append(handle)
            processes["postgres"] = handle.get_pid()  # type: ignore[attr-defined]
            database_url = with_database(admin_url, "vult")
            env["DATABASE_URL"] = database_url
            say(f"PostgreSQL: embedded server, data in {_shown(data / 'postgres')}")
        database_url = async_url(database_url)
        ensure_database(database_url)
        upgrade_to_head(database_url)
        say("PostgreSQL: migrations applied, product catalogue seeded")

        # Payload encryption: a key kept in the data folder unless one is configured.
        if not environ.get("PAYLOAD_ENCRYPTION_KEYS"):
            env["PAYLOAD_ENCRYPTION_KEYS"] = local_payload_keys(data / "payload-encryption-keys")
            say(f"Temporal payloads: encrypted with the key in {_shown(data)}")
        codec_token = environ.get("CODEC_AUTH_TOKEN") or LOCAL_CODEC_AUTH_TOKEN
        # The well-known development tokens, for this local stack's own processes only.
        env.setdefault("CODEC_AUTH_TOKEN", codec_token)
        env.setdefault("OPS_API_TOKEN", environ.get("OPS_API_TOKEN") or LOCAL_OPS_API_TOKEN)

        # Temporal
        temporal_ui = None
        if environ.get("TEMPORAL_ADDRESS"):
            temporal_address = environ["TEMPORAL_ADDRESS"]
            say(f"Temporal: using {temporal_address}")
        else:
            require_free(config.temporal_port, "the Temporal dev server")
            temporal = start_temporal(
                children,
                port=config.temporal_port,
                ui_port=config.ui_port,
                db_file=None if config.temporal_in_memory else data / "temporal.sqlite",
                log=logs / "temporal.log",
                namespace=environ.get("TEMPORAL_NAMESPACE", "default"),
                # The Web UI sends no credentials of its own: the token rides in the path.
                codec_endpoint=f"http://127.0.0.1:{config.api_port}/codec/{codec_token}",
            )
            processes["temporal"] = temporal.process.pid
            temporal_address = f"127.0.0.1:{config.temporal_port}"
            env["TEMPORAL_ADDRESS"] = temporal_address
            if config.ui_port is not None:
                temporal_ui = f"http://127.0.0.1:{config.ui_port}"

        # Stripe
        stripe_base = _start_stripe(config, environ, env, children, processes, say)

        # Mail and webhooks: the local inbox, unless a mail server is configured.
        inbox_url = _start_inbox(config, environ, env, children, processes, say)
        if not environ.get("SHOP_URL"):
            env.setdefault("SHOP_URL", f"http://127.0.0.1:{config.api_port}")

        # Worker and API
        if not environ.get("WORKER_METRICS_ADDRESS"):
            env["WORKER_METRICS_ADDRESS"] = f"127.0.0.1:{config.metrics_port}"
        if not environ.get("API_METRICS_ADDRESS"):
            beside = config.metrics_port + 1
            env["API_METRICS_ADDRESS"] = f"127.0.0.1:{free_port() if port_open(beside) else beside}"
        env.setdefault(
            "ORDER_SWEEP_INTERVAL", environ.get("ORDER_SWEEP_INTERVAL") or LOCAL_SWEEP_INTERVAL
        )
        run_setup(env, logs / "setup.log")
        say(f"Temporal: schedule order-sweep every {env['ORDER_SWEEP_INTERVAL']}")
        worker = start_worker(children, "worker", env, logs / "worker.log")
        processes["worker"] = worker.process.pid
        require_free(config.api_port, "the API")
        api = start_api(children, "api", config.api_port, env, logs / "api.log")
        processes["api"] = api.process.pid
    except BaseException:
        children.stop_all()
        keep.clear()
        raise
    env_file = config.data_dir / "stack.env"
    configured = {
        name.upper(): environ[name.upper()]
        for name in Settings.model_fields
        if name.upper() in environ
    }
    write_env_file(env_file, configured | env)
    return Stack(
        env_file=env_file,
        children=children,
        env=env,
        api_url=f"http://127.0.0.1:{config.api_port}",
        stripe_api_base=stripe_base,
        temporal_address=temporal_address,
        temporal_ui=temporal_ui,
        database_url=database_url,
        processes=processes,
        _keep=keep,
        inbox_url=inbox_url,
    )


def _start_stripe(
    config: StackConfig,
    environ: Mapping[str, str],
    env: dict[str, str],
    children: Children,
    processes: dict[str, int],
    say: Callable[[str], None],
) -> str | None:
    """The emulator, unless real Stripe keys are configured; returns its address."""
    real_key = environ.get("STRIPE_SECRET_KEY", "")
    uses_real_stripe = is_real_stripe_secret_key(real_key) and not environ.get("STRIPE_API_BASE")
    if uses_real_stripe:
        say("Stripe: using api.stripe.com with the configured keys")
        return None
    stripe_base = environ.get("STRIPE_API_BASE") or f"http://127.0.0.1:{config.stripe_port}"
    if not environ.get("STRIPE_API_BASE"):
        require_free(config.stripe_port, "the Stripe emulator")
        emulator = start_localstripe(
            children,
            port=config.stripe_port,
            log=config.data_dir / "logs" / "localstripe.log",
            state_file=config.data_dir / "localstripe.pickle" if config.stripe_persists else None,
            idempotency_key_seconds=config.stripe_key_seconds,
        )
        processes["localstripe"] = emulator.process.pid
    env["STRIPE_API_BASE"] = stripe_base
    env["STRIPE_SECRET_KEY"] = real_key or LOCAL_STRIPE_SECRET_KEY
    secret = environ.get("STRIPE_WEBHOOK_SECRET") or LOCAL_WEBHOOK_SECRET
    env["STRIPE_WEBHOOK_SECRET"] = secret

    def register() -> None:
        register_webhook(
            stripe_base,
            name="vult-orders",
            url=f"http://127.0.0.1:{config.api_port}/api/webhooks/stripe",
            secret=secret,
        )

    if not environ.get("STRIPE_API_BASE"):
        # The emulator forgets its webhooks when it restarts: a restart registers ours again.
        emulator.on_ready(register)
    register()
    say(f"Stripe: emulator at {stripe_base}, webhooks signed and sent to the API")
    return stripe_base


def _start_inbox(
    config: StackConfig,
    environ: Mapping[str, str],
    env: dict[str, str],
    children: Children,
    processes: dict[str, int],
    say: Callable[[str], None],
) -> str | None:
    """The inbox, unless SMTP_HOST is set (or the config asks for none): the worker's mail
    goes to its SMTP server and, unless WEBHOOK_ENDPOINTS is set, every webhook to its
    receiver. Returns its address."""
    configured_host = environ.get("SMTP_HOST") or env.get("SMTP_HOST")
    if configured_host:
        say(f"Mail: sent through {configured_host} (SMTP_HOST); no local inbox")
        return None
    if config.inbox_port is None:
        return None
    chosen = iter(free_ports(2))
    http_port = config.inbox_port or next(chosen)
    smtp_port = config.smtp_port or next(chosen)
    require_free(http_port, "the mail and webhook inbox")
    require_free(smtp_port, "the inbox's SMTP server")
    inbox = start_inbox(
        children,
        smtp_port=smtp_port,
        http_port=http_port,
        data_dir=config.data_dir / "inbox",
        endpoints={LOCAL_RECEIVER: LOCAL_RECEIVER_SECRET},
        log=config.data_dir / "logs" / "inbox.log",
    )
    processes["inbox"] = inbox.process.pid
    inbox_url = f"http://127.0.0.1:{http_port}"
    env["SMTP_HOST"] = "127.0.0.1"
    env["SMTP_PORT"] = str(smtp_port)
    if not (environ.get("WEBHOOK_ENDPOINTS") or env.get("WEBHOOK_ENDPOINTS")):
        env["WEBHOOK_ENDPOINTS"] = webhook_endpoints_setting(inbox_url)
        say(f"Webhooks: every event to {inbox_url}/webhooks/{LOCAL_RECEIVER}")
    say(f"Mail: SMTP on 127.0.0.1:{smtp_port}; mail and webhooks shown at {inbox_url}")
    return inbox_url


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)
