"""Spark SQL over our Cassandra tables: the connector's jars and the session settings.

The versions are a pair. PySpark 4.3 runs on JDK 17 and is built for Scala 2.13, so the
connector must be a ``_2.13`` build: ``spark-cassandra-connector_2.13:3.5.1`` is the newest
connector release on Maven Central, and it reads our tables through Spark 4.3's data source API
on JDK 17 (checked in local mode against Cassandra 5.0). The connector's all-in-one
``-assembly`` artifact is not on Maven Central for 3.5.1, so Maven resolves the plain artifact
and its Java driver from the packaged ``spark/pom.xml``, leaving out the jars Spark ships itself.
``SPARK_VERSION`` must equal the ``pyspark`` pin in ``requirements/dev.in``.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from ecom_devtools.errors import InfraError
from ecom_devtools.local.maven import default_cache_dir, ensure_jars

SPARK_VERSION = "4.3.0"
SCALA_BINARY_VERSION = "2.13"
CONNECTOR_VERSION = "3.5.1"
CONNECTOR_ARTIFACT = f"spark-cassandra-connector_{SCALA_BINARY_VERSION}"
CASSANDRA_FORMAT = "org.apache.spark.sql.cassandra"
"""The ``spark.read.format(...)`` name of the connector's data source."""

EXACT_DECIMAL_CONF: dict[str, str] = {
    # Keep the scale of a decimal product or sum (decimal(38,18) * int stays decimal(38,18))
    # instead of cutting it to make room for integer digits (decimal(38,7): 1e-18 * 3 = 0).
    "spark.sql.decimalOperations.allowPrecisionLoss": "false",
    # A result that does not fit its type raises SparkArithmeticException instead of being NULL.
    "spark.sql.ansi.enabled": "true",
}
"""SQL settings under which decimal arithmetic is exact or fails loudly."""


def connector_jars(cache_dir: Path | None = None, version: str = CONNECTOR_VERSION) -> list[Path]:
    """Return the jars to put on ``spark.jars`` for the Cassandra connector ``version``.

    They are cached as ``<cache_dir>/spark-cassandra-connector_<scala>-<version>/lib``
    (``cache_dir`` defaults to ``$ECOM_CACHE_DIR``); on a miss Maven fetches them, and an
    InfraError says so when Maven is missing or fails.
    """
    name = f"{CONNECTOR_ARTIFACT}-{version}"
    lib_dir = ensure_jars(
        (cache_dir or default_cache_dir()) / name / "lib",
        pom="spark/pom.xml",
        properties={"scala.binary.version": SCALA_BINARY_VERSION, "connector.version": version},
        marker=f"{name}.jar",
        what=f"Spark's Cassandra connector {version}",
    )
    return sorted(lib_dir.glob("*.jar"))


def session_conf(jars: Sequence[Path], host: str, port: int) -> dict[str, str]:
    """Return the settings of a SparkSession that reads Cassandra at ``host:port`` through
    ``jars``, in UTC and with exact decimal arithmetic."""
    return {
        "spark.jars": ",".join(str(jar) for jar in jars),
        "spark.cassandra.connection.host": host,
        "spark.cassandra.connection.port": str(port),
        "spark.sql.session.timeZone": "UTC",
        **EXACT_DECIMAL_CONF,
    }


def require_pyspark() -> None:
    """Raise InfraError unless the installed PySpark is the one the connector is paired with."""
    try:
        installed = metadata.version("pyspark")
    except metadata.PackageNotFoundError:
        raise InfraError(
            "PySpark is not installed; it comes with the dev requirements (./scripts/bootstrap)"
        ) from None
    if installed != SPARK_VERSION:
        raise InfraError(
            f"PySpark {installed} is installed but the Cassandra connector {CONNECTOR_VERSION} "
            f"is paired with {SPARK_VERSION}; run ./scripts/bootstrap"
        )
