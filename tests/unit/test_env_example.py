"""`.env.example` is made from the Settings class (dev/env_example.py) and cannot drift."""

from __future__ import annotations

import re
from datetime import timedelta

from dev import env_example
from vult.process.settings import Settings


def test_the_committed_example_is_the_one_the_settings_make() -> None:
    assert env_example.TARGET.read_text() == env_example.render(), "run: python -m dev.env_example"


def test_every_setting_is_in_the_example_once() -> None:
    names = re.findall(r"^# ([A-Z0-9_]+)=", env_example.render(), flags=re.MULTILINE)
    assert names == [n.upper() for n in Settings.model_fields]


def test_no_secret_has_a_value_in_the_example() -> None:
    text = env_example.render()
    for name in (
        "STRIPE_SECRET_KEY",
        "STRIPE_WEBHOOK_SECRET",
        "OPS_API_TOKEN",
        "CODEC_AUTH_TOKEN",
        "PAYLOAD_ENCRYPTION_KEYS",
    ):
        assert f"# {name}=\n" in text, name
    assert not re.search(r"(sk|rk)_(live|test)_|whsec_[A-Za-z0-9]", text)


def test_durations_are_written_as_the_settings_read_them() -> None:
    text = env_example.render()
    for name, shown in (("RETURN_WINDOW", "P30D"), ("ORDER_SWEEP_INTERVAL", "PT5M")):
        assert f"# {name}={shown}\n" in text
    for value in (timedelta(days=30), timedelta(minutes=5), timedelta(hours=1, seconds=30)):
        written = env_example._iso_duration(value)
        assert Settings(_env_file=None, payment_window=written).payment_window == value
