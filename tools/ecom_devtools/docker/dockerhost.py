"""A Docker engine and the Compose v2 plugin on this machine, set up only when missing.

If ``docker info`` answers, the engine is left alone. Otherwise, as root on Debian, the
``docker.io`` package is installed when ``dockerd`` is missing and ``dockerd`` is started in
its own session, its log and pid file in the cache directory; :func:`stop_dockerd` stops
only that daemon, found through the pid file and recognised by a label argument that only
this launch passes (never by process name). If ``docker compose version`` fails, Compose v2
is built once from the Go module proxy and installed as the CLI plugin.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ecom_devtools.docker.debian import apt_install
from ecom_devtools.errors import InfraError
from ecom_devtools.local.process import ManagedProcess, pid_alive, read_cmdline, tail

Say = Callable[[str], None]

COMPOSE_VERSION = "v2.32.4"
COMPOSE_MODULE = "github.com/docker/compose/v2"
DOCKERD_MARKER = "--label=org.ecom-pipeline.started-by=ecom-docker"
"""An engine label that marks the dockerd this tool started (checked before signalling it)."""

_INFO_TIMEOUT_SECONDS = 20.0
_ENGINE_DEADLINE_SECONDS = 90.0
_ENGINE_POLL_SECONDS = 0.5
_STOP_TIMEOUT_SECONDS = 60.0
_GO_BUILD_TIMEOUT_SECONDS = 2400.0
_DEFAULT_SOCKETS = ("", "unix:///var/run/docker.sock", "unix:///run/docker.sock")
DAEMON_PID_FILE = Path("/var/run/docker.pid")
"""dockerd's own pid file: it refuses to start while this names a live process."""


