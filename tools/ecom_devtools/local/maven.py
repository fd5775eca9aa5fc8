"""Runtime jars resolved by Maven from a packaged pom.xml and cached under ``ECOM_CACHE_DIR``.

Cassandra's server jars and Spark's Cassandra connector are fetched the same way: Maven's
dependency plugin copies a pom's runtime dependencies into a staging directory, which is renamed
into the cache once complete, so an interrupted download never leaves a half-filled cache.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

from ecom_devtools.errors import InfraError

_DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies"
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


def default_cache_dir() -> Path:
    """Return ``$ECOM_CACHE_DIR`` or ``~/.cache/ecom-pipeline``."""
    configured = os.environ.get("ECOM_CACHE_DIR")
    return Path(configured) if configured else Path.home() / ".cache" / "ecom-pipeline"


def ensure_jars(
    lib_dir: Path, *, pom: str, properties: Mapping[str, str], marker: str, what: str
) -> Path:
    """Return ``lib_dir`` holding the runtime jars of the packaged ``pom``, fetching them if needed.

    ``pom`` is a resource path inside ``ecom_devtools.local`` (``cassandra/pom.xml``),
    ``properties`` are passed to Maven as ``-Dname=value``, ``marker`` is the jar whose presence
    proves the directory complete, and ``what`` names the download in error messages.
    """
    if (lib_dir / marker).is_file():
        return lib_dir
    lib_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{lib_dir.name}.partial-", dir=lib_dir.parent))
    try:
        copy_dependencies(pom, properties, staging, what=what)
        if not (staging / marker).is_file():
            raise InfraError(f"Maven finished but {marker} is missing")
        try:
            staging.rename(lib_dir)
        except OSError:
            if not (lib_dir / marker).is_file():  # not a concurrent download winning
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return lib_dir


def copy_dependencies(
    pom: str, properties: Mapping[str, str], output_dir: Path, *, what: str
) -> None:
    """Run Maven's copy-dependencies on the packaged ``pom`` into ``output_dir``."""
    mvn = shutil.which("mvn")
    if mvn is None:
        raise InfraError(
            f"{what} is not cached and Maven (mvn) is not installed to fetch it; "
            "install Maven (Debian/Ubuntu: apt-get install maven) or set ECOM_CACHE_DIR to a "
            "cache that has it"
        )
    pom_resource = resources.files("ecom_devtools.local").joinpath(pom)
    with resources.as_file(pom_resource) as pom_path:
        argv = [
            mvn, "-B", "-q", "-Dstyle.color=never", "-f", str(pom_path), _DEPENDENCY_PLUGIN,
            f"-DoutputDirectory={output_dir}", "-DincludeScope=runtime",
            *(f"-D{name}={value}" for name, value in properties.items()),
        ]  # fmt: skip
        completed = subprocess.run(argv, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise InfraError(
            f"Maven could not fetch {what}: "
            f"{maven_error(completed.stdout + completed.stderr)}\n(command: {shlex.join(argv)})"
        )


def maven_error(output: str) -> str:
    """Return the first meaningful ``[ERROR]`` line of Maven's output (colour codes removed)."""
    lines = [_ANSI_ESCAPE.sub("", line).strip() for line in output.splitlines()]
    errors = [line.removeprefix("[ERROR]").strip() for line in lines if line.startswith("[ERROR]")]
    meaningful = [line for line in errors if line]
    return meaningful[0] if meaningful else "\n".join(lines[-10:])
