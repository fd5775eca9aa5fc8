"""Supervising one long-running server process through a pid file.

A server is started in its own session so that it outlives the command that launched it,
and is found again later (from any process) through its pid file. Before a pid read from a
file is signalled, its command line must contain a marker that only our launch puts there,
so a stale pid file can never make us signal an unrelated process that reused the pid.
"""

from __future__ import annotations

import abc
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import ClassVar

from ecom_devtools.errors import InfraError

_POLL_SECONDS = 0.1
MARKER_PROPERTY = "-Decom_devtools.base_dir"
"""The JVM system property that marks a server as launched from one base directory."""
# Runs "$@" in the background with output appended to $1 and prints its pid; the shell then
# exits, so the server is re-parented to init and is no child of ours.
_DETACH_SCRIPT = 'log=$1; shift; "$@" >>"$log" 2>&1 </dev/null & echo $!'


def read_cmdline(pid: int) -> list[str] | None:
    """Return the arguments of ``pid``, or None if they cannot be read.

    Without /proc (macOS) ``ps`` is asked, and arguments are split on whitespace.
    """
    proc_dir = Path(f"/proc/{pid}")
    if Path("/proc/self").is_dir():
        try:
            raw = (proc_dir / "cmdline").read_bytes()
        except OSError:
            return None
        return raw.decode(errors="replace").split("\0")[:-1] or None
    completed = subprocess.run(
        ["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True, check=False
    )
    return completed.stdout.split() or None


def _is_exited_zombie(pid: int) -> bool:
    """Return True if ``pid`` has fully exited but was not reaped yet (Linux; else False).

    A multi-threaded process (a JVM) shows state Z as soon as its main thread is done, while
    other threads may still hold its files and sockets; only with one thread left is it over.
    """
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    state = fields.get("State", "").split()
    threads = fields.get("Threads", "1").strip()
    return bool(state) and state[0] == "Z" and threads in {"0", "1"}


def pid_alive(pid: int) -> bool:
    """Return True if a process with this pid exists and has not exited."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_exited_zombie(pid)


def rss_bytes(pid: int) -> int | None:
    """Return the resident set size of ``pid`` in bytes, or None if unknown."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return None


def tail(path: Path, lines: int = 40) -> str:
    """Return the last ``lines`` lines of a text file, or a note if it does not exist."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 64 * 1024))
            text = handle.read().decode(errors="replace")
    except OSError:
        return f"({path} does not exist)"
    return "\n".join(text.splitlines()[-lines:])


class ManagedProcess:
    """One server process, tracked by a pid file and recognised by a command-line marker."""

    def __init__(self, pid_file: Path, marker: str) -> None:
        """Track the process recorded in ``pid_file`` that has ``marker`` as one argument."""
        self._pid_file = pid_file
        self._marker = marker
        self._popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """Return the pid of the running process, or None if it is not running."""
        if self._popen is not None:
            return self._popen.pid if self._popen.poll() is None else None
        pid = self._read_pid_file()
        if pid is None or not pid_alive(pid):
            return None
        args = read_cmdline(pid)
        return pid if args is not None and self._marker in args else None

    @property
    def returncode(self) -> int | None:
        """Return the exit status if this object started the process and it has exited."""
        return None if self._popen is None else self._popen.poll()

    def is_running(self) -> bool:
        """Return True if the process is alive (a paused process counts as running)."""
        return self.pid is not None

    def spawn(self, argv: Sequence[str], env: Mapping[str, str], log_path: Path, cwd: Path) -> int:
        """Start ``argv`` in a new session with output appended to ``log_path``; return its pid."""
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            self._popen = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=dict(env),
                start_new_session=True,
            )
        self._write_pid_file(self._popen.pid)
        return self._popen.pid

    def spawn_detached(
        self, argv: Sequence[str], env: Mapping[str, str], log_path: Path, cwd: Path
    ) -> int:
        """Start ``argv`` as a daemon in a new session, output appended to ``log_path``, and
        return its pid. Unlike :meth:`spawn` the daemon is not our child, so no ``Popen`` is
        left to reap (or to warn when it is garbage-collected) while it outlives this process.
        """
        log_path.parent.mkdir(parents=True, exist_ok=True)
        launcher = subprocess.run(
            ["sh", "-c", _DETACH_SCRIPT, "sh", str(log_path), *argv],
            capture_output=True, text=True, cwd=cwd, env=dict(env),
            start_new_session=True, timeout=30, check=False,
        )  # fmt: skip
        try:
            pid = int(launcher.stdout.strip())
        except ValueError as exc:
            raise InfraError(f"could not start {argv[0]}: {launcher.stderr.strip()}") from exc
        self._write_pid_file(pid)
        return pid

    def send(self, sig: signal.Signals) -> bool:
        """Send ``sig`` to the process; return False if it was not running."""
        pid = self.pid
        if pid is None:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        return True

    def stop(self, timeout: float) -> None:
        """SIGTERM the process, wait up to ``timeout`` seconds, then SIGKILL it. Idempotent."""
        pid = self.pid
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
                os.kill(pid, signal.SIGCONT)  # a paused JVM must run to act on SIGTERM
            if not self._wait_gone(pid, timeout):
                self._kill_and_wait(pid)
        self._pid_file.unlink(missing_ok=True)

    def kill(self) -> None:
        """SIGKILL the process and wait until it is gone. Idempotent."""
        pid = self.pid
        if pid is not None:
            self._kill_and_wait(pid)
        self._pid_file.unlink(missing_ok=True)

    def _kill_and_wait(self, pid: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        self._wait_gone(pid, 30.0)

    def _wait_gone(self, pid: int, timeout: float) -> bool:
        """Wait until ``pid`` has exited (reaping it if it is our child); True if it did."""
        if self._popen is not None and self._popen.pid == pid:
            try:
                self._popen.wait(timeout)
            except subprocess.TimeoutExpired:
                return False
            return True
        deadline = time.monotonic() + timeout
        while pid_alive(pid):
            if time.monotonic() >= deadline:
                return False
            time.sleep(_POLL_SECONDS)
        return True

    def _read_pid_file(self) -> int | None:
        try:
            return int(self._pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def _write_pid_file(self, pid: int) -> None:
        self._pid_file.parent.mkdir(parents=True, exist_ok=True)
        temporary = self._pid_file.with_suffix(".pid.tmp")
        temporary.write_text(f"{pid}\n")
        temporary.replace(self._pid_file)


class LocalJvm(abc.ABC):
    """A JVM server run from one base directory: found by its pid file there (from any
    process), stopped, killed, paused and resumed. Subclasses start it and read its logs."""

    name: ClassVar[str]
    """How errors name the server, e.g. "Cassandra"."""
    stop_timeout: ClassVar[float]
    """Seconds :meth:`stop` waits after SIGTERM before SIGKILL."""

    def __init__(self, base_dir: Path, pid_file_name: str) -> None:
        self.base_dir = base_dir.resolve()
        self.pid_file = self.base_dir / pid_file_name
        self._marker = f"{MARKER_PROPERTY}={self.base_dir}"
        self._process = ManagedProcess(self.pid_file, self._marker)

    @property
    def pid(self) -> int | None:
        """The JVM's pid while it runs, else None."""
        return self._process.pid

    def is_running(self) -> bool:
        """Return True while the JVM is alive (also when paused)."""
        return self._process.is_running()

    def rss_bytes(self) -> int | None:
        """Return the JVM's resident memory in bytes, or None if it is not running."""
        pid = self.pid
        return None if pid is None else rss_bytes(pid)

    def stop(self, timeout: float | None = None) -> None:
        """Stop the JVM (SIGTERM, then SIGKILL after ``timeout`` s). Idempotent."""
        self._process.stop(self.stop_timeout if timeout is None else timeout)

    def kill(self) -> None:
        """SIGKILL the JVM, as a crash would."""
        self._process.kill()

    def pause(self) -> None:
        """Freeze the JVM with SIGSTOP (clients see timeouts, not refused connections)."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Let a paused JVM run again with SIGCONT."""
        self._signal(signal.SIGCONT)

    def _refuse_if_running(self) -> None:
        if self.is_running():
            raise InfraError(f"{self.name} already runs from {self.base_dir} (pid {self.pid})")

    def _raise_if_exited(self) -> None:
        if self.is_running():
            return
        code = self._process.returncode
        status = f" with status {code}" if code is not None else ""
        raise InfraError(f"{self.name} exited during start-up{status}\n{self._log_tails()}")

    @abc.abstractmethod
    def _log_tails(self) -> str:
        """The last lines of the server's logs, for an error message."""

    def _signal(self, sig: signal.Signals) -> None:
        if not self._process.send(sig):
            raise InfraError(f"{self.name} is not running from {self.base_dir}")
