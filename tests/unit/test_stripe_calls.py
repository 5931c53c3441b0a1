"""Every Stripe request is typed by the SDK: its params types are Stripe's spec for the API
version the locked `stripe` package pins, so a parameter that version does not declare is
a type error. A `type: ignore` on a Stripe call silences exactly that (it once hid
`payment_method_types`, which Stripe refuses at the pinned version), so none is allowed,
anywhere in the project's Python."""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

from vult.process.stripe_client import API_RELEASE, API_VERSION

ROOT = Path(__file__).resolve().parents[2]


def _stripe_call(call: ast.Call) -> bool:
    """A request through the SDK (`client.v1.<service>.<method>(...)`) or anything else of
    the `stripe` module (`stripe.Webhook.construct_event(...)`, `stripe.AIOHTTPClient()`)."""
    callee = ast.unparse(call.func)
    return ".v1." in callee or callee.startswith("stripe.")


def ignored_stripe_calls(source: str, name: str = "<source>") -> list[str]:
    """`name:line` for each line of a Stripe call (its arguments included) that carries a
    `type: ignore`."""
    lines = source.splitlines()
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and _stripe_call(node):
            end = node.end_lineno or node.lineno
            for number in range(node.lineno, end + 1):
                if "type: ignore" in lines[number - 1]:
                    found.append(f"{name}:{number}")
    return sorted(set(found))


def _project_python() -> list[Path]:
    tracked = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [ROOT / name for name in tracked if (ROOT / name).exists()]


def test_no_stripe_call_in_the_project_silences_the_type_checker() -> None:
    found = []
    for path in _project_python():
        source = path.read_text()
        found += ignored_stripe_calls(source, str(path.relative_to(ROOT)))
    assert found == []


def test_a_silenced_stripe_call_is_found_on_any_line_of_the_call() -> None:
    source = (
        "async def create(client, params):\n"
        "    return await client.v1.payment_intents.create_async(\n"
        "        params={'payment_method_types': ['card']},  # type: ignore[typeddict-item]\n"
        "    )\n"
        "def verify(body, header):\n"
        "    return stripe.Webhook.construct_event(body, header, 'whsec')  # type: ignore\n"
        "def other(x):\n"
        "    return len(x)  # type: ignore[arg-type]\n"
    )
    assert ignored_stripe_calls(source) == ["<source>:3", "<source>:6"]


def test_the_service_speaks_the_locked_sdks_api_version() -> None:
    import stripe

    assert API_VERSION == stripe.api_version
    assert API_VERSION.endswith(f".{API_RELEASE}") and API_RELEASE.isalpha()
