"""Crashes at the three worst moments (issue 5, scenario 3), through the product's crash hook.

``ECOM_FAULTS__CRASH_AT`` (``ecom_shared.runtime.faults``) makes a service kill itself with SIGKILL
exactly where a fact is durable but not yet acknowledged: the order consumer between joining
a parked payment and its DLQ delete, then between its writes and their ack; the payment
consumer between a DLQ insert and its ack, then between its writes and their ack; the DLQ
worker between a reconcile write and the DLQ delete. Each
crash is checked (killed by SIGKILL, ``fault.crash`` logged at that point), the service is
restarted without the hook, and the run must end with the verifier passing.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from ecom_shared.runtime.faults import CrashPoint
from tests.faults.harness import Scenario
from tests.faults.services import Service
from tests.infra import InfraUnderTest

CRASH_WAIT = 180.0  # the stream reaches every point within seconds; the machine is shared
WORKER_WAIT = 30.0  # passes run every second: a row left for the worker is found within this


def crash_env(point: CrashPoint, after: int) -> dict[str, str]:
    return {"ECOM_FAULTS__CRASH_AT": point.value, "ECOM_FAULTS__CRASH_AFTER": str(after)}


async def died_at(s: Scenario, service: Service, point: CrashPoint) -> None:
    """Wait until ``service`` dies at ``point``, and check how it died."""
    code = await service.wait_exit(CRASH_WAIT)
    assert code == -signal.SIGKILL, f"{service.name} did not crash at {point} (exit {code})"
    crashes = service.events("fault.crash", all_runs=False)
    assert [c["point"] for c in crashes] == [point.value], crashes
    [armed] = service.events("fault.armed", all_runs=False)
    assert armed["point"] == point.value
    s.fault(f"crash {point.value} ({service.kind})")


def restart(s: Scenario, service: Service, then: dict[str, str] | None = None) -> None:
    """Start ``service`` again without its hook, or with the one ``then`` arms."""
    for name in crash_env(CrashPoint.AFTER_WRITE_BEFORE_ACK, 1):
        service.env.pop(name, None)
    service.env.update(then or {})
    s.restart(service)


async def crashed_then_restarted(
    s: Scenario, service: Service, point: CrashPoint, then: dict[str, str] | None = None
) -> None:
    await died_at(s, service, point)
    restart(s, service, then)


@pytest.mark.timeout(600)
async def test_crash_between_durable_effect_and_its_acknowledgement(
    infra: InfraUnderTest, tmp_path: Path
) -> None:
    reconcile = CrashPoint.AFTER_RECONCILE_BEFORE_DELETE
    async with Scenario(infra, "3 crash before ack/delete", tmp_path) as s:
        # The order consumer joins payments parked before their order: it dies between such a
        # join and the DLQ delete, and stays down until the DLQ worker has died there too,
        # which it must: the row it left (joined, still parked) waits for the worker's pass.
        # Unless the payment consumer joined that payment too, racing it (after parking, it
        # looks for the order again) and removed the row: then there is nothing left for the
        # worker, and the order consumer is started again with the same hook.
        [orders] = s.start("order-consumer", env=crash_env(reconcile, 1))
        [payments] = s.start(
            "payment-consumer", env=crash_env(CrashPoint.AFTER_PARK_BEFORE_ACK, 10)
        )
        [worker] = s.start("dlq-worker", env=crash_env(reconcile, 1))
        producer = s.start_producer(
            1500, seed=303, rate=500, payments_first=0.5, duplicates=0.05, malformed=0.02
        )
        await died_at(s, orders, reconcile)
        races = 0
        while await worker.wait_exit(WORKER_WAIT) is None:
            races += 1
            assert races <= 3, "the DLQ worker never found a row the order consumer left"
            restart(s, orders, then=crash_env(reconcile, 1))
            await died_at(s, orders, reconcile)
        await died_at(s, worker, reconcile)
        restart(s, orders, then=crash_env(CrashPoint.AFTER_WRITE_BEFORE_ACK, 3))
        restart(s, worker)
        await crashed_then_restarted(s, orders, CrashPoint.AFTER_WRITE_BEFORE_ACK)
        # The payment consumer crashes twice: restarted first with the hook between its
        # writes and their ack. The batch it died on comes back after its ack deadline, so
        # that point is reached even if the stream has ended by then.
        await crashed_then_restarted(
            s,
            payments,
            CrashPoint.AFTER_PARK_BEFORE_ACK,
            then=crash_env(CrashPoint.AFTER_WRITE_BEFORE_ACK, 2),
        )
        await crashed_then_restarted(s, payments, CrashPoint.AFTER_WRITE_BEFORE_ACK)
        assert await s.wait_producer(producer) == 0
        report = await s.finish()
    assert report.ok, report
    assert sum(report.dead_letter_expected.values()) > 0  # bad input was part of the stream
    # A dead-lettered or announced message whose ack the crash prevented is published again on
    # its redelivery (at least once): such copies may appear, counted apart, and each must
    # follow a crash (report.ok holds only then); every orphan payment was announced.
    assert report.unexplained_copies == report.unannounced == 0, report
    assert report.announced > 0, report
    crashes = -signal.SIGKILL
    assert report.exit_codes == {
        "order-consumer-1": [crashes] * (2 + races) + [0],
        "payment-consumer-1": [crashes, crashes, 0],
        "dlq-worker-1": [crashes, 0],
        "producer-1": [0],
    }, report.exit_codes
    assert report.faults == 5 + races
