"""The compose stack and the alert rules, read as an operator (and CI) would: no Docker
engine runs here, so their structure is what can be checked."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SECRETS = (
    "POSTGRES_PASSWORD",
    "STRIPE_SECRET_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "OPS_API_TOKEN",
    "CODEC_AUTH_TOKEN",
    "PAYLOAD_ENCRYPTION_KEYS",
)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_has_the_whole_stack(compose: dict[str, Any]) -> None:
    assert {
        "postgres",
        "temporal",
        "temporal-ui",
        "temporal-setup",
        "migrate",
        "api",
        "worker",
        "prometheus",
    } <= set(compose["services"])


def test_every_image_is_pinned(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        image = service.get("image", "")
        assert re.fullmatch(r"[\w./-]+:[\w.-]+", image), f"{name}: {image!r} is not pinned"
        assert not image.endswith(":latest"), name


def test_secrets_come_from_the_environment_with_no_default(compose: dict[str, Any]) -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    assert not re.search(r"(sk_(live|test)_|whsec_|pk_live_)[A-Za-z0-9]", text)
    for name, service in compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if any(secret in key for secret in ("PASSWORD", "PWD", "SECRET", "TOKEN", "KEYS")):
                assert re.fullmatch(r".*\$\{[A-Z_]+:\?[^}]+\}.*", str(value)), (name, key)
    for secret in SECRETS:
        assert f"${{{secret}:?" in text


def test_migrations_and_search_attributes_run_before_the_api_and_worker(
    compose: dict[str, Any],
) -> None:
    for name in ("api", "worker"):
        needs = compose["services"][name]["depends_on"]
        assert needs["migrate"]["condition"] == "service_completed_successfully"
        assert needs["temporal-setup"]["condition"] == "service_completed_successfully"
    assert compose["services"]["migrate"]["command"] == ["alembic", "upgrade", "head"]


def test_long_running_services_have_healthchecks(compose: dict[str, Any]) -> None:
    for name in ("postgres", "temporal", "api", "worker"):
        assert compose["services"][name]["healthcheck"]["test"], name


def test_the_app_runs_in_production_mode_and_the_ui_decodes_through_the_codec(
    compose: dict[str, Any],
) -> None:
    assert compose["services"]["api"]["environment"]["ENVIRONMENT"] == "production"
    codec = compose["services"]["temporal-ui"]["environment"]["TEMPORAL_CODEC_ENDPOINT"]
    assert "/codec/" in codec


def test_alert_rules_watch_payment_failures_and_webhook_signatures() -> None:
    rules = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())
    by_name = {r["alert"]: r for g in rules["groups"] for r in g["rules"]}
    assert "vult_payments_failed_total" in by_name["PaymentFailureRateRising"]["expr"]
    assert "vult_webhook_signature_failures_total" in by_name["WebhookSignatureFailures"]["expr"]
    # Every metric an alert names is one the service exports.
    sources = [*sorted((ROOT / "workflows").glob("*.py")), ROOT / "api/metrics.py"]
    exported = "".join(path.read_text() for path in sources)
    for rule in by_name.values():
        for metric in set(re.findall(r"vult_[a-z_]+", rule["expr"])):
            assert metric.removesuffix("_total") in exported, metric
