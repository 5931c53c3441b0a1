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

from activities.event_delivery import EventDeliveryActivities
from activities.order_db import OrderDbActivities
from activities.order_events import Outbox
from activities.order_resume import OrderResumeActivities
from activities.stripe_payments import StripeActivities
from workflows import declared_activities as declared

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ("vult", "workflows", "activities", "api", "worker", "dev")
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


def _registered() -> list[Callable[..., Any]]:
    """What the worker registers (worker.py: `declared.registered`). The constructors only
    keep what they are given; nothing is called here."""
    db = OrderDbActivities(engine=None, pricing=None)  # type: ignore[arg-type]  # unused
    payments = StripeActivities(client=None, owner="test")  # type: ignore[arg-type]  # unused
    resume = OrderResumeActivities(None, None, None, "q", None)  # type: ignore[arg-type]
    delivery = EventDeliveryActivities(None, [], None, 1.0, Outbox())  # type: ignore[arg-type]
    return declared.registered(
        {
            declared.ORDER_DB: db,
            declared.STRIPE: payments,
            declared.RESUME: resume,
            declared.DELIVERY: delivery,
        }
    )


def _signature(fn: Callable[..., Any]) -> tuple[list[Any], Any]:
    hints = typing.get_type_hints(fn)
    params = [hints[p] for p in inspect.signature(fn).parameters if p != "self"]
    return params, hints.get("return", type(None))


@pytest.mark.parametrize("spec", declared.ALL, ids=lambda d: d.name)
def test_each_declared_activity_is_implemented_under_its_name_with_its_signature(
    spec: Any,
) -> None:
    implementation = next(fn for fn in _registered() if fn.__name__ == spec.name)
    definition = activity._Definition.from_callable(implementation)
    assert definition is not None and definition.name == spec.name
    output = type(None) if spec.output is type(None) else spec.output
    assert _signature(implementation) == ([spec.input], output)


def test_every_activity_declared_is_in_the_list_the_worker_registers() -> None:
    """A declaration left out of `ALL` is never registered: its first call hangs, retried
    for ever on a worker that does not know it."""
    module_level = {v.name for v in vars(declared).values() if isinstance(v, declared._Declared)}
    assert module_level == {d.name for d in declared.ALL}


def test_the_worker_registers_each_declared_activity_once() -> None:
    names = [str(activity._Definition.must_from_callable(fn).name) for fn in _registered()]
    assert sorted(names) == sorted({d.name for d in declared.ALL})
    assert len(names) == len(set(names)) == len(declared.ALL)


# The packages whose imports must form layers, each importing only those below it.
_PACKAGES = (
    "vult.domain",
    "vult.db",
    "vult.wire",
    "vult.process",
    "vult.temporal",
    "workflows",
    "activities",
    "api",
)


def _package_of(module: str) -> str | None:
    return next((p for p in _PACKAGES if module == p or module.startswith(f"{p}.")), None)


def _package_imports() -> dict[str, set[str]]:
    """package -> the other packages its modules import (at any depth, lazily or not)."""
    import ast

    graph: dict[str, set[str]] = {p: set() for p in _PACKAGES}
    for package in _PACKAGES:
        for path in (ROOT / package.replace(".", "/")).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names: list[str] = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    names = [node.module]
                for name in names:
                    other = _package_of(name)
                    if other and other != package:
                        graph[package].add(other)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        for nxt in sorted(graph[node]):
            if found := visit(nxt, [*path, node]):
                return found
        done.add(node)
        return None

    return next((c for p in sorted(graph) if (c := visit(p, []))), None)


def test_no_two_packages_import_each_other() -> None:
    graph = _package_imports()
    assert "vult.process" in graph["vult.temporal"]  # the scan sees imports
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_the_cycle_check_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


# One line of each kind the workflow lint (workflows/ruff.toml) must refuse.
_NONDETERMINISTIC = {
    "import time\n": "TID251",
    "import random\n": "TID251",
    "import threading\n": "TID251",
    "import socket\n": "TID251",
    "import os\n": "TID251",
    "from datetime import datetime\nx = datetime.now()\n": "TID251",
    "import uuid\nx = uuid.uuid4()\n": "TID251",
    "from vult.db import models\n": "TID251",
    "from activities import order_db\n": "TID251",
    "print('x')\n": "T201",
}


def _ruff_on_workflow_code(source: str) -> str:
    ruff = Path(sys.executable).parent / "ruff"
    return subprocess.run(
        [
            str(ruff),
            "check",
            "--output-format",
            "concise",
            "--stdin-filename",
            "workflows/probe.py",
            "-",
        ],
        cwd=ROOT,
        input=source,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout


@pytest.mark.parametrize("source", list(_NONDETERMINISTIC), ids=lambda s: s.split("\n")[0])
def test_the_workflow_lint_refuses_clock_randomness_threads_and_io(source: str) -> None:
    assert _NONDETERMINISTIC[source] in _ruff_on_workflow_code(source)


def test_the_workflow_lint_lets_workflow_code_through() -> None:
    source = "from temporalio import workflow\n\n\ndef f() -> object:\n    return workflow.now()\n"
    assert _ruff_on_workflow_code(source).strip() == "All checks passed!"


_BUILTIN_IO = {"open", "input", "print", "eval", "exec", "breakpoint", "__import__"}


def test_workflow_code_calls_no_io_builtin() -> None:
    """What the lint cannot name (builtins), read from the tree."""
    import ast

    calls = {
        (path.name, node.lineno, node.func.id)
        for path in sorted((ROOT / "workflows").rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _BUILTIN_IO
    }
    assert not calls, sorted(calls)


def test_tests_take_shared_helpers_from_the_support_package_only() -> None:
    """A test module imports no other test module and no conftest: what tests share lives
    in tests/support/."""
    import ast

    offending = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        if "support" in path.relative_to(ROOT).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                module = node.module
            elif isinstance(node, ast.Import):
                module = next((a.name for a in node.names if a.name.startswith("tests")), "")
            else:
                continue
            if module.startswith("tests.") and not module.startswith("tests.support"):
                offending.append(f"{path.relative_to(ROOT)}: {module}")
    assert not offending, offending


def test_workflow_code_keeps_no_mutable_state_outside_its_instances() -> None:
    """The sandbox passes the workflow package through (imported once, not per run): a
    module-level or class-level list, dict or set would be shared by every order's run.
    Constants are tuples, frozensets or immutable values."""
    import ast

    mutable = (ast.List, ast.Dict, ast.Set, ast.ListComp, ast.DictComp, ast.SetComp)
    found = []
    for path in sorted((ROOT / "workflows").rglob("*.py")):
        tree = ast.parse(path.read_text())
        scopes = [tree.body] + [n.body for n in tree.body if isinstance(n, ast.ClassDef)]
        for body in scopes:
            for node in body:
                value = node.value if isinstance(node, ast.Assign | ast.AnnAssign) else None
                func = value.func if isinstance(value, ast.Call) else None
                made = isinstance(func, ast.Name) and func.id in ("list", "dict", "set")
                if isinstance(value, mutable) or made:
                    found.append(f"{path.name}:{node.lineno}")
    assert not found, found
