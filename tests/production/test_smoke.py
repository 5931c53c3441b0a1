"""A production smoke test without containers: each compose service's own command, run as a
plain process with the environment written in docker-compose.yml (so the two cannot drift)
and ENVIRONMENT=production: the migration job, the Temporal set-up job, the API with the
Dockerfile's CMD, and the worker. Only where things are changes: the database, Temporal and
Stripe are this machine's (PostgreSQL, the dev server, the emulator) and ports are free ones
on 127.0.0.1. One order then goes from create to Delivered through those processes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import stripe
import yaml
from temporalio.client import Client

from dev.stack.database import drop_database, ensure_database, with_database
from dev.stack.procs import Child, Children, free_port, wait_for_port
from dev.stack.stripe_emulator import register_webhook, start_localstripe
from tests.support.integration import GOOD_CARD, order_body, pay_with_card
from vult.db.urls import libpq_url
from vult.process.payload_keys import new_key_spec
from vult.release import default_build_id

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
_VAR = re.compile(r"\$\{(\w+)(?::([?-])([^}]*))?\}")

# What an operator provides (compose refuses to start without the `:?` ones).
SECRETS = {
    "POSTGRES_PASSWORD": "unused-here",
    "STRIPE_SECRET_KEY": f"sk_test_smoke{uuid.uuid4().hex}",
    "STRIPE_PUBLISHABLE_KEY": f"pk_test_smoke{uuid.uuid4().hex}",
    "STRIPE_WEBHOOK_SECRET": f"whsec_smoke{uuid.uuid4().hex}",
    "OPS_API_TOKEN": uuid.uuid4().hex + uuid.uuid4().hex,
    "CODEC_AUTH_TOKEN": uuid.uuid4().hex + uuid.uuid4().hex,
    "PAYLOAD_ENCRYPTION_KEYS": new_key_spec("smoke-1"),
    "FRONTEND_ORIGINS": "https://shop.example.com",
}


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error}."""

    def one(match: re.Match[str]) -> str:
        name, kind, rest = match.groups()
        if name in variables:
            return variables[name]
        if kind == "-":
            return rest
        raise KeyError(f"compose needs {name}: {rest}")

    return _VAR.sub(one, value)


def service(name: str) -> dict[str, Any]:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return dict(compose["services"][name])


def environment_of(name: str, where: dict[str, str]) -> dict[str, str]:
    env = {k: interpolate(str(v), SECRETS) for k, v in service(name)["environment"].items()}
    assert env["ENVIRONMENT"] == "production"
    return env | where


def dockerfile_cmd() -> list[str]:
    line = next(
        ln for ln in (ROOT / "Dockerfile").read_text().splitlines() if ln.startswith("CMD ")
    )
    return list(json.loads(line[4:]))


