"""Locating a Java runtime of the version Cassandra 5.0 needs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from glob import glob
from pathlib import Path

from ecom_devtools.errors import InfraError

REQUIRED_MAJOR = 17
"""Cassandra 5.0 runs on JDK 11 and 17; it refuses 18 and newer."""

_VERSION_RE = re.compile(r'version "(\d+)(?:\.(\d+))?')
_JVM_GLOBS = (
    "/usr/lib/jvm/*{major}*/bin/java",
    "/Library/Java/JavaVirtualMachines/*{major}*/Contents/Home/bin/java",
)


def java_major_version(java: Path) -> int | None:
    """Return the major version of the ``java`` executable, or None if it cannot be run."""
    try:
        completed = subprocess.run(
            [str(java), "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = _VERSION_RE.search(completed.stderr + completed.stdout)
    if match is None:
        return None
    major = int(match.group(1))
    if major == 1 and match.group(2) is not None:  # "1.8.0" style
        return int(match.group(2))
    return major


def _candidates(major: int) -> Iterator[Path]:
    """Yield java executables in order of preference: JAVA_HOME, PATH, well-known JVM dirs."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        yield Path(java_home) / "bin" / "java"
    on_path = shutil.which("java")
    if on_path:
        yield Path(on_path).resolve()
    for pattern in _JVM_GLOBS:
        for found in sorted(glob(pattern.format(major=major))):
            yield Path(found)


def find_java(major: int = REQUIRED_MAJOR) -> Path:
    """Return a ``java`` executable of exactly ``major`` version, or raise InfraError.

    Looks in ``$JAVA_HOME``, then ``java`` on PATH, then ``/usr/lib/jvm/*<major>*``.
    """
    seen: list[str] = []
    for candidate in _candidates(major):
        if not candidate.is_file():
            continue
        found = java_major_version(candidate)
        if found == major:
            return candidate
        seen.append(f"{candidate} (version {found if found is not None else 'unknown'})")
    detail = "; found: " + ", ".join(seen) if seen else "; no java executable was found"
    raise InfraError(
        f"JDK {major} is required (Cassandra 5.0 runs on JDK 11 or 17, not 18+){detail}. "
        f"Install it (Debian/Ubuntu: apt-get install openjdk-{major}-jdk-headless) "
        f"or point JAVA_HOME at one."
    )


def find_any_java() -> Path:
    """Return JDK 17 if present, else whatever ``java`` is on PATH; raise InfraError if none."""
    try:
        return find_java(REQUIRED_MAJOR)
    except InfraError:
        on_path = shutil.which("java")
        if on_path is None:
            raise
        return Path(on_path).resolve()


def java_home_of(java: Path) -> Path:
    """Return the JAVA_HOME directory that contains ``<home>/bin/java``."""
    return java.parent.parent
