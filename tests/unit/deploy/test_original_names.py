"""The example env file that runs the product on the original project's names: every variable a
setting the services accept, and Compose passing each to every service that reads it."""

from __future__ import annotations

import os
import re

import pytest
from pydantic import BaseModel

from ecom_shared.settings import ServiceSettings
from tests.compose_files import BASE_FILE, ROOT, environment, merged

ORIGINAL_NAMES = ROOT / "examples" / "original-names.env"
ORIGINAL = {
    "ECOM_PUBSUB__PROJECT_ID": "spark-393408",
    "ECOM_PUBSUB__ORDERS_TOPIC": "orders_data",
    "ECOM_PUBSUB__PAYMENTS_TOPIC": "payments_data",
    "ECOM_PUBSUB__DLQ_PAYMENTS_TOPIC": "dlq_payments_data",
    "ECOM_PUBSUB__ORDERS_SUBSCRIPTION": "orders_data-sub",
    "ECOM_PUBSUB__PAYMENTS_SUBSCRIPTION": "payments_data-sub",
    "ECOM_CASSANDRA__KEYSPACE": "ecom_store",
    "ECOM_CASSANDRA__ORDERS_TABLE": "orders_payments_facts",
}


# A line that Compose's env-file reader and a POSIX shell read alike: no quotes, no spaces,
# no expansion, no inline comment.
PLAIN_LINE = re.compile(r"^([A-Z][A-Z0-9_]*)=([A-Za-z0-9_.:/@+-]*)$")


def original_names() -> dict[str, str]:
    values = {}
    for line in ORIGINAL_NAMES.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        match = PLAIN_LINE.fullmatch(line)
        assert match, line
        values[match.group(1)] = match.group(2)
    return values


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith("ECOM_") or name == "PUBSUB_EMULATOR_HOST":
            monkeypatch.delenv(name)
    return monkeypatch


def test_the_env_file_names_the_original_topics_keyspace_and_table() -> None:
    values = original_names()
    assert {name: values.get(name) for name in ORIGINAL} == ORIGINAL


def test_every_variable_in_the_env_file_is_a_setting_the_services_accept(
    clean_environment: pytest.MonkeyPatch,
) -> None:
    values = original_names()
    for variable, value in values.items():
        section, _, field = variable.removeprefix("ECOM_").lower().partition("__")
        model = ServiceSettings.model_fields[section].annotation
        assert isinstance(model, type), variable
        assert issubclass(model, BaseModel), variable
        assert field in model.model_fields, variable
        clean_environment.setenv(variable, value)
    settings = ServiceSettings()
    assert settings.pubsub.project_id == "spark-393408"
    assert settings.pubsub.orders_subscription == "orders_data-sub"
    assert settings.cassandra.orders_table == "orders_payments_facts"
    names = [getattr(settings.pubsub, f) for f in type(settings.pubsub).model_fields]
    topics_and_subscriptions = [n for n in names if isinstance(n, str) and n != "spark-393408"]
    assert len(set(topics_and_subscriptions)) == len(topics_and_subscriptions) == 8


def test_compose_passes_every_variable_of_the_env_file_to_every_service() -> None:
    """To every service that reads its section: the DLQ worker and the report have no Pub/Sub
    section, the producer no Cassandra section."""
    values = original_names()
    services = merged(BASE_FILE)["services"]
    ours = {n: s for n, s in services.items() if s.get("build", {}).get("context") == "."}
    assert ours
    for name, service in ours.items():
        env = environment(service, values)
        for variable, value in values.items():
            if name in ("dlq-worker", "report") and variable.startswith("ECOM_PUBSUB__"):
                assert variable not in env, (name, variable)
                continue
            if name == "producer" and variable.startswith("ECOM_CASSANDRA__"):
                assert variable not in env, (name, variable)
                continue
            assert variable in env, (name, variable)
            # None: passed through from the env file (Compose v2 reads --env-file for it).
            assert env[variable] in (None, value), (name, variable)