def docker(
    args: Sequence[str], timeout: float = _INFO_TIMEOUT_SECONDS
) -> subprocess.CompletedProcess[str]:
    """Run the docker CLI with ``args``; a missing CLI or a timeout is an InfraError."""
    cli = shutil.which("docker")
    if cli is None:
        raise InfraError("the docker CLI is not installed (Debian: apt-get install docker.io)")
    try:
        return subprocess.run(
            [cli, *args], capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise InfraError(f"`docker {' '.join(args)}` did not finish in {timeout:.0f} s") from exc


def server_version() -> str | None:
    """Return the engine's version if ``docker info`` answers, else None."""
    try:
        completed = docker(["info", "--format", "{{.ServerVersion}}"])
    except InfraError:
        return None
    version = completed.stdout.strip()
    return version if completed.returncode == 0 and version else None


@dataclass(frozen=True)
class DockerdFiles:
    """Where a dockerd started by this tool keeps its log and our pid file."""

    cache_dir: Path

    @property
    def log(self) -> Path:
        """dockerd's stdout and stderr, appended across starts."""
        return self.cache_dir / "dockerd.log"

    @property
    def pid_file(self) -> Path:
        """The pid of the dockerd this tool started (dockerd keeps its own in /var/run too)."""
        return self.cache_dir / "dockerd.pid"

    def process(self) -> ManagedProcess:
        """Return the handle of the dockerd recorded in :attr:`pid_file`."""
        return ManagedProcess(self.pid_file, DOCKERD_MARKER)


@dataclass(frozen=True)
class Engine:
    """A Docker engine that answers: its version, and the pid of our dockerd if we started it."""

    server_version: str
    dockerd_pid: int | None
    started_now: bool


def ensure_engine(files: DockerdFiles, say: Say) -> Engine:
    """Return the answering engine; install and start dockerd first if none answers."""
    ours = files.process().pid
    version = server_version()
    if version is not None:
        return Engine(version, ours, started_now=False)
    host = os.environ.get("DOCKER_HOST", "")
    if host not in _DEFAULT_SOCKETS:
        raise InfraError(f"the Docker engine at DOCKER_HOST={host} does not answer `docker info`")
    if os.geteuid() != 0:
        raise InfraError("no Docker engine answers; start one (or run this as root so it can)")
    if ours is not None:
        raise InfraError(
            f"dockerd (pid {ours}) runs but does not answer; see {files.log}:\n{tail(files.log)}"
        )
    if shutil.which("dockerd", path=_sbin_path()) is None:
        apt_install(["docker.io"], say)
    clear_stale_daemon_pid(DAEMON_PID_FILE)
    pid = _start_dockerd(files, say)
    return Engine(_wait_answers(pid, files.log), pid, started_now=True)


def clear_stale_daemon_pid(pid_file: Path) -> None:
    """Remove dockerd's pid file if no dockerd has that pid (after a dockerd was killed, the
    pid may now belong to another process, and dockerd would refuse to start)."""
    try:
        pid = int(pid_file.read_text().strip())
    except FileNotFoundError:
        return
    except (OSError, ValueError):
        pid = 0
    args = read_cmdline(pid) if pid > 0 and pid_alive(pid) else None
    if args and Path(args[0]).name == "dockerd":
        raise InfraError(f"a dockerd (pid {pid}) runs but does not answer `docker info`")
    pid_file.unlink(missing_ok=True)


def _sbin_path() -> str:
    """Return PATH with the sbin folders dockerd needs (iptables) appended if absent."""
    parts = os.environ.get("PATH", "").split(os.pathsep)
    extra = [d for d in ("/usr/local/sbin", "/usr/sbin", "/sbin") if d not in parts]
    return os.pathsep.join([*parts, *extra])


def _start_dockerd(files: DockerdFiles, say: Say) -> int:
    """Start dockerd as a daemon (no child of ours: it outlives this process); return its pid."""
    dockerd = shutil.which("dockerd", path=_sbin_path())
    if dockerd is None:
        raise InfraError("dockerd is still missing after installing docker.io")
    env = {**os.environ, "PATH": _sbin_path()}
    pid = files.process().spawn_detached([dockerd, DOCKERD_MARKER], env, files.log, Path("/"))
    say(f"dockerd started (pid {pid}), log in {files.log}")
    return pid


def _wait_answers(pid: int, log: Path) -> str:
    """Wait until ``docker info`` answers; raise InfraError with the log tail if it won't.

    Liveness is checked by pid alone: /proc may show the new command line only a moment
    after the start, so the marker check of ManagedProcess could miss it.
    """
    deadline = time.monotonic() + _ENGINE_DEADLINE_SECONDS
    while time.monotonic() < deadline:
        version = server_version()
        if version is not None:
            return version
        if not pid_alive(pid):
            raise InfraError(f"dockerd exited during start-up; {log}:\n{tail(log)}")
        time.sleep(_ENGINE_POLL_SECONDS)
    raise InfraError(
        f"dockerd did not answer `docker info` within {_ENGINE_DEADLINE_SECONDS:.0f} s; "
        f"{log}:\n{tail(log)}"
    )


def stop_dockerd(files: DockerdFiles) -> int | None:
    """Stop the dockerd this tool started (SIGTERM, SIGKILL after 60 s); return its pid."""
    process = files.process()
    pid = process.pid
    process.stop(_STOP_TIMEOUT_SECONDS)
    return pid


def compose_version() -> str | None:
    """Return the version ``docker compose version --short`` prints, or None if it fails."""
    try:
        completed = docker(["compose", "version", "--short"])
    except InfraError:
        return None
    version = completed.stdout.strip()
    return version if completed.returncode == 0 and version else None


def plugin_dir() -> Path:
    """Return the docker CLI's per-user plugin folder (``$DOCKER_CONFIG/cli-plugins``)."""
    config = os.environ.get("DOCKER_CONFIG")
    return (Path(config) if config else Path.home() / ".docker") / "cli-plugins"


def ensure_compose(cache_dir: Path, say: Say) -> str:
    """Return the Compose v2 version, building and installing the plugin first if needed."""
    version = compose_version()
    if version is not None:
        return version
    binary = _compose_binary(cache_dir / "compose" / COMPOSE_VERSION, say)
    target = plugin_dir() / "docker-compose"
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(".docker-compose.partial")
    shutil.copy2(binary, staging)
    staging.chmod(0o755)
    staging.replace(target)
    say(f"installed Compose {COMPOSE_VERSION} as {target}")
    version = compose_version()
    if version is None:
        raise InfraError(f"`docker compose version` still fails after installing {target}")
    return version


def _compose_binary(gobin: Path, say: Say) -> Path:
    """Return the cached Compose binary; build it with ``go install`` on a miss (minutes)."""
    binary = gobin / "cmd"
    if binary.is_file():
        return binary
    go = shutil.which("go") or shutil.which("go", path="/usr/local/go/bin")
    if go is None:
        raise InfraError("`docker compose` is missing and Go is not installed to build it")
    gobin.mkdir(parents=True, exist_ok=True)
    log = gobin / "build.log"
    say(f"building Compose {COMPOSE_VERSION} with {go} (a few minutes; log in {log})")
    ldflags = f"-s -w -X {COMPOSE_MODULE}/internal.Version={COMPOSE_VERSION}"
    argv = [go, "install", f"-ldflags={ldflags}", f"{COMPOSE_MODULE}/cmd@{COMPOSE_VERSION}"]
    env = {**os.environ, "GOBIN": str(gobin), "CGO_ENABLED": "0"}
    with log.open("w") as output:
        completed = subprocess.run(
            argv, stdout=output, stderr=subprocess.STDOUT, env=env,
            timeout=_GO_BUILD_TIMEOUT_SECONDS, check=False,
        )  # fmt: skip
    if completed.returncode != 0 or not binary.is_file():
        raise InfraError(f"building Compose failed; {log}:\n{tail(log)}")
    return binary
