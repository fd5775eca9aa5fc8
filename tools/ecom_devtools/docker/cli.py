"""``ecom-docker``: what the project's Docker Compose tests need, set up only where missing.

    ecom-docker up [--env-file PATH]   # engine, Compose v2, images; prints NAME=value overrides
    ecom-docker status
    ecom-docker down                   # stops only a dockerd that ecom-docker started

On a machine with a working engine, Compose v2 and registry access this changes nothing and
prints no overrides. Elsewhere (Debian, root, no registry) it installs and starts the engine,
builds the Compose plugin, and builds stand-ins for the official images (see
``docker/stand-ins/README.md``). Tests call :func:`ensure_docker` and pass
:attr:`DockerSetup.overrides` to ``docker compose`` as environment variables.
Progress goes to stderr; ``up`` prints only the ``NAME=value`` lines on stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from ecom_devtools.docker.dockerhost import (
    DockerdFiles,
    compose_version,
    ensure_compose,
    ensure_engine,
    server_version,
    stop_dockerd,
)
from ecom_devtools.docker.imagestore import DockerImageStore, ImageStore
from ecom_devtools.docker.rootfs import ensure_base_image
from ecom_devtools.docker.standins import OfficialImage, StandIn, StandInBuilder, choose_images
from ecom_devtools.errors import InfraError, run_subcommand
from ecom_devtools.local.cassandra import ensure_cassandra
from ecom_devtools.local.emulator import sdk_root
from ecom_devtools.local.maven import default_cache_dir

Say = Callable[[str], None]
EXIT_NOT_RUNNING = 3
DESCRIPTION = "Set up what the Docker Compose tests need: engine, Compose v2, images."

HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
OFFICIAL_IMAGES = (
    OfficialImage("PYTHON_IMAGE", "python:3.11-slim-bookworm", "python"),
    OfficialImage("CASSANDRA_IMAGE", "cassandra:5.0.9", "cassandra"),
    OfficialImage(
        "EMULATOR_BASE_IMAGE",
        "gcr.io/google.com/cloudsdktool/google-cloud-cli:528.0.0-emulators",
        "google-cloud-cli",
    ),
    OfficialImage("PROMETHEUS_IMAGE", "prom/prometheus:v2.42.0", "prometheus"),
)


def _ca_bundle() -> Mapping[str, Path]:
    if not HOST_CA_BUNDLE.is_file():
        raise InfraError(f"{HOST_CA_BUNDLE} is missing: the Python stand-in copies it in")
    return {"ca-certificates.crt": HOST_CA_BUNDLE}


def _cassandra_jars() -> Mapping[str, Path]:
    return {"lib": ensure_cassandra()}


def _pubsub_emulator() -> Mapping[str, Path]:
    return {"pubsub-emulator": sdk_root() / "platform" / "pubsub-emulator"}


STAND_INS = (
    StandIn("python", "ecom-stand-in/python:3.11-slim", None, _ca_bundle),
    StandIn("jre", "ecom-stand-in/jre:17", "python"),
    StandIn("cassandra", "ecom-stand-in/cassandra:5.0", "jre", _cassandra_jars),
    StandIn(
        "google-cloud-cli",
        "ecom-stand-in/google-cloud-cli:528.0.0-emulators",
        "jre",
        _pubsub_emulator,
    ),
    StandIn("prometheus", "ecom-stand-in/prometheus:2.42", None),
)


@dataclass(frozen=True)
class DockerSetup:
    """A working engine and Compose v2, and which image to use for each official one."""

    server_version: str
    compose_version: str
    images: Mapping[str, str]
    """Variable -> image to use: the official reference, or a stand-in's tag."""
    overrides: Mapping[str, str]
    """Only the variables whose official image is replaced by a stand-in."""
    dockerd_pid: int | None
    """The dockerd that ecom-docker started (now or earlier), or None if the engine is not ours."""
    built: tuple[str, ...] = ()
    """Tags of stand-ins (re)built by this call."""

    def env_lines(self) -> str:
        """Return the overrides as ``NAME=value`` lines (a Compose ``--env-file``)."""
        return "".join(f"{name}={value}\n" for name, value in sorted(self.overrides.items()))

    def compose_env(self, base: Mapping[str, str]) -> dict[str, str]:
        """Return ``base`` (e.g. ``os.environ``) with the overrides set, for ``docker compose``."""
        return {**base, **self.overrides}


def docker_cache_dir() -> Path:
    """Return ``~/.cache/ecom-pipeline/docker`` (or under ``$ECOM_CACHE_DIR``)."""
    return default_cache_dir() / "docker"


