"""What Linux tells of a process's memory: its peak resident set size."""

from __future__ import annotations

from pathlib import Path


def peak_rss_bytes(pid: int | None = None) -> int | None:
    """Peak resident memory (``VmHWM``) of ``pid``, or of this process; None where /proc has
    no such line or the process is gone."""
    try:
        status = Path(f"/proc/{pid or 'self'}/status").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return None
