"""`python3 tasks.py run`: the whole system on local defaults, stopped by Ctrl-C.

Honours every variable that is set (DESIGN.md's names) and fills in safe local values for
the rest: an embedded PostgreSQL under .data/ unless DATABASE_URL is set, the Temporal dev
server with its SQLite file under .data/, and the Stripe emulator unless real Stripe keys
are configured.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

from devstack.database import embedded_server_url, ensure_database, with_database
from devstack.procs import BIN, Children, require_free, wait_for_port
from devstack.stripe_emulator import register_webhook, start_localstripe
from devstack.temporal_server import start_temporal
from vult.codec import new_key_spec
from vult.db.migrate import upgrade_to_head
from vult.settings import (
    LOCAL_CODEC_AUTH_TOKEN,
    LOCAL_OPS_API_TOKEN,
    LOCAL_STRIPE_SECRET_KEY,
    LOCAL_WEBHOOK_SECRET,
)

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".data"
LOGS = DATA / "logs"


def local_payload_keys(path: Path) -> str:
    """The development key, made once and kept (readable by this user only)."""
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(new_key_spec("local-1") + "\n")
    return path.read_text().strip()


def _port(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def main() -> int:
    LOGS.mkdir(parents=True, exist_ok=True)
    env: dict[str, str] = {}
    api_port = _port("API_PORT", 8000)
    temporal_port = _port("TEMPORAL_PORT", 7233)
    ui_port = _port("TEMPORAL_UI_PORT", 8233)
    stripe_port = _port("STRIPE_EMULATOR_PORT", 8420)
    children = Children()
    keep: list[object] = []  # handles that keep the embedded database running

    def stop(*_: object) -> None:
        raise KeyboardInterrupt

    # Installed explicitly: a process started in the background inherits SIGINT ignored.
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        # PostgreSQL
        database_url = os.environ.get("DATABASE_URL")
        if database_url:
            print("PostgreSQL: using DATABASE_URL")
        else:
            admin_url, handle = embedded_server_url(DATA / "postgres")
            keep.append(handle)
            database_url = with_database(admin_url, "vult")
            env["DATABASE_URL"] = database_url
            print(f"PostgreSQL: embedded server, data in {(DATA / 'postgres').relative_to(ROOT)}")
        database_url = database_url.replace("postgresql://", "postgresql+psycopg://", 1)
        ensure_database(database_url)
        upgrade_to_head(database_url)
        print("PostgreSQL: migrations applied, product catalogue seeded")

        # Payload encryption: a key kept in the data folder unless one is configured.
        if not os.environ.get("PAYLOAD_ENCRYPTION_KEYS"):
            env["PAYLOAD_ENCRYPTION_KEYS"] = local_payload_keys(DATA / "payload-encryption-keys")
            print("Temporal payloads: encrypted with the key in .data/payload-encryption-keys")
        codec_token = os.environ.get("CODEC_AUTH_TOKEN") or LOCAL_CODEC_AUTH_TOKEN

        # Temporal
        if os.environ.get("TEMPORAL_ADDRESS"):
            print(f"Temporal: using {os.environ['TEMPORAL_ADDRESS']}")
            ui = None
        else:
            require_free(temporal_port, "the Temporal dev server")
            start_temporal(
                children,
                port=temporal_port,
                ui_port=ui_port,
                db_file=DATA / "temporal.sqlite",
                log=LOGS / "temporal.log",
                namespace=os.environ.get("TEMPORAL_NAMESPACE", "default"),
                # The Web UI sends no credentials of its own: the token rides in the path.
                codec_endpoint=f"http://127.0.0.1:{api_port}/codec/{codec_token}",
            )
            env["TEMPORAL_ADDRESS"] = f"127.0.0.1:{temporal_port}"
            ui = f"http://127.0.0.1:{ui_port}"

        # Stripe
        real_key = os.environ.get("STRIPE_SECRET_KEY", "")
        uses_real_stripe = (
            real_key.startswith(("sk_test_", "sk_live_", "rk_"))
            and real_key != LOCAL_STRIPE_SECRET_KEY
            and not os.environ.get("STRIPE_API_BASE")
        )
        if uses_real_stripe:
            print("Stripe: using api.stripe.com with the configured keys")
        else:
            stripe_base = os.environ.get("STRIPE_API_BASE") or f"http://127.0.0.1:{stripe_port}"
            if not os.environ.get("STRIPE_API_BASE"):
                require_free(stripe_port, "the Stripe emulator")
                start_localstripe(
                    children, port=stripe_port, log=LOGS / "localstripe.log", from_scratch=False
                )
            env["STRIPE_API_BASE"] = stripe_base
            env.setdefault("STRIPE_SECRET_KEY", real_key or LOCAL_STRIPE_SECRET_KEY)
            secret = os.environ.get("STRIPE_WEBHOOK_SECRET") or LOCAL_WEBHOOK_SECRET
            env["STRIPE_WEBHOOK_SECRET"] = secret
            register_webhook(
                stripe_base,
                name="vult-orders",
                url=f"http://127.0.0.1:{api_port}/api/webhooks/stripe",
                secret=secret,
            )
            print(f"Stripe: emulator at {stripe_base}, webhooks signed and sent to the API")

        # Worker and API
        metrics_port = _port("WORKER_METRICS_PORT", 9464)
        if not os.environ.get("WORKER_METRICS_ADDRESS"):
            env["WORKER_METRICS_ADDRESS"] = f"127.0.0.1:{metrics_port}"
        worker = children.start(
            "worker",
            [sys.executable, str(ROOT / "worker.py")],
            log=LOGS / "worker.log",
            env=env,
            cwd=ROOT,
        )
        require_free(api_port, "the API")
        api = children.start(
            "api",
            [
                str(BIN / "uvicorn"),
                "--factory",
                "api.app:app_factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(api_port),
                "--no-access-log",
            ],
            log=LOGS / "api.log",
            env=env,
            cwd=ROOT,
        )
        wait_for_port(api, api_port, timeout=60)
        host = urlparse(f"http://127.0.0.1:{api_port}").netloc
        print()
        print(f"  API            http://{host}/api/orders")
        print(f"  API docs       http://{host}/docs")
        if ui:
            print(f"  Temporal UI    {ui}  (payloads decoded through the API's codec endpoint)")
        print(f"  Worker metrics http://127.0.0.1:{metrics_port}/metrics")
        print(f"  Logs           {LOGS.relative_to(ROOT)}/")
        if not os.environ.get("OPS_API_TOKEN"):
            print(f"  Ops token      {LOCAL_OPS_API_TOKEN}  (development only)")
        print("\nVult Orders is running. Press Ctrl-C to stop.", flush=True)
        while True:
            for child in (worker, api):
                if child.process.poll() is not None:
                    print(f"\n{child.name} stopped unexpectedly:\n{child.tail()}", file=sys.stderr)
                    return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\nStopping ...", flush=True)
        return 0
    finally:
        # A second Ctrl-C (or SIGTERM) must not cut the clean-up short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        children.stop_all()
        keep.clear()


if __name__ == "__main__":
    raise SystemExit(main())
