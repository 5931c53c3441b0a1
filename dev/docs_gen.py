"""The documents made from code, so they cannot drift: the HTTP API's OpenAPI document
(`openapi.json` in docs/, from the FastAPI app) and the settings reference (docs/settings.md,
from the Settings class, with the comment written above each setting there).

    python3 tasks.py docs   # rewrite both (tests/unit/test_generated_docs.py compares them)
"""

from __future__ import annotations

import json
import sys
import typing
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from dev.env_example import _iso_duration, field_comments
from dev.event_examples import render_examples
from vult.process.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
OPENAPI = ROOT / "docs" / "openapi.json"
SETTINGS = ROOT / "docs" / "settings.md"
EVENT_EXAMPLES = ROOT / "docs" / "event-examples.md"


class _Defaults(Settings):
    """The Settings with their defaults only: nothing from this shell or a `.env` file."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def render_openapi() -> str:
    """The document the API serves at /openapi.json, keys sorted, indented by two."""
    from api.app import create_app  # the API's imports only when this document is made

    document = create_app(_Defaults()).openapi()
    return json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


_SETTINGS_HEADER = """\
# Settings

<!-- Made by `python3 tasks.py docs` (dev/docs_gen.py) from vult/process/settings.py:
do not edit by hand. -->

Every setting of Vult Orders, in the order of the Settings class
(vult/process/settings.py), read from the environment or a `.env` file; the description is
the comment written above the setting there. `.env.example` lists the same settings as a
file to copy. `python3 tasks.py run` needs none of them: the local stack sets its own.
Durations are ISO 8601 (`PT15M`, `P3D`). A secret's default is not shown: set it in the
environment, never in a committed file (production refuses to start without each).

| variable | type | default | what it does |
| --- | --- | --- | --- |
"""


def _described() -> dict[str, tuple[str, str | None]]:
    """field name -> (the comment above it, joined; the first field of its group when the
    field has no comment of its own and follows another on the next line)."""
    found: dict[str, tuple[str, str | None]] = {}
    leader: str | None = None
    for name, (above, grouped) in field_comments().items():
        if not grouped:
            leader = name
        text = " ".join(line.removeprefix("#").strip() for line in above)
        found[name] = (text, leader if grouped else None)
    return found


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _value(value: object) -> str:
    return _iso_duration(value) if isinstance(value, timedelta) else str(value)


def _type(field: FieldInfo) -> str:
    annotation = field.annotation
    if typing.get_origin(annotation) is typing.Literal:
        return " \\| ".join(f"`{choice}`" for choice in typing.get_args(annotation))
    names: dict[Any, str] = {
        str: "text",
        int: "integer",
        float: "number",
        Decimal: "decimal",
        timedelta: "duration",
        SecretStr: "secret",
    }
    kind = names.get(annotation, getattr(annotation, "__name__", str(annotation)))
    # pydantic keeps Field's bounds as annotated-types objects, one attribute each.
    bound = {
        attribute: getattr(limit, attribute)
        for limit in field.metadata
        for attribute in ("ge", "gt", "le", "min_length", "max_length")
        if getattr(limit, attribute, None) is not None
    }
    limits = [
        shown.format(_value(bound[attribute]))
        for attribute, shown in (("ge", "≥ {}"), ("gt", "> {}"), ("le", "≤ {}"))
        if attribute in bound
    ]
    shortest, longest = bound.get("min_length"), bound.get("max_length")
    if shortest is not None and longest is not None:
        limits.append(f"{shortest} to {longest} characters")
    elif shortest is not None or longest is not None:
        limits.append(
            f"at least {shortest} characters" if shortest else f"at most {longest} characters"
        )
    return kind + (f" ({', '.join(limits)})" if limits else "")


def _default(field: FieldInfo) -> str:
    if field.annotation is SecretStr:
        return "(secret)"
    if field.default_factory is not None:
        return "computed when the process starts"
    shown = _value(field.default)
    return f"`{shown}`" if shown else "empty"


def render_settings() -> str:
    """docs/settings.md: one row per setting."""
    described = _described()
    rows = []
    for name, field in Settings.model_fields.items():
        comment, leader = described.get(name, ("", None))
        text = comment or field.description or ""
        if not text and leader:
            text = f"See `{leader.upper()}` above."
        rows.append(
            f"| `{name.upper()}` | {_type(field)} | {_cell(_default(field))} | {_cell(text)} |"
        )
    return _SETTINGS_HEADER + "\n".join(rows) + "\n"


def main(argv: list[str]) -> int:
    del argv  # no options
    for target, text in (
        (OPENAPI, render_openapi()),
        (SETTINGS, render_settings()),
        (EVENT_EXAMPLES, render_examples()),
    ):
        target.write_text(text, encoding="utf-8")
        print(f"wrote {target.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
