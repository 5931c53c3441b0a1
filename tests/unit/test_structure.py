"""The folder tree's promises, checked: the domain imports nothing else of the project,
the workflows load no activity, database or Stripe code, the API none from activities/,
and every activity the workflow calls by name is registered under that name with the
same signature."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from temporalio import activity

from activities.order_db import OrderDbActivities
from activities.order_resume import OrderResumeActivities
from activities.stripe_payments import StripeActivities
from workflows import activity_stubs

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ("vult", "workflows", "activities", "api", "worker", "devstack", "bench")
SIDE_EFFECT_LIBRARIES = ("sqlalchemy", "stripe", "psycopg", "asyncpg", "aiohttp", "httpx")


def _loaded_after_importing(*modules: str) -> set[str]:
    """The modules a fresh interpreter holds after importing `modules`."""
    code = (
        "import importlib, json, sys\n"
        f"for name in {list(modules)!r}: importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    return set(json.loads(out))


def _top(name: str) -> str:
    return name.split(".")[0]


def _modules_of(package: str) -> list[str]:
    folder = ROOT / package.replace(".", "/")
    return [f"{package}.{p.stem}" for p in sorted(folder.glob("*.py")) if p.stem != "__init__"]


def test_the_domain_imports_nothing_else_of_the_project_and_no_io_library() -> None:
    loaded = _loaded_after_importing(*_modules_of("vult.domain"))
    project = {m for m in loaded if _top(m) in PROJECT and not m.startswith("vult.domain")}
    assert project <= {"vult"}, sorted(project)
    assert not {m for m in loaded if _top(m) in SIDE_EFFECT_LIBRARIES}


def test_loading_the_workflows_loads_no_activity_database_or_stripe_code() -> None:
    loaded = _loaded_after_importing(*_modules_of("workflows"))
    assert "workflows.order" in loaded  # the check would pass vacuously otherwise
    forbidden = {
        m
        for m in loaded
        if _top(m) in (*SIDE_EFFECT_LIBRARIES, "activities", "api")
        or m.startswith(("vult.db", "vult.process"))
    }
    assert not forbidden, sorted(forbidden)


def test_the_api_imports_nothing_from_activities() -> None:
    loaded = _loaded_after_importing("api.app")
    assert "api.routes.orders" in loaded
    assert not {m for m in loaded if _top(m) == "activities"}


def _registered() -> dict[str, Callable[..., Any]]:
    # The constructors only keep what they are given; nothing is called here.
    db = OrderDbActivities(engine=None, pricing=None)  # type: ignore[arg-type]  # unused
    payments = StripeActivities(client=None, owner="test")  # type: ignore[arg-type]  # unused
    resume = OrderResumeActivities(None, None, None, "q", None)  # type: ignore[arg-type]
    found: dict[str, Callable[..., Any]] = {}
    for fn in [*db.all(), *payments.all(), *resume.all()]:
        definition = activity._Definition.from_callable(fn)
        assert definition is not None and definition.name, fn
        assert definition.name not in found, f"{definition.name} registered twice"
        found[definition.name] = fn
    return found


def _signature(fn: Callable[..., Any]) -> tuple[list[Any], Any]:
    hints = typing.get_type_hints(fn)
    params = [hints[p] for p in inspect.signature(fn).parameters if p != "self"]
    return params, hints.get("return")


@pytest.mark.parametrize("stub", activity_stubs.ALL, ids=lambda s: s.__name__)
def test_every_stub_has_a_registered_activity_of_the_same_signature(
    stub: Callable[..., Any],
) -> None:
    definition = activity._Definition.from_callable(stub)
    assert definition is not None
    registered = _registered()
    assert definition.name in registered, f"no activity registered as {definition.name}"
    assert _signature(registered[definition.name]) == _signature(stub)


def test_the_worker_registers_no_activity_the_workflow_does_not_declare() -> None:
    declared = {activity._Definition.must_from_callable(s).name for s in activity_stubs.ALL}
    assert set(_registered()) == declared


async def test_a_stub_refuses_to_run_in_place_of_its_activity() -> None:
    with pytest.raises(NotImplementedError, match="stub"):
        await activity_stubs.retrieve_refund("re_1")
