"""The jars of Spark's Cassandra connector, fetched with Maven into the cache, for the Spark
engine of ``ecom-report`` (:mod:`ecom_report.spark` names the versions and why this pair).

The connector's all-in-one ``-assembly`` artifact is not on Maven Central for 3.5.1, so Maven
resolves the plain artifact and its Java driver from the packaged ``spark/pom.xml``, leaving
out the jars Spark ships itself (:data:`ecom_report.spark.SHIPPED_WITH_SPARK`).
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

from ecom_devtools.errors import InfraError
from ecom_devtools.local.maven import default_cache_dir, ensure_jars
from ecom_report.spark import (
    CONNECTOR_ARTIFACT,
    CONNECTOR_VERSION,
    SCALA_BINARY_VERSION,
    SPARK_VERSION,
)


def connector_jars(cache_dir: Path | None = None, version: str = CONNECTOR_VERSION) -> list[Path]:
    """The jars to put on ``spark.jars`` for the Cassandra connector ``version``.

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
