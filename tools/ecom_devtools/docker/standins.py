"""Official images, or locally built stand-ins when no registry can provide them.

For each official image the project's Compose files use, :func:`choose_images` keeps the
official one if it is present locally or ``docker pull`` gets it; otherwise it asks for a
stand-in with the same role, built from ``docker/stand-ins/<name>/`` on Debian's packages.
Stand-ins are cached in the engine's image store: each carries a label with the SHA-256 of
its inputs (its folder, the host files copied into its build context, its build arguments
and its parent image's id) and is rebuilt only when that digest changes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ecom_devtools.docker.imagestore import ImageStore
from ecom_devtools.errors import InfraError

Say = Callable[[str], None]

DIGEST_LABEL = "org.ecom-pipeline.stand-in.inputs"
"""Image label holding the SHA-256 of a stand-in's inputs."""

_CHUNK = 1 << 20


@dataclass(frozen=True)
class OfficialImage:
    """An official image the project uses, the variable that overrides it, its stand-in."""

    variable: str
    reference: str
    stand_in: str


def _no_extras() -> Mapping[str, Path]:
    return {}


@dataclass(frozen=True)
class StandIn:
    """A stand-in image built from ``docker/stand-ins/<name>/Dockerfile``.

    ``parent`` names the stand-in it is built on (None: the Debian base image); its tag is
    passed as build argument ``BASE_IMAGE``. ``extras`` returns host files and folders to
    add to the build context by name; it is called only when the stand-in is needed.
    """

    name: str
    tag: str
    parent: str | None = None
    extras: Callable[[], Mapping[str, Path]] = _no_extras


def _walk(name: str, path: Path) -> Iterator[tuple[str, Path]]:
    """Yield ``(context path, host file)`` for a file, or every file under a folder, sorted."""
    if not path.is_dir():
        yield name, path
        return
    for child in sorted(path.iterdir()):
        yield from _walk(f"{name}/{child.name}", child)


def inputs_digest(entries: Mapping[str, Path], params: Mapping[str, str]) -> str:
    """Return the SHA-256 of build-context ``entries`` (names, contents, executable bits)
    and ``params``; any change to either gives another digest."""
    digest = hashlib.sha256()
    for key, value in sorted(params.items()):
        digest.update(f"param {key}={value}\n".encode())
    for name, root in sorted(entries.items()):
        if not root.exists():
            raise InfraError(f"build input {root} (for {name}) does not exist")
        for relative, path in _walk(name, root):
            executable = os.access(path, os.X_OK)
            digest.update(f"file {relative} {'x' if executable else '-'}\n".encode())
            with path.open("rb") as handle:
                while chunk := handle.read(_CHUNK):
                    digest.update(chunk)
    return digest.hexdigest()


def _link_or_copy(source: str, target: str) -> None:
    """Hard-link ``source`` to ``target`` (cheap for jars), copying across file systems."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def assemble_context(entries: Mapping[str, Path], context: Path) -> None:
    """Put each entry (a file or a folder) into the build context folder under its name."""
    context.mkdir(parents=True, exist_ok=True)
    for name, path in entries.items():
        target = context / name
        if path.is_dir():
            shutil.copytree(path, target, copy_function=_link_or_copy)
        else:
            _link_or_copy(str(path), str(target))


class StandInBuilder:
    """Builds stand-ins (and the stand-ins they are built on) at most once per instance."""

    def __init__(
        self,
        store: ImageStore,
        stand_ins: Sequence[StandIn],
        *,
        dockerfiles_dir: Path,
        work_dir: Path,
        base_image: Callable[[], str],
        say: Say,
    ) -> None:
        """Build ``stand_ins`` from ``dockerfiles_dir/<name>``; ``base_image`` returns the tag
        of the Debian base (ensuring it); contexts are assembled under ``work_dir``."""
        self._store = store
        self._stand_ins = {stand_in.name: stand_in for stand_in in stand_ins}
        self._dockerfiles_dir = dockerfiles_dir
        self._work_dir = work_dir
        self._base_image = base_image
        self._say = say
        self._ready: dict[str, str] = {}
        self.built: list[str] = []
        """Tags actually (re)built by this instance, in build order."""
        self._replaced: list[str] = []

    def ensure(self, name: str) -> str:
        """Return the tag of stand-in ``name``, building it first if missing or outdated."""
        if name in self._ready:
            return self._ready[name]
        spec = self._stand_ins.get(name)
        if spec is None:
            raise InfraError(f"no stand-in named {name!r}")
        parent_tag = self.ensure(spec.parent) if spec.parent else self._base()
        parent = self._store.inspect(parent_tag)
        if parent is None:
            raise InfraError(f"{parent_tag} (the base of {spec.tag}) is missing after its build")
        entries = {**self._dockerfile_entries(spec), **spec.extras()}
        build_args = {"BASE_IMAGE": parent_tag}
        digest = inputs_digest(entries, {**build_args, "parent_id": parent.id})
        current = self._store.inspect(spec.tag)
        if current is not None and current.labels.get(DIGEST_LABEL) == digest:
            self._say(f"{spec.tag}: up to date")
        else:
            self._build(spec, entries, build_args, digest)
            if current is not None:
                self._replaced.append(current.id)
        self._ready[name] = spec.tag
        return spec.tag

    def remove_replaced(self) -> list[str]:
        """Remove the images that rebuilt stand-ins replaced (now untagged), children first,
        so that rebuilds do not pile up; one still in use stays. Return the ids removed."""
        removed = [image for image in reversed(self._replaced) if self._store.remove(image)]
        self._replaced.clear()
        return removed

    def _base(self) -> str:
        if "" not in self._ready:
            self._ready[""] = self._base_image()
        return self._ready[""]

    def _dockerfile_entries(self, spec: StandIn) -> dict[str, Path]:
        folder = self._dockerfiles_dir / spec.name
        if not (folder / "Dockerfile").is_file():
            raise InfraError(
                f"{folder}/Dockerfile is missing: run ecom-docker from the repository's checkout"
            )
        return {child.name: child for child in folder.iterdir()}

    def _build(
        self, spec: StandIn, entries: Mapping[str, Path], build_args: Mapping[str, str], digest: str
    ) -> None:
        self._say(f"{spec.tag}: building (inputs {digest[:12]})")
        began = time.monotonic()
        self._work_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f"{spec.name}-", dir=self._work_dir) as context:
            assemble_context(entries, Path(context))
            self._store.build(spec.tag, Path(context), build_args, {DIGEST_LABEL: digest})
        self.built.append(spec.tag)
        self._say(f"{spec.tag}: built in {time.monotonic() - began:.0f} s")


def _available(store: ImageStore, reference: str, say: Say) -> bool:
    """Return True if ``reference`` is present locally or can be pulled now."""
    if store.inspect(reference) is not None:
        return True
    say(f"{reference}: not present, pulling")
    if store.pull(reference):
        return True
    say(f"{reference}: pull failed, using a stand-in")
    return False


def choose_images(
    store: ImageStore,
    officials: Sequence[OfficialImage],
    stand_in: Callable[[str], str],
    *,
    force_stand_ins: bool,
    say: Say,
) -> dict[str, str]:
    """Return, per variable, the official image if available, else its stand-in's tag.

    ``stand_in(name)`` builds (or finds) a stand-in and returns its tag.
    """
    chosen: dict[str, str] = {}
    for official in officials:
        if not force_stand_ins and _available(store, official.reference, say):
            chosen[official.variable] = official.reference
        else:
            chosen[official.variable] = stand_in(official.stand_in)
    return chosen
