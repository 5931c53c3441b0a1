"""`.env.example`, made from the Settings class so it cannot drift: every setting, in the
class's order, with the comment written above it there and its default.

    python -m dev.env_example          # rewrite .env.example
    python -m dev.env_example --check  # exit 1 if it differs (tests/unit/test_env_example.py)
"""

from __future__ import annotations

import ast
import inspect
import sys
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from pydantic import SecretStr

from vult.process.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / ".env.example"
HEADER = """\
# Every setting of Vult Orders (vult/process/settings.py), with its default; made by
# `python -m dev.env_example`, do not edit by hand. Copy to .env (never committed) and
# uncomment what you change. `python3 tasks.py run` needs none of it: the local stack sets
# its own. Secrets have no default here: set them in the environment, never in a file
# you commit.
"""


def _iso_duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    time = "".join(f"{n}{unit}" for n, unit in ((hours, "H"), (minutes, "M"), (secs, "S")) if n)
    return "P" + (f"{days}D" if days else "") + (f"T{time}" if time else "") if seconds else "PT0S"


def _is_secret(name: str) -> bool:
    field = Settings.model_fields[name]
    return field.annotation is SecretStr or isinstance(field.default, SecretStr)


def _shown(name: str) -> str:
    field = Settings.model_fields[name]
    if _is_secret(name):
        return ""  # no value in an example file
    if field.default_factory is not None:
        return ""  # computed when unset (said in the comment above it)
    value = field.default
    if isinstance(value, timedelta):
        return _iso_duration(value)
    if isinstance(value, Decimal | int | float | str):
        return str(value)
    return "" if value is None else str(value)


def field_comments() -> dict[str, tuple[list[str], bool]]:
    """field name -> (the comment lines written directly above it in the class, whether
    the field directly follows another field's line with no comment of its own: one
    comment above a group describes the group). Also read by dev/docs_gen.py."""
    source = inspect.getsource(Settings)
    lines = source.splitlines()
    found: dict[str, tuple[list[str], bool]] = {}
    previous: ast.AnnAssign | None = None
    for node in ast.parse(source).body[0].body:  # type: ignore[attr-defined]
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            previous = None
            continue
        above: list[str] = []
        i = node.lineno - 2
        while i >= 0 and lines[i].strip().startswith("#"):
            above.insert(0, lines[i].strip())
            i -= 1
        follows = not above and previous is not None and previous.end_lineno == node.lineno - 1
        found[node.target.id] = (above, follows)
        previous = node
    return found


def _comments() -> dict[str, list[str]]:
    """field name -> the comment lines written directly above it in the class."""
    return {name: above for name, (above, _) in field_comments().items()}


def render() -> str:
    comments = _comments()
    blocks = []
    for name in Settings.model_fields:
        lines = list(comments.get(name, []))
        description = Settings.model_fields[name].description
        if description and not lines:
            lines = [f"# {description}"]
        if Settings.model_fields[name].default_factory is not None:
            lines.append("# Unset: computed when the process starts.")
        if _is_secret(name):
            lines.append(
                "# A secret: set it in the environment or .env, never in a committed file."
            )
        lines.append(f"# {name.upper()}={_shown(name)}")
        blocks.append("\n".join(lines))
    return HEADER + "\n" + "\n\n".join(blocks) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if TARGET.read_text() != text:
            print(f"{TARGET.name} differs from the Settings class: python -m dev.env_example")
            return 1
        return 0
    TARGET.write_text(text)
    print(f"wrote {TARGET.relative_to(ROOT)} ({len(Settings.model_fields)} settings)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
