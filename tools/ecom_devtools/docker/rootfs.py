"""The Debian base image of the stand-ins, made from Debian's own packages without a registry.

``debootstrap --variant=minbase`` builds a root file system from the machine's apt mirror;
it is cached as a tarball (keyed by suite, variant and mirror) and ``docker import``-ed.
The image carries the same digest label as the stand-ins, so it is re-imported only when
it is missing or its inputs changed.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from ecom_devtools.docker.debian import apt_install, debian_mirror
from ecom_devtools.docker.imagestore import ImageStore
from ecom_devtools.docker.standins import DIGEST_LABEL
from ecom_devtools.errors import InfraError
from ecom_devtools.local.process import tail

Say = Callable[[str], None]

SUITE = "bookworm"
VARIANT = "minbase"
BASE_TAG = f"ecom-stand-in/debian:{SUITE}-{VARIANT}"

_DEBOOTSTRAP_TIMEOUT_SECONDS = 1800.0


def rootfs_digest(mirror: str) -> str:
    """Return the digest of the base's inputs: suite, variant and mirror."""
    return hashlib.sha256(f"debootstrap {VARIANT} {SUITE} {mirror}\n".encode()).hexdigest()


def _mounts_under(root: Path) -> list[str]:
    """Return mount points at or below ``root`` (debootstrap mounts /proc while it runs)."""
    try:
        lines = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return []
    prefix = str(root.resolve())
    points = [line.split()[1] for line in lines if len(line.split()) > 1]
    return [point for point in points if point == prefix or point.startswith(prefix + "/")]


def _debootstrap(rootfs: Path, mirror: str, log: Path, say: Say) -> None:
    if shutil.which("debootstrap", path="/usr/sbin:/usr/bin:/sbin:/bin") is None:
        apt_install(["debootstrap"], say)
    debootstrap = shutil.which("debootstrap", path="/usr/sbin:/usr/bin:/sbin:/bin")
    argv = [str(debootstrap), f"--variant={VARIANT}", SUITE, str(rootfs), mirror]
    say(f"debootstrap {SUITE} from {mirror} (about a minute; log in {log})")
    with log.open("w") as output:
        completed = subprocess.run(
            argv, stdout=output, stderr=subprocess.STDOUT,
            timeout=_DEBOOTSTRAP_TIMEOUT_SECONDS, check=False,
        )  # fmt: skip
    if completed.returncode != 0:
        raise InfraError(f"debootstrap failed; {log}:\n{tail(log)}")


def _pack(rootfs: Path, tarball: Path) -> None:
    """Tar ``rootfs`` into ``tarball`` (written aside, then renamed into place)."""
    for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for item in (rootfs / leftover).glob("*"):
            if item.is_file():
                item.unlink()
    partial = tarball.with_suffix(".partial")
    argv = ["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(partial), "."]
    completed = subprocess.run(argv, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise InfraError(f"packing {rootfs} failed: {completed.stderr.strip()}")
    partial.replace(tarball)


def tarball_path(cache_dir: Path, mirror: str) -> Path:
    """Return where the root file system from ``mirror`` is cached."""
    return cache_dir / "rootfs" / f"{SUITE}-{VARIANT}-{rootfs_digest(mirror)[:12]}.tar"


def rootfs_tarball(cache_dir: Path, mirror: str, say: Say) -> Path:
    """Return the cached root file system tarball, running debootstrap on a miss."""
    tarball = tarball_path(cache_dir, mirror)
    if tarball.is_file():
        return tarball
    tarball.parent.mkdir(parents=True, exist_ok=True)
    rootfs = Path(tempfile.mkdtemp(prefix="rootfs-", dir=tarball.parent))
    try:
        _debootstrap(rootfs, mirror, tarball.parent / "debootstrap.log", say)
        _pack(rootfs, tarball)
    finally:
        mounted = _mounts_under(rootfs)
        if mounted:  # never delete through a live /proc or /dev mount
            say(f"left {rootfs} in place: still mounted: {', '.join(mounted)}")
        else:
            shutil.rmtree(rootfs, ignore_errors=True)
    return tarball


def ensure_base_image(store: ImageStore, cache_dir: Path, say: Say) -> str:
    """Return the base image's tag, importing (and debootstrapping) it when needed."""
    mirror = debian_mirror()
    digest = rootfs_digest(mirror)
    current = store.inspect(BASE_TAG)
    if current is not None and current.labels.get(DIGEST_LABEL) == digest:
        say(f"{BASE_TAG}: up to date")
        return BASE_TAG
    tarball = rootfs_tarball(cache_dir, mirror, say)
    say(f"{BASE_TAG}: importing {tarball.name}")
    changes = [f"LABEL {DIGEST_LABEL}={digest}", "ENV LANG=C.UTF-8", 'CMD ["bash"]']
    store.import_tarball(tarball, BASE_TAG, changes)
    return BASE_TAG
