"""Settings: one model per service, built from ``ECOM_*`` environment variables.

Services read the shared sections they use (``ECOM_PUBSUB__*``, ``ECOM_CASSANDRA__*``,
``ECOM_LOG__*``) so one ``.env`` file configures the whole pipeline; a service adds its own
section (for example ``ECOM_CONSUMER__PULLERS``) and ignores the sections it has no use for.
Long-running services also serve metrics and health on the port ``ECOM_HTTP__*`` gives.
Settings are built in ``main()`` and passed down, never read at import time. The emulator is
chosen by the standard ``PUBSUB_EMULATOR_HOST`` variable, which gcloud-aio reads itself.

Settings are what an operator tunes; how often the services probe, retry and report is fixed
in the code as named constants (:mod:`ecom_shared.runtime.consumer`,
:mod:`ecom_shared.runtime.gate`).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ecom_shared.cassandra.pem import (
    check_private_key_present,
    load_certificates,
    load_private_key,
    same_public_key,
)
from ecom_shared.cassandra.replication import parse_replication
from ecom_shared.runtime.faults import FaultSettings

_CQL_IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,47}$")
_PUBSUB_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9\-_.~+%]{2,254}$")


def _cql_identifier(value: str) -> str:
    """Keyspace and table names go into CQL text, so only plain identifiers are allowed."""
    if not _CQL_IDENTIFIER.fullmatch(value) or value.lower().startswith("system"):
        raise ValueError(f"{value!r} is not a plain CQL identifier (letters, digits, underscore)")
    return value


def _pubsub_name(value: str) -> str:
    if not _PUBSUB_NAME.fullmatch(value) or value.lower().startswith("goog"):
        raise ValueError(
            f"{value!r} is not a valid Pub/Sub name (3-255 chars, starts with a letter)"
        )
    return value


def _certificate(value: str) -> str:
    load_certificates(value)
    return value


def _private_key(value: SecretStr) -> SecretStr:
    check_private_key_present(value.get_secret_value())
    return value


def _replication(value: str) -> str:
    return parse_replication(value).cql()


CqlIdentifier = Annotated[str, AfterValidator(_cql_identifier)]
PubSubName = Annotated[str, AfterValidator(_pubsub_name)]
PemCertificate = Annotated[str, AfterValidator(_certificate)]
PemPrivateKey = Annotated[SecretStr, AfterValidator(_private_key)]
ReplicationMap = Annotated[str, AfterValidator(_replication)]
SslVerify = Literal["none", "peer_cert", "peer_identity", "peer_identity_dns"]
"""What the client checks of a node's certificate: nothing (``none``); that it chains to
``ssl_trusted_cert`` (``peer_cert``); that, and that it names the node's IP address
(``peer_identity``) or its host name found by reverse DNS (``peer_identity_dns``)."""


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PubSubSettings(_Section):
    """Where messages come from and go to."""

    project_id: str = "local-project"
    orders_topic: PubSubName = "orders"
    payments_topic: PubSubName = "payments"
    dlq_payments_topic: PubSubName = "dlq-payments"
    dead_letter_topic: PubSubName = "dead-letter"
    orders_subscription: PubSubName = "orders-sub"
    payments_subscription: PubSubName = "payments-sub"
    dlq_payments_subscription: PubSubName = "dlq-payments-sub"
    dead_letter_subscription: PubSubName = "dead-letter-sub"
    ack_deadline_seconds: int = Field(default=60, ge=10, le=600)
    max_delivery_attempts: int = Field(default=20, ge=5, le=100)
    request_timeout_seconds: float = Field(default=30.0, gt=0, le=120)

    @classmethod
    def suffixed(cls, tag: str, **values: Any) -> PubSubSettings:
        """Every topic and subscription name with ``-tag`` appended, for isolated copies of
        the pipeline side by side (tests, the benchmark); ``values`` set the other fields."""
        defaults = cls()
        names = {
            name: f"{getattr(defaults, name)}-{tag}"
            for name in cls.model_fields
            if name.endswith(("_topic", "_subscription"))
        }
        return cls(**names, **values)


class CassandraSettings(_Section):
    """How to reach Cassandra, how to prove who we are, and where the tables live.

    TLS material (CA, client certificate, client key) is PEM text or the path of a PEM file.
    """

    contact_points: list[str] = Field(default_factory=lambda: ["127.0.0.1"], min_length=1)
    port: int = Field(default=9042, ge=1, le=65535)
    local_dc: str | None = Field(default=None, min_length=1)
    username: str | None = Field(default=None, min_length=1)
    password: SecretStr | None = None
    ssl_enabled: bool = False
    ssl_trusted_cert: PemCertificate | None = Field(
        default=None, description="CA certificate(s) the nodes' certificates must chain to"
    )
    ssl_verify: SslVerify = Field(
        default="peer_cert", description="how the nodes' certificates are checked"
    )
    ssl_cert: PemCertificate | None = Field(
        default=None, description="client certificate chain, for nodes that require one"
    )
    ssl_private_key: PemPrivateKey | None = Field(
        default=None, description="the client certificate's private key"
    )
    ssl_private_key_password: SecretStr | None = None
    keyspace: CqlIdentifier = "ecom_store"
    orders_table: CqlIdentifier = "order_payments"
    dlq_table: CqlIdentifier = "payments_dlq"
    replication: ReplicationMap = Field(
        default="{'class': 'SimpleStrategy', 'replication_factor': 1}",
        description="CQL replication map used when the keyspace is created",
    )
    consistency: Literal["ONE", "LOCAL_ONE", "QUORUM", "LOCAL_QUORUM", "ALL"] = "LOCAL_QUORUM"
    request_timeout_seconds: float = Field(default=5.0, gt=0, le=120)
    connect_timeout_seconds: float = Field(default=5.0, gt=0, le=120)
    startup_timeout_seconds: float = Field(
        default=120.0, ge=0, le=3600, description="how long start-up keeps trying to connect"
    )

    @model_validator(mode="after")
    def _credentials_come_in_pairs(self) -> CassandraSettings:
        if (self.username is None) != (self.password is None):
            raise ValueError("set both cassandra username and password, or neither")
        return self

    @model_validator(mode="after")
    def _tls_is_consistent(self) -> CassandraSettings:
        check_tls(self)
        return self

    @model_validator(mode="after")
    def _local_dc_holds_replicas(self) -> CassandraSettings:
        if self.local_dc and not parse_replication(self.replication).has_replicas_in(self.local_dc):
            raise ValueError(
                f"local_dc {self.local_dc!r} holds no replicas under replication "
                f"{self.replication}; give it a factor there (e.g. '{self.local_dc}': 3)"
            )
        return self


def check_tls(settings: CassandraSettings) -> None:
    """Raise ValueError if the TLS settings contradict each other."""
    s = settings
    extras = {
        "ssl_trusted_cert": s.ssl_trusted_cert is not None,
        "ssl_verify": s.ssl_verify != "peer_cert",
        "ssl_cert": s.ssl_cert is not None,
        "ssl_private_key": s.ssl_private_key is not None,
        "ssl_private_key_password": s.ssl_private_key_password is not None,
    }
    given = [name for name, is_set in extras.items() if is_set]
    if given and not s.ssl_enabled:
        raise ValueError(f"{', '.join(given)} set but ssl_enabled is false: enable TLS or unset")
    if (s.ssl_cert is None) != (s.ssl_private_key is None):
        raise ValueError("set both ssl_cert and ssl_private_key (a client certificate), or neither")
    if s.ssl_enabled and s.ssl_verify != "none" and s.ssl_trusted_cert is None:
        raise ValueError(
            f"ssl_verify {s.ssl_verify} needs ssl_trusted_cert, the CA that signed the nodes' "
            "certificates (the driver does not read the system's CA store)"
        )
    _check_client_key(s)


def _check_client_key(settings: CassandraSettings) -> None:
    """The key decrypts with its password and belongs to the client certificate."""
    key, password = settings.ssl_private_key, settings.ssl_private_key_password
    if key is None or settings.ssl_cert is None:
        if password is not None:
            raise ValueError("ssl_private_key_password is set but ssl_private_key is not")
        return
    secret = password.get_secret_value() if password is not None else None
    loaded = load_private_key(key.get_secret_value(), secret)
    if not same_public_key(load_certificates(settings.ssl_cert)[0], loaded):
        raise ValueError("ssl_private_key does not belong to ssl_cert (their public keys differ)")


class LogSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    json_output: bool = Field(default=True, description="false renders for a terminal")


class HttpSettings(_Section):
    """The one small HTTP port a long-running service serves ``/metrics``, ``/livez`` and
    ``/readyz`` on, from its own event loop."""

    enabled: bool = Field(default=True, description="false serves no port at all")
    host: str = Field(default="0.0.0.0", min_length=1)  # noqa: S104 - a container's probe port
    port: int = Field(default=8000, ge=0, le=65535, description="0 picks a free port and logs it")


class ConsumerSettings(_Section):
    """How a consumer pulls: ``pullers`` loops, each with one batch of up to ``max_messages``;
    at most ``max_in_flight`` messages are being written at any moment, fewer for a while after
    Cassandra failed to answer (:mod:`ecom_shared.runtime.limit`)."""

    pullers: int = Field(default=8, ge=1, le=64)
    max_messages: int = Field(default=1000, ge=1, le=1000)
    max_in_flight: int = Field(default=512, ge=1, le=8192)
    min_in_flight: int = Field(
        default=16,
        ge=1,
        le=8192,
        description="where the in-flight limit starts over when Cassandra fails to answer "
        "(it then grows by one per message written, back to max_in_flight)",
    )
    retry_delay_seconds: int = Field(
        default=10, ge=0, le=600, description="how long a failed message waits to be redelivered"
    )
    shutdown_grace_seconds: float = Field(default=20.0, gt=0, le=600)
    max_event_time_ahead_seconds: float = Field(
        default=3600.0,
        ge=0,
        le=7 * 86400,
        description="how far after its message's publishTime an event time (updated_at, "
        "payment_datetime, creation_date) may lie; a later one is refused (invalid_value)",
    )

    @property
    def max_event_time_ahead(self) -> timedelta:
        return timedelta(seconds=self.max_event_time_ahead_seconds)

    @model_validator(mode="after")
    def _in_flight_floor_fits(self) -> ConsumerSettings:
        if self.min_in_flight > self.max_in_flight:
            raise ValueError(
                f"consumer min_in_flight ({self.min_in_flight}) must not exceed max_in_flight "
                f"({self.max_in_flight})"
            )
        return self


_FROM_THE_ENVIRONMENT = SettingsConfigDict(
    env_prefix="ECOM_",
    env_nested_delimiter="__",
    frozen=True,
    extra="forbid",
)


class PubSubServiceSettings(BaseSettings):
    """What a service that works on Pub/Sub alone reads (the producer, which never touches
    Cassandra): Pub/Sub, logging and its HTTP port."""

    model_config = _FROM_THE_ENVIRONMENT

    pubsub: PubSubSettings = Field(default_factory=PubSubSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)


class StoreServiceSettings(BaseSettings):
    """What a service that works on the tables alone reads (the DLQ worker): Cassandra,
    logging and its HTTP port. Services subclass it and add their own section."""

    model_config = _FROM_THE_ENVIRONMENT

    cassandra: CassandraSettings = Field(default_factory=CassandraSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)


class ServiceSettings(StoreServiceSettings):
    """What a service of the stream reads: Pub/Sub as well."""

    pubsub: PubSubSettings = Field(default_factory=PubSubSettings)


class ConsumerServiceSettings(ServiceSettings):
    """Settings of the order and payment consumers."""

    consumer: ConsumerSettings = Field(default_factory=ConsumerSettings)
    # For the fault-injection tests only: ecom_shared.runtime.faults.
    faults: FaultSettings = Field(default_factory=FaultSettings)
