"""``--engine spark``: the same figures computed by Spark SQL, reading the tables through the
Spark Cassandra Connector, in ``local[*]`` by default and on any cluster by ``--master``.

The pair: PySpark 4.3.0 (Scala 2.13, runs on JDK 17) with
``com.datastax.spark:spark-cassandra-connector_2.13:3.5.1``, the newest connector release; it
reads our tables through Spark 4.3's data source API (checked here in local mode against
Cassandra 5.0, and by the tests, which compare this engine's figures with the embedded
engine's). The connector's jars come from ``spark_jars`` (a list of jar files, such as the
folder ``ecom_devtools.local.spark`` fills with Maven), else Spark resolves them by their
coordinates (``spark.jars.packages``), leaving out the jars Spark ships itself.

Spark's decimal arithmetic is made exact or failing (:data:`EXACT_DECIMALS`), so that its
figures equal the embedded engine's to the last digit: by default Spark would cut
``DECIMAL(38, 18) * INT`` to 7 places and turn an overflowing sum into NULL.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from ecom_report.figures import Figures, compute
from ecom_shared.settings import CassandraSettings

SPARK_VERSION: Final = "4.3.0"
"""The PySpark the connector is paired with (pinned in ``requirements/dev.in`` too)."""
SCALA_BINARY_VERSION: Final = "2.13"
CONNECTOR_GROUP: Final = "com.datastax.spark"
CONNECTOR_ARTIFACT: Final = f"spark-cassandra-connector_{SCALA_BINARY_VERSION}"
CONNECTOR_VERSION: Final = "3.5.1"
CONNECTOR_PACKAGE: Final = f"{CONNECTOR_GROUP}:{CONNECTOR_ARTIFACT}:{CONNECTOR_VERSION}"
SHIPPED_WITH_SPARK: Final = (
    "org.scala-lang:scala-library",
    "org.scala-lang:scala-reflect",
    f"org.scala-lang.modules:scala-parallel-collections_{SCALA_BINARY_VERSION}",
    "org.slf4j:slf4j-api",
    "org.apache.commons:commons-lang3",
    "io.dropwizard.metrics:metrics-core",
    "com.thoughtworks.paranamer:paranamer",
)
"""Dependencies of the connector that Spark ships newer copies of; not fetched."""
CASSANDRA_FORMAT: Final = "org.apache.spark.sql.cassandra"
DEFAULT_MASTER: Final = "local[*]"

EXACT_DECIMALS: Final[Mapping[str, str]] = {
    # A decimal product or sum keeps its scale (DECIMAL(38, 18) * INT stays DECIMAL(38, 18))
    # instead of giving up places to make room for integer digits.
    "spark.sql.decimalOperations.allowPrecisionLoss": "false",
    # A value that does not fit its type raises instead of becoming NULL.
    "spark.sql.ansi.enabled": "true",
}

_ORDERS_VIEW: Final = (
    "SELECT order_id, customer_id, item, quantity, CAST(price AS DECIMAL(38, 18)) AS price, "
    "order_status, unix_millis(order_created_at) AS created_ms, "
    "COALESCE(order_created_on, to_date(order_created_at)) AS created_on, payment_id, "
    "payment_method, payment_status, unix_millis(paid_at) AS paid_ms, payment_source "
    "FROM source_orders"
)
_PARKED_VIEW: Final = (
    "SELECT order_id, payment_id, payment_method, payment_status, "
    "unix_millis(parked_at) AS parked_ms, attempts FROM source_parked"
)
"""Our tables as the relations of :mod:`ecom_report.columns` (Spark SQL's spelling)."""


def session_conf(
    settings: CassandraSettings,
    *,
    spark_jars: Sequence[Path] | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The Spark settings that reach Cassandra as the services do; ``extra`` last (for TLS
    trust stores and the like, which the connector takes as JVM key stores)."""
    conf = {
        "spark.sql.session.timeZone": "UTC",
        **EXACT_DECIMALS,
        "spark.cassandra.connection.host": ",".join(settings.contact_points),
        "spark.cassandra.connection.port": str(settings.port),
        "spark.cassandra.input.consistency.level": settings.consistency,
        "spark.cassandra.read.timeoutMS": str(int(settings.request_timeout_seconds * 1000)),
        "spark.cassandra.connection.timeoutMS": str(int(settings.connect_timeout_seconds * 1000)),
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
    }
    if settings.local_dc is not None:
        conf["spark.cassandra.connection.localDC"] = settings.local_dc
    if settings.username is not None and settings.password is not None:
        conf["spark.cassandra.auth.username"] = settings.username
        conf["spark.cassandra.auth.password"] = settings.password.get_secret_value()
    if settings.ssl_enabled:
        conf["spark.cassandra.connection.ssl.enabled"] = "true"
    if spark_jars:
        conf["spark.jars"] = ",".join(str(jar) for jar in spark_jars)
    else:
        conf["spark.jars.packages"] = CONNECTOR_PACKAGE
        conf["spark.jars.excludes"] = ",".join(SHIPPED_WITH_SPARK)
    return {**conf, **(extra or {})}


class SparkEngine:
    """Spark SQL over the two tables, read through the connector."""

    name: Final = "spark"

    def __init__(self, spark: Any, settings: CassandraSettings) -> None:
        self._spark = spark
        for view, table in (
            ("source_orders", settings.orders_table),
            ("source_parked", settings.dlq_table),
        ):
            frame = (
                spark.read.format(CASSANDRA_FORMAT)
                .options(keyspace=settings.keyspace, table=table)
                .load()
            )
            frame.createOrReplaceTempView(view)
        # Cached (in memory, spilling to disk): the tables are read once, not once a figure.
        spark.sql(f"CACHE TABLE orders AS {_ORDERS_VIEW}")
        spark.sql(f"CACHE TABLE parked AS {_PARKED_VIEW}")

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self._spark.sql(sql).collect()]


def figures(
    settings: CassandraSettings,
    as_of: datetime,
    *,
    master: str | None = None,
    spark_jars: Sequence[Path] | None = None,
    extra_conf: Mapping[str, str] | None = None,
) -> Figures:
    """Start a Spark session, compute the figures, stop it. Blocking: run it in a thread."""
    from pyspark.sql import SparkSession  # noqa: PLC0415 - optional: the [spark] extra

    builder = SparkSession.builder.master(master or DEFAULT_MASTER).appName("ecom-report")
    for key, value in session_conf(settings, spark_jars=spark_jars, extra=extra_conf).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    try:
        return compute(SparkEngine(spark, settings), as_of)
    finally:
        spark.stop()
