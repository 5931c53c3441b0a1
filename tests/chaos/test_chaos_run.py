"""The short chaos run (`python3 tasks.py chaos --short`): one fault of each kind while
journeys are under way, a PostgreSQL outage of over a minute among them, the inbox's faults
beside them, then the audit of the orders and of the events they told. It must find no
violation. A fixed seed keeps CI's plan the same from run to run (the
moments between processes still vary); `tasks.py chaos` draws a new seed each time."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from dev.chaos import event_audit
from dev.chaos.faults import KINDS
from dev.stack.stack import ROOT

# One test that runs for most of a minute or more: handed out first (tests/support/tiers.py).
pytestmark = pytest.mark.long

SEED = 20261127


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """Outside pytest's own temporary folder: the cluster's PostgreSQL runs as another
    system user, which must traverse the path, and any other pytest process on the
    machine narrows `/tmp/pytest-of-<user>` back to owner-only while this runs."""
    path = Path(tempfile.mkdtemp(prefix="vult-chaos-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _keep(data_dir: Path) -> None:
    """A failed run's programs' logs, its report, its output and the Temporal server's
    database with the run's payload keys (every order's history, for `temporal server
    start-dev --db-filename`), kept for whoever reads the failure:
    test-artifacts/chaos-<folder>/ (the run's own folder is removed)."""
    kept = ROOT / "test-artifacts" / data_dir.name
    kept.mkdir(parents=True, exist_ok=True)
    histories = ("temporal.sqlite", "temporal.sqlite-wal", "temporal.sqlite-shm")
    for part in (
        "chaos/logs",
        "chaos/report.json",
        "chaos.out",
        *(f"chaos/{name}" for name in histories),
        "chaos/payload-encryption-keys",
    ):
        found = data_dir / part
        if found.is_dir():
            shutil.copytree(found, kept / found.name, dirs_exist_ok=True)
        elif found.exists():
            shutil.copy2(found, kept / found.name)


@pytest.mark.timeout(1500)
def test_the_short_chaos_run_finds_no_violation(data_dir: Path) -> None:
    data = data_dir / "chaos"
    output = data_dir / "chaos.out"
    with output.open("w") as out:
        finished = subprocess.run(
            [sys.executable, "-m", "dev.chaos", "--short", "--seed", str(SEED), "--data-dir", data],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=1400,
            check=False,
        )
    said = output.read_text(errors="replace")
    shown = "\n".join(line for line in said.splitlines() if " WARN " not in line)[-6000:]
    if finished.returncode != 0:
        _keep(data_dir)
    assert finished.returncode == 0, shown
    report = json.loads((data / "report.json").read_text())
    faults = report["faults"]
    assert {f["kind"] for f in faults} == set(KINDS), shown
    assert all(f["in_flight"] > 0 for f in faults), shown
    outage = next(f for f in faults if f["kind"] == "PostgreSQL outage")
    assert outage["down_seconds"] > 60
    invariants = {i["name"]: i for i in report["invariants"]}
    assert all(not i["violations"] for i in invariants.values())
    # The money checks had money to check.
    for name in (
        "Confirmed or later: exactly the PaymentIntent it names is kept",
        "every charge not kept went back in full: refunds (anyone's) + a lost dispute",
        "the order's refunded amount and dispute = Stripe's",
        "no PaymentIntent of another system touched",
        "every event delivered again was acknowledged (2xx)",
        "every order that can still change has a running workflow",
        "captured = shipped share, refunded = returned (+ unshipped)",
        # The events had events, tries and mails to check.
        event_audit.TOLD,
        event_audit.ONCE,
        event_audit.DELIVERED,
        event_audit.RECEIVED,
        event_audit.SIGNED,
        event_audit.SAME_ID,
        event_audit.BOUNDED,
        event_audit.MAILED,
    ):
        assert invariants[name]["checked"] > 0, name
    assert len(report["journeys"]) >= 64
    told = report["order events"]
    assert told["events"] > 0 and told["mails"] > 0, told
    # The inbox's faults made tries fail, of mail and of webhooks (and the deliveries
    # finished anyway).
    assert told["webhook tries answered other than 2xx in time"] > 0, told
    again = told["deliveries tried more than once, by target"]
    assert again.get("email", 0) > 0 and again.get("local-receiver", 0) > 0, told
    assert not report["unfinished deliveries"], report["unfinished deliveries"]
