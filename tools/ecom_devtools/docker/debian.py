"""The machine's Debian packages: which mirror its apt sources use, and installing packages.

Both source formats apt reads are understood: one-line ``*.list`` files
(``deb [options] URI SUITE COMPONENT...``) and deb822 ``*.sources`` stanzas. Files with any
other suffix (``*.list.disabled``, ``*.save``) are ignored, as apt ignores them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ecom_devtools.errors import InfraError

APT_DIR = Path("/etc/apt")
MIRROR_ENV = "ECOM_APT_MIRROR"
"""Set this to a Debian mirror URI to bypass the sources' lookup."""

_APT_TIMEOUT_SECONDS = 1800.0


@dataclass(frozen=True)
class AptSource:
    """One ``deb`` entry: a repository URI with its suites and components."""

    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...]


def parse_one_line(text: str) -> list[AptSource]:
    """Return the ``deb`` entries of a one-line ``sources.list`` text (``deb-src`` skipped)."""
    found: list[AptSource] = []
    for raw in text.splitlines():
        words = raw.split("#", 1)[0].split()
        if len(words) < 3 or words[0] != "deb":  # noqa: PLR2004 (deb URI SUITE is the minimum)
            continue
        rest = words[1:]
        if rest[0].startswith("["):  # options such as [signed-by=... arch=amd64]
            closing = next((i for i, word in enumerate(rest) if word.endswith("]")), len(rest))
            rest = rest[closing + 1 :]
        if len(rest) >= 2:  # noqa: PLR2004 (URI and suite)
            found.append(AptSource(rest[0], (rest[1],), tuple(rest[2:])))
    return found


def _deb822_stanzas(text: str) -> Iterator[dict[str, str]]:
    """Yield each stanza of a deb822 text as a field map (folded lines joined, comments cut)."""
    fields: dict[str, str] = {}
    key = ""
    for raw in [*text.splitlines(), ""]:
        if raw.startswith("#"):
            continue
        if not raw.strip():
            if fields:
                yield fields
            fields, key = {}, ""
        elif raw[0] in " \t" and key:
            fields[key] += " " + raw.strip()
        elif ":" in raw:
            key, value = raw.split(":", 1)
            key = key.strip().lower()
            fields[key] = value.strip()


def parse_deb822(text: str) -> list[AptSource]:
    """Return the ``deb`` entries of a deb822 ``*.sources`` text (disabled stanzas skipped)."""
    found: list[AptSource] = []
    for fields in _deb822_stanzas(text):
        if "deb" not in fields.get("types", "").split():
            continue
        if fields.get("enabled", "yes").lower() == "no":
            continue
        suites = tuple(fields.get("suites", "").split())
        components = tuple(fields.get("components", "").split())
        found.extend(AptSource(uri, suites, components) for uri in fields.get("uris", "").split())
    return found


def read_sources(apt_dir: Path = APT_DIR) -> list[AptSource]:
    """Return every ``deb`` entry apt would use, in the order apt reads its files."""
    found: list[AptSource] = []
    main_list = apt_dir / "sources.list"
    if main_list.is_file():
        found.extend(parse_one_line(main_list.read_text(errors="replace")))
    parts = apt_dir / "sources.list.d"
    for path in sorted(parts.iterdir()) if parts.is_dir() else []:
        if path.suffix == ".list":
            found.extend(parse_one_line(path.read_text(errors="replace")))
        elif path.suffix == ".sources":
            found.extend(parse_deb822(path.read_text(errors="replace")))
    return found


def host_codename(os_release: Path = Path("/etc/os-release")) -> str | None:
    """Return ``VERSION_CODENAME`` from os-release (``bookworm``), or None if absent."""
    try:
        text = os_release.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("VERSION_CODENAME="):
            return line.split("=", 1)[1].strip().strip("\"'") or None
    return None


def pick_mirror(sources: Sequence[AptSource], codename: str) -> str | None:
    """Return the URI of the Debian archive among ``sources``: the first with suite ``codename``
    (exactly: not ``-security``, ``-updates`` or a vendor's ``cloud-sdk-bookworm``) and
    component ``main``."""
    for source in sources:
        if codename in source.suites and "main" in source.components:
            return source.uri.rstrip("/")
    return None


def debian_mirror(apt_dir: Path = APT_DIR) -> str:
    """Return the Debian mirror this machine installs from (``$ECOM_APT_MIRROR`` wins)."""
    configured = os.environ.get(MIRROR_ENV)
    if configured:
        return configured.rstrip("/")
    codename = host_codename() or "bookworm"
    mirror = pick_mirror(read_sources(apt_dir), codename)
    if mirror is None:
        raise InfraError(
            f"no Debian mirror for suite {codename!r} with component main in {apt_dir}/sources*; "
            f"set {MIRROR_ENV} to one"
        )
    return mirror


def apt_install(packages: Sequence[str], say: Callable[[str], None]) -> None:
    """Install Debian packages with apt-get (root only); raise InfraError with apt's output."""
    apt_get = shutil.which("apt-get")
    if apt_get is None or os.geteuid() != 0:
        raise InfraError(
            f"{' '.join(packages)} missing; install them (Debian: apt-get install "
            f"{' '.join(packages)}) or run this as root on Debian so it can"
        )
    say(f"installing {' '.join(packages)} from Debian's packages")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in ([apt_get, "update", "-qq"], [apt_get, "install", "-y", "-qq", *packages]):
        completed = subprocess.run(
            argv, capture_output=True, text=True, env=env, timeout=_APT_TIMEOUT_SECONDS, check=False
        )
        if completed.returncode != 0:
            output = (completed.stdout + completed.stderr).strip().splitlines()[-15:]
            raise InfraError(f"`{' '.join(argv)}` failed:\n" + "\n".join(output))
