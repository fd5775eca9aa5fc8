"""Settings from the environment, and the one error policy."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ecom_shared.errors import CassandraConfigError, InvalidMessage, PublishFailed, StoreUnavailable
from ecom_shared.policy import Action, decide
from ecom_shared.runtime.service import load_settings
from ecom_shared.settings import CassandraSettings, ConsumerServiceSettings, PubSubSettings


def test_settings_come_from_prefixed_nested_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ECOM_PUBSUB__PROJECT_ID", "shop-prod")
    monkeypatch.setenv("ECOM_CASSANDRA__CONTACT_POINTS", '["10.0.0.1", "10.0.0.2"]')
    monkeypatch.setenv("ECOM_CASSANDRA__USERNAME", "pipeline")
    monkeypatch.setenv("ECOM_CASSANDRA__PASSWORD", "s3cret-value")
    monkeypatch.setenv("ECOM_CONSUMER__PULLERS", "8")
    settings = ConsumerServiceSettings()
    assert settings.pubsub.project_id == "shop-prod"
    assert settings.cassandra.contact_points == ["10.0.0.1", "10.0.0.2"]
    assert settings.consumer.pullers == 8
    assert "s3cret-value" not in repr(settings)


@pytest.mark.parametrize("name", ["ecom; DROP", "system_auth", "1abc", ""])
def test_table_names_must_be_plain_identifiers(name: str) -> None:
    with pytest.raises(ValidationError):
        CassandraSettings(keyspace=name)


def test_pubsub_names_follow_pubsub_rules() -> None:
    with pytest.raises(ValidationError):
        PubSubSettings(orders_topic="t1")
    with pytest.raises(ValidationError):
        PubSubSettings(orders_topic="goog-orders")


def test_credentials_come_in_pairs() -> None:
    with pytest.raises(ValidationError):
        CassandraSettings(username="only-user")


def test_unknown_setting_is_refused() -> None:
    with pytest.raises(ValidationError):
        PubSubSettings(project="typo")  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("exc", "action", "dependency", "reason"),
    [
        (InvalidMessage("invalid_json", "x"), Action.DEAD_LETTER, None, "invalid_json"),
        (StoreUnavailable("x"), Action.RETRY, "cassandra", "StoreUnavailable"),
        (
            StoreUnavailable("x", driver_error="CassErrorServerWriteFailure"),
            Action.RETRY,
            "cassandra",
            "cassandra:CassErrorServerWriteFailure",
        ),
        (PublishFailed("x"), Action.RETRY, "pubsub", "PublishFailed"),
        (CassandraConfigError("x"), Action.RETRY, None, "CassandraConfigError"),
        (RuntimeError("bug"), Action.RETRY, None, "unexpected:RuntimeError"),
    ],
)
def test_error_policy(exc: Exception, action: Action, dependency: str | None, reason: str) -> None:
    decision = decide(exc)
    assert decision.action is action
    assert decision.dependency == dependency
    assert decision.reason == reason


def test_bad_settings_exit_2_naming_the_variable_not_its_value(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ECOM_CONSUMER__PULLERS", "0")
    monkeypatch.setenv("ECOM_CASSANDRA__PASSWORD", "hunter2-secret")
    with pytest.raises(SystemExit) as exited:
        load_settings(ConsumerServiceSettings)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "ECOM_CONSUMER__PULLERS" in err
    assert "hunter2-secret" not in err


def test_suffixed_names_every_topic_and_subscription_and_nothing_else() -> None:
    pubsub = PubSubSettings.suffixed("run7", project_id="p", ack_deadline_seconds=10)
    assert pubsub.orders_topic == "orders-run7"
    assert pubsub.dead_letter_subscription == "dead-letter-sub-run7"
    names = [n for n in PubSubSettings.model_fields if n.endswith(("_topic", "_subscription"))]
    assert len(names) == 8
    assert all(getattr(pubsub, n).endswith("-run7") for n in names)
    assert (pubsub.project_id, pubsub.ack_deadline_seconds) == ("p", 10)
