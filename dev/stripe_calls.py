"""Refuses a `type: ignore` on any Stripe call in the project's Python (run by
`python3 tasks.py lint`, and by tests/unit/test_stripe_calls.py).

Every Stripe request is typed by the SDK: its params types are Stripe's spec for the API
version the locked `stripe` package pins, so a parameter that version does not declare is
a type error. A `type: ignore` on a Stripe call silences exactly that (it once hid
`payment_method_types`, which Stripe refuses at the pinned version).

    python -m dev.stripe_calls     # exit 1, naming each file:line, when one is found
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


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


def project_python() -> list[Path]:
    """The project's Python files, as git sees them (tracked, or new and not ignored)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [ROOT / name for name in listed if (ROOT / name).exists()]


def scan() -> list[str]:
    found = []
    for path in project_python():
        found += ignored_stripe_calls(path.read_text(), str(path.relative_to(ROOT)))
    return found


def main() -> int:
    found = scan()
    for place in found:
        print(f"{place}: a `type: ignore` on a Stripe call (build the SDK's params type)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
