"""The documentation says what the code does: every setting is in .env.example, with its default."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from ecom_dlq_worker.settings import DlqWorkerSettings
from ecom_producer.settings import ProducerSettings
from ecom_shared.settings import ConsumerServiceSettings

ROOT = Path(__file__).resolve().parents[3]
LINE = re.compile(r"^#?\s*(ECOM_[A-Z_]+__[A-Z_]+)=(.*)$")


def documented() -> dict[str, str]:
    found = {}
    for line in (ROOT / ".env.example").read_text(encoding="utf-8").splitlines():
        match = LINE.match(line.strip())
        if match:
            found[match.group(1)] = match.group(2)
    return found


def settings_variables() -> dict[str, object]:
    """Every ``ECOM_*`` variable the services read, with its default (built in a clean env)."""
    variables: dict[str, object] = {}
    for model in (ConsumerServiceSettings(), DlqWorkerSettings(), ProducerSettings()):
        for section_name in type(model).model_fields:
            section = getattr(model, section_name)
            assert isinstance(section, BaseModel)
            for field in type(section).model_fields:
                value = getattr(section, field)
                variables[f"ECOM_{section_name.upper()}__{field.upper()}"] = value
    return variables


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("ECOM_"):
            monkeypatch.delenv(name)


def test_every_setting_is_documented_and_nothing_else() -> None:
    assert set(documented()) == set(settings_variables())


def test_documented_defaults_are_the_real_defaults() -> None:
    docs = documented()
    for name, default in settings_variables().items():
        if default is None:
            assert docs[name] == "", name
            continue
        raw = getattr(default, "get_secret_value", lambda d=default: d)()
        if isinstance(raw, bool):
            text = str(raw).lower()
        elif isinstance(raw, list):
            text = json.dumps(raw)
        else:
            text = str(raw)
        assert docs[name] == text, name
