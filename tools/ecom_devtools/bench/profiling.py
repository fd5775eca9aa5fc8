"""py-spy profiles of the consumers while they drain, and a summary of where time goes.

py-spy samples the process from outside (no change to the code under test) and, without
``--idle``, only counts samples where a thread was running Python, so shares below are
shares of the busy time. Profiled drains run slower; the benchmark reports their figures
apart from the unprofiled ones.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from ecom_devtools.bench.drain_results import ProfileSummary

_RATE = 200  # samples per second


@contextlib.contextmanager
def recording(out_dir: Path, name: str, pids: list[int]) -> Iterator[list[Path]]:
    """py-spy records each pid (collapsed stacks) until the block ends."""
    beside = Path(sys.executable).parent / "py-spy"  # the virtualenv's, when not activated
    py_spy = str(beside) if beside.exists() else shutil.which("py-spy")
    if py_spy is None:
        raise RuntimeError("py-spy is not installed (it is in requirements/dev.in)")
    out_dir.mkdir(parents=True, exist_ok=True)
    files = [out_dir / f"{name}-{i}.txt" for i in range(len(pids))]
    spies = [
        subprocess.Popen(
            [py_spy, "record", "--pid", str(pid), "--rate", str(_RATE), "--format", "raw",
             "--nonblocking", "--output", str(path)],
            stdout=subprocess.DEVNULL,
            stderr=(out_dir / f"{name}-{i}.py-spy.log").open("wb"),
        )
        for i, (pid, path) in enumerate(zip(pids, files, strict=True))
    ]  # fmt: skip
    try:
        yield files
    finally:
        for spy in spies:
            spy.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        for spy in spies:
            try:
                spy.wait(30)
            except subprocess.TimeoutExpired:
                spy.kill()
                spy.wait(10)


_LINE = re.compile(r":\d+\)$")


def _frames(line: str) -> tuple[list[str], int]:
    """``f (file.py:12);g (other.py:3) 17`` -> (["f (file.py)", "g (other.py)"], 17)."""
    stack, _, count = line.rstrip().rpartition(" ")
    frames = [_LINE.sub(")", f.strip()) for f in stack.split(";") if f.strip()]
    return frames, int(count)


def summarise(path: Path, top: int = 25) -> ProfileSummary:
    """Self and inclusive shares of the busy samples, by function, from a collapsed file."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    if not path.exists():
        return ProfileSummary(0, [], [])
    for line in path.read_text(errors="replace").splitlines():
        if not line.strip():
            continue
        frames, count = _frames(line)
        frames = [f for f in frames if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count

    def share(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(f, round(100 * n / total, 1)) for f, n in counter.most_common(top)]

    return ProfileSummary(total, share(own), share(inclusive))
