"""The fault scenarios' summary: one table row per scenario at the end of the run."""

from __future__ import annotations

import pytest

from tests.faults.report import EMITTED, table


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if EMITTED:
        terminalreporter.section("fault scenarios")
        for line in table(EMITTED):
            terminalreporter.write_line(line)
