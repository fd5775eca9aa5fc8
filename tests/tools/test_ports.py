"""The suite's ports: distinct, outside the ephemeral range, shifted together by the offset."""

from __future__ import annotations

import importlib
from collections.abc import Iterator

import pytest

from tests import ports

GIVEN_OUTRIGHT = ("ECOM_TEST_CQL_PORT", "ECOM_TEST_STORAGE_PORT", "ECOM_TEST_JMX_PORT")


def _named() -> dict[str, int]:
    return {
        k: v
        for k, v in vars(ports).items()
        if k.isupper() and isinstance(v, int) and k not in {"EPHEMERAL_FROM", "OFFSET"}
    }


@pytest.fixture
def defaults(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, int]]:
    """The ports with no variable set; the module is reloaded as the run had it afterwards."""
    for variable in (*GIVEN_OUTRIGHT, "ECOM_TEST_PUBSUB_PORT", "ECOM_TEST_PORT_OFFSET"):
        monkeypatch.delenv(variable, raising=False)
    importlib.reload(ports)
    try:
        yield _named()
    finally:
        monkeypatch.undo()
        importlib.reload(ports)


def test_every_port_is_distinct_and_below_the_ephemeral_range(defaults: dict[str, int]) -> None:
    assert len(defaults) == 16
    assert len(set(defaults.values())) == len(defaults), defaults
    assert all(1024 <= p < ports.EPHEMERAL_FROM for p in defaults.values()), defaults
    assert defaults["CQL"] == 19042


def test_the_offset_shifts_every_default(
    defaults: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ECOM_TEST_PORT_OFFSET", "500")
    monkeypatch.setenv("ECOM_TEST_CQL_PORT", "19999")  # a port given outright is not shifted
    importlib.reload(ports)
    shifted = _named()
    assert shifted.pop("CQL") == 19999
    assert shifted == {k: v + 500 for k, v in defaults.items() if k != "CQL"}


def test_an_offset_into_the_ephemeral_range_is_refused(
    defaults: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ECOM_TEST_PORT_OFFSET", "5000")
    with pytest.raises(RuntimeError, match=r"test port 34142 \(from 29142 \+ ECOM_TEST_PORT_OFF"):
        importlib.reload(ports)


def test_an_offset_that_is_not_a_number_is_refused(
    defaults: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ECOM_TEST_PORT_OFFSET", "ten")
    with pytest.raises(RuntimeError, match="ECOM_TEST_PORT_OFFSET must be an integer, not 'ten'"):
        importlib.reload(ports)
