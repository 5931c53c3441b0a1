"""The documents made from code (dev/docs_gen.py) are the ones the code makes today: the
OpenAPI document (`openapi.json` in docs/) and the settings reference (docs/settings.md)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from dev import docs_gen, event_examples
from vult.process.settings import Settings

RUN = "differs from what the code makes: run `python3 tasks.py docs` and commit the result"


@pytest.mark.parametrize(
    ("target", "render"),
    [
        (docs_gen.OPENAPI, docs_gen.render_openapi),
        (docs_gen.SETTINGS, docs_gen.render_settings),
        (docs_gen.EVENT_EXAMPLES, event_examples.render_examples),
    ],
    ids=["openapi.json", "settings.md", "event-examples.md"],
)
def test_the_committed_document_is_the_one_the_code_makes(
    target: Path, render: Callable[[], str]
) -> None:
    assert target.exists(), f"{target.name} is missing: run `python3 tasks.py docs`"
    assert target.read_text(encoding="utf-8") == render(), f"{target.name} {RUN}"


def test_the_openapi_document_names_every_route_of_the_api() -> None:
    paths = json.loads(docs_gen.render_openapi())["paths"]
    for path in ("/api/orders", "/api/orders/{order_id}", "/api/webhooks/stripe"):
        assert path in paths, sorted(paths)


def test_every_setting_has_a_row_and_a_description() -> None:
    rows = [line for line in docs_gen.render_settings().splitlines() if line.startswith("| `")]
    assert [row.split("`")[1] for row in rows] == [n.upper() for n in Settings.model_fields]
    assert all(not row.endswith("|  |") for row in rows), "a setting without a description"
