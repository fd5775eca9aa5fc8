"""The engine's image store, as the stand-in logic needs it: inspect, pull, build, import.

:class:`ImageStore` is the port; :class:`DockerImageStore` implements it with the docker
CLI. Builds use the legacy builder (``DOCKER_BUILDKIT=0``): Debian's engine has no buildx.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ecom_devtools.docker.dockerhost import docker
from ecom_devtools.errors import InfraError
from ecom_devtools.local.process import tail

_PULL_TIMEOUT_SECONDS = 1800.0
_BUILD_TIMEOUT_SECONDS = 2400.0


@dataclass(frozen=True)
class ImageInfo:
    """What the store knows of one local image."""

    id: str
    labels: Mapping[str, str] = field(default_factory=dict)


class ImageStore(Protocol):
    """The operations on the engine's images that choosing and building stand-ins needs."""

    def inspect(self, reference: str) -> ImageInfo | None:
        """Return the local image ``reference`` names, or None if there is none."""
        ...

    def pull(self, reference: str) -> bool:
        """Pull ``reference`` from its registry; return False if that fails."""
        ...

    def build(
        self, tag: str, context: Path, build_args: Mapping[str, str], labels: Mapping[str, str]
    ) -> None:
        """Build ``context/Dockerfile`` as ``tag``; raise InfraError if the build fails."""
        ...

    def import_tarball(self, tarball: Path, tag: str, changes: Sequence[str]) -> None:
        """Import a root file system tarball as ``tag`` with Dockerfile ``changes``."""
        ...

    def remove(self, image_id: str) -> bool:
        """Remove an image that no container uses; return False if it stays."""
        ...


class DockerImageStore:
    """:class:`ImageStore` through the docker CLI; build output goes to ``log_dir``."""

    def __init__(self, log_dir: Path) -> None:
        """Write each build's output to ``log_dir/build-<name>.log``."""
        self._log_dir = log_dir

    def inspect(self, reference: str) -> ImageInfo | None:
        """Return the local image ``reference`` names, or None if there is none."""
        completed = docker(["image", "inspect", reference])
        if completed.returncode != 0:
            return None
        data = json.loads(completed.stdout)[0]
        labels = (data.get("Config") or {}).get("Labels") or {}
        return ImageInfo(id=str(data["Id"]), labels={str(k): str(v) for k, v in labels.items()})

    def pull(self, reference: str) -> bool:
        """Pull ``reference``; return False if the registry cannot be reached or refuses."""
        try:
            return docker(["pull", "--quiet", reference], _PULL_TIMEOUT_SECONDS).returncode == 0
        except InfraError:  # timed out: as good as unreachable
            return False

    def build(
        self, tag: str, context: Path, build_args: Mapping[str, str], labels: Mapping[str, str]
    ) -> None:
        """Build ``context/Dockerfile`` as ``tag`` with the legacy builder."""
        argv = ["build", "--tag", tag, "--force-rm"]
        for option, pairs in (("--build-arg", build_args), ("--label", labels)):
            argv += [arg for key, value in pairs.items() for arg in (option, f"{key}={value}")]
        self._run_logged([*argv, str(context)], tag)

    def import_tarball(self, tarball: Path, tag: str, changes: Sequence[str]) -> None:
        """``docker import`` the tarball as ``tag``."""
        argv = ["import", *(arg for change in changes for arg in ("--change", change))]
        self._run_logged([*argv, str(tarball), tag], tag)

    def remove(self, image_id: str) -> bool:
        """``docker image rm`` (never forced: an image in use or with children stays)."""
        return docker(["image", "rm", image_id]).returncode == 0

    def _run_logged(self, args: Sequence[str], tag: str) -> None:
        cli = shutil.which("docker")
        if cli is None:
            raise InfraError("the docker CLI is not installed")
        self._log_dir.mkdir(parents=True, exist_ok=True)
        log = self._log_dir / f"build-{tag.rsplit('/', 1)[-1].replace(':', '-')}.log"
        env = {**os.environ, "DOCKER_BUILDKIT": "0"}
        with log.open("w") as output:
            try:
                completed = subprocess.run(
                    [cli, *args], stdout=output, stderr=subprocess.STDOUT, env=env,
                    timeout=_BUILD_TIMEOUT_SECONDS, check=False,
                )  # fmt: skip
            except subprocess.TimeoutExpired as exc:
                raise InfraError(f"building {tag} timed out; {log}:\n{tail(log)}") from exc
        if completed.returncode != 0:
            raise InfraError(f"building {tag} failed; {log}:\n{tail(log)}")
