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
    # Every metric an alert names is one the service exports, under that exact name: the
    # worker's counters are exported as named in `count(...)`, prometheus_client's
    # Counters (the API's) with `_total` added.
    workflow_code = "".join(p.read_text() for p in sorted((ROOT / "workflows").rglob("*.py")))
    activity_code = "".join(p.read_text() for p in sorted((ROOT / "activities").glob("*.py")))
    exported = (
        set(re.findall(r'count\(\s*"(vult_[a-z_]+)"', workflow_code))
        | {*re.findall(r'create_counter\(\s*"(vult_[a-z_]+)"', activity_code)}
        | {
            f"{name}_total"
            for name in re.findall(
                r'Counter\(\s*"(vult_[a-z_]+)"', (ROOT / "api/metrics.py").read_text()
            )
        }
    )
    assert "vult_orders_created_total" in exported  # the scan finds the counters
    for rule in by_name.values():
        for metric in set(re.findall(r"vult_[a-z_]+", rule["expr"])):
            assert metric in exported, metric


def _flattened() -> str:
    """The file with YAML anchors and merge keys expanded, as Compose reads it."""
    return yaml.safe_dump(yaml.safe_load((ROOT / "docker-compose.yml").read_text()))


def test_compose_is_valid_against_the_compose_specification() -> None:
    import compose_spec

    compose_spec.PyCompose.from_yaml(_flattened()).validate()
    # The validator is not vacuous: a key the specification does not know is refused.
    broken = yaml.safe_load(_flattened())
    broken["services"]["api"]["restart"] = "sometimes"
    with pytest.raises(ValueError, match="restart"):
        compose_spec.PyCompose.from_yaml(yaml.safe_dump(broken)).validate()


def test_every_reference_in_compose_resolves(compose: dict[str, Any]) -> None:
    services = compose["services"]
    declared_volumes = set(compose.get("volumes") or {})
    for name, service in services.items():
        needs = service.get("depends_on") or {}
        for other in needs if isinstance(needs, list) else needs.keys():
            assert other in services, f"{name} depends on unknown {other}"
        for volume in service.get("volumes") or []:
            source = str(volume).split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in declared_volumes, f"{name} uses undeclared volume {source}"


def test_temporal_runs_the_dev_servers_generation_with_a_schema_job(
    compose: dict[str, Any],
) -> None:
    import subprocess
    import sys

    version = subprocess.run(
        [str(Path(sys.executable).parent / "temporal"), "--version"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    server = re.search(r"Server (\d+\.\d+\.\d+)", version)
    ui = re.search(r"UI (\d+\.\d+\.\d+)", version)
    assert server and ui, version
    services = compose["services"]
    assert services["temporal"]["image"] == f"temporalio/server:{server[1]}"
    assert services["temporal-schema"]["image"] == f"temporalio/admin-tools:{server[1]}"
    assert services["temporal-ui"]["image"] == f"temporalio/ui:{ui[1]}"
    assert not any("auto-setup" in s.get("image", "") for s in services.values())
    needs = services["temporal"]["depends_on"]["temporal-schema"]
    assert needs["condition"] == "service_completed_successfully"
    job = "\n".join(services["temporal-schema"]["command"])
    for db, schema in (("temporal", "temporal"), ("temporal_visibility", "visibility")):
        assert f"--db {db} setup-schema -v 0.0" in job
        assert (
            f"--db {db} update-schema -d /etc/temporal/schema/postgresql/v12/{schema}/versioned"
            in job
        )
    assert services["temporal"]["environment"]["VISIBILITY_DBNAME"] == "temporal_visibility"


def test_the_temporal_dynamic_config_is_the_one_mounted(compose: dict[str, Any]) -> None:
    temporal = compose["services"]["temporal"]
    path = temporal["environment"]["DYNAMIC_CONFIG_FILE_PATH"]
    mounted = next(
        v for v in temporal["volumes"] if v.endswith(":/etc/temporal/config/dynamicconfig:ro")
    )
    local = ROOT / mounted.split(":")[0] / Path(path).name
    config = yaml.safe_load(local.read_text())
    assert config and all(
        isinstance(values, list) and all("value" in v for v in values) for values in config.values()
    )