def stand_ins_dir() -> Path:
    """Return the repository's ``docker/stand-ins`` (beside tools/, or above the cwd).

    Needed only when a stand-in is built; the builder says so if it is missing.
    """
    here = Path(__file__).resolve().parents[2]
    candidates = [root / "docker" / "stand-ins" for root in (here, Path.cwd(), *Path.cwd().parents)]
    return next((path for path in candidates if path.is_dir()), candidates[0])


@contextlib.contextmanager
def _locked(cache_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock so concurrent set-ups (two test sessions) take turns."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    with (cache_dir / "lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _say(message: str) -> None:
    print(f"ecom-docker: {message}", file=sys.stderr, flush=True)


def ensure_docker(
    *, cache_dir: Path | None = None, force_stand_ins: bool = False, say: Say = _say
) -> DockerSetup:
    """Make the engine, Compose v2 and every image the Compose tests need available.

    Blocking (minutes on a fresh machine, about a second when all is cached); raises
    InfraError with the reason and a log tail when a step fails.
    """
    cache = cache_dir or docker_cache_dir()
    with _locked(cache):
        engine = ensure_engine(DockerdFiles(cache), say)
        compose = ensure_compose(cache, say)
        store = DockerImageStore(cache / "logs")
        builder = StandInBuilder(
            store,
            STAND_INS,
            dockerfiles_dir=stand_ins_dir(),
            work_dir=cache / "contexts",
            base_image=lambda: ensure_base_image(store, cache, say),
            say=say,
        )
        images = choose_images(
            store, OFFICIAL_IMAGES, builder.ensure, force_stand_ins=force_stand_ins, say=say
        )
        builder.remove_replaced()
    officials = {image.variable: image.reference for image in OFFICIAL_IMAGES}
    overrides = {name: ref for name, ref in images.items() if ref != officials[name]}
    return DockerSetup(
        server_version=engine.server_version,
        compose_version=compose,
        images=MappingProxyType(images),
        overrides=MappingProxyType(overrides),
        dockerd_pid=engine.dockerd_pid,
        built=tuple(builder.built),
    )


def cmd_up(args: argparse.Namespace) -> int:
    """Set everything up; print the overrides, and write them to ``--env-file`` if given."""
    setup = ensure_docker(force_stand_ins=args.stand_ins)
    if args.env_file is not None:
        partial = args.env_file.with_name(args.env_file.name + ".partial")
        partial.write_text(setup.env_lines())
        partial.replace(args.env_file)
    _say(f"ready: engine {setup.server_version}, Compose {setup.compose_version}")
    print(setup.env_lines(), end="")
    return 0


def cmd_down(_args: argparse.Namespace) -> int:
    """Stop the dockerd that ecom-docker started, if it runs; never any other."""
    pid = stop_dockerd(DockerdFiles(docker_cache_dir()))
    _say(f"dockerd stopped (pid {pid})" if pid is not None else "no dockerd of ours runs")
    return 0


def _image_state(store: ImageStore, official: OfficialImage) -> str:
    if store.inspect(official.reference) is not None:
        return f"{official.reference} (official, present)"
    tag = next(s.tag for s in STAND_INS if s.name == official.stand_in)
    if store.inspect(tag) is not None:
        return f"{tag} (stand-in, present)"
    return "missing (run `ecom-docker up`)"


def cmd_status(_args: argparse.Namespace) -> int:
    """Print engine, Compose and image state; exit EXIT_NOT_RUNNING if no engine answers."""
    files = DockerdFiles(docker_cache_dir())
    pid = files.process().pid
    version = server_version()
    ours = f", dockerd pid {pid} started by ecom-docker (log {files.log})" if pid else ""
    print(f"engine: {'Docker ' + version if version else 'not answering'}{ours}")
    if version is None:
        return EXIT_NOT_RUNNING
    print(f"compose: {compose_version() or 'missing'}")
    store = DockerImageStore(docker_cache_dir() / "logs")
    for official in OFFICIAL_IMAGES:
        print(f"{official.variable}: {_image_state(store, official)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``ecom-docker``."""
    parser = argparse.ArgumentParser(prog="ecom-docker", description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="set up the engine, Compose v2 and the images")
    up.add_argument("--env-file", type=Path, help="also write the NAME=value overrides here")
    up.add_argument(
        "--stand-ins", action="store_true", help="use stand-ins even where official images work"
    )
    up.set_defaults(handler=cmd_up)
    down = commands.add_parser("down", help="stop the dockerd that ecom-docker started")
    down.set_defaults(handler=cmd_down)
    status = commands.add_parser("status", help="show the engine, Compose and the images")
    status.set_defaults(handler=cmd_status)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``ecom-docker``; return the process exit status."""
    return run_subcommand(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