def run_job(name: str, env: dict[str, str]) -> None:
    cmd = list(service(name)["command"])
    cmd[0] = str(BIN / cmd[0]) if (BIN / cmd[0]).exists() else cmd[0]
    done = subprocess.run(
        cmd,
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"{name}: {done.stdout}\n{done.stderr}"


@pytest.fixture(scope="module")
def production(
    database_url: str, temporal_address: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    children = Children()
    logs = tmp_path_factory.mktemp("production")
    database = with_database(database_url, f"vult_smoke_{uuid.uuid4().hex[:10]}")
    ensure_database(database)  # empty: the migration job makes the schema
    emulator_port, api_port = free_port(), free_port()
    start_localstripe(children, port=emulator_port, log=logs / "stripe.log", state_file=None)
    where = {  # only where things are: the rest is compose's own
        "DATABASE_URL": libpq_url(database),
        "TEMPORAL_ADDRESS": temporal_address,
        "TEMPORAL_TASK_QUEUE": f"smoke-{uuid.uuid4()}",
        "STRIPE_API_BASE": f"http://127.0.0.1:{emulator_port}",
        "WORKER_METRICS_ADDRESS": f"127.0.0.1:{free_port()}",
        "API_METRICS_ADDRESS": f"127.0.0.1:{free_port()}",
        "STRIPE_WEBHOOK_URL": f"http://127.0.0.1:{api_port}/api/webhooks/stripe",
    }
    try:
        run_job("migrate", environment_of("migrate", where))
        # The endpoint is registered at Stripe first (the set-up job checks its events).
        register_webhook(
            where["STRIPE_API_BASE"],
            name="vult-smoke",
            url=where["STRIPE_WEBHOOK_URL"],
            secret=SECRETS["STRIPE_WEBHOOK_SECRET"],
        )
        run_job("temporal-setup", environment_of("temporal-setup", where))
        worker_cmd = [str(BIN / "python"), *service("worker")["command"][1:]]
        children.start(
            "worker",
            worker_cmd,
            log=logs / "worker.log",
            env=environment_of("worker", where),
            cwd=ROOT,
        )
        api_cmd = dockerfile_cmd()
        api_cmd[0] = str(BIN / api_cmd[0])
        api_cmd[api_cmd.index("--host") + 1] = "127.0.0.1"
        api_cmd[api_cmd.index("--port") + 1] = str(api_port)
        api: Child = children.start(
            "api", api_cmd, log=logs / "api.log", env=environment_of("api", where), cwd=ROOT
        )
        wait_for_port(api, api_port, timeout=60)
        yield {
            "api": f"http://127.0.0.1:{api_port}",
            "stripe": where["STRIPE_API_BASE"],
            "logs": logs,
        }
    finally:
        children.stop_all()
        drop_database(database)


async def test_one_order_goes_from_create_to_delivered_through_the_production_processes(
    production: dict[str, Any], temporal_client: Client
) -> None:
    ops = {"Authorization": f"Bearer {SECRETS['OPS_API_TOKEN']}"}
    client = stripe.StripeClient(
        SECRETS["STRIPE_SECRET_KEY"], base_addresses={"api": production["stripe"]}
    )
    async with httpx.AsyncClient(base_url=production["api"], timeout=30) as http:
        assert (await http.get("/readyz")).status_code == 200
        created = await http.post("/api/orders", json=order_body())
        assert created.status_code == 201, created.text
        order_id = created.json()["orderId"]
        intent = (await http.post(f"/api/orders/{order_id}/payment")).json()
        assert await pay_with_card(client, intent["paymentIntentId"], GOOD_CARD) == "succeeded"
        confirmed = await http.get(
            f"/api/orders/{order_id}/status-change?from=PaymentProcessing&timeout=20"
        )
        assert confirmed.json()["status"] == "Confirmed"
        for step, body in (
            ("processing", None),
            ("ship", {"carrier": "UPS", "trackingNumber": "1Z999"}),
            ("deliver", None),
        ):
            done = await http.post(f"/api/ops/orders/{order_id}/{step}", json=body, headers=ops)
            assert done.status_code == 204, (step, done.text)
        delivered = (await http.get(f"/api/orders/{order_id}")).json()
        assert delivered["status"] == "Delivered" and delivered["trackingNumber"] == "1Z999"
        # The compose worker is versioned: the order ran on its build, which it made
        # current itself as the first install's worker does (WORKER_PROMOTE=first).
        described = await temporal_client.get_workflow_handle(f"order-{order_id}").describe()
        ran_on = described.raw_description.workflow_execution_info.versioning_info
        assert ran_on.deployment_version.deployment_name == "vult-orders"
        assert ran_on.deployment_version.build_id == default_build_id()
        assert (await http.get("/readyz")).json()["ready"] is True
        # Production serves the document, not the HTML explorers; no metrics on this port.
        assert (await http.get("/openapi.json")).status_code == 200
        assert (await http.get("/docs")).status_code == 404
        assert (await http.get("/metrics")).status_code == 404
        # What an operator's Web UI and ops searches send: never in a log line.
        token = SECRETS["CODEC_AUTH_TOKEN"]
        decoded = await http.post(f"/codec/{token}/decode", json={"payloads": []})
        assert decoded.status_code == 200
        listed = await http.get("/api/ops/orders?customerEmail=ann%40example.com", headers=ops)
        assert listed.status_code == 200
    log = (production["logs"] / "api.log").read_text()
    assert "/codec/" in log  # the access log is on, as the Dockerfile runs the API
    assert token not in log and "ann%40example.com" not in log and "ann@example.com" not in log


def test_compose_refuses_to_start_without_each_required_secret() -> None:
    for name in SECRETS:
        missing = {k: v for k, v in SECRETS.items() if k != name}
        env = service("api")["environment"]
        with pytest.raises(KeyError, match=name):
            for value in env.values():
                interpolate(str(value), missing)
