"""Completing a parked payment: write it to its order's row, then clear it from the DLQ table.

Three places do it: the order consumer as soon as the order arrives, the payment consumer when
the order landed while the payment was being parked, and the DLQ worker's pass for whatever
the first two missed. Both steps are idempotent and run in this order, so a crash between
them leaves the row complete and the payment still parked; the next attempt writes the same
values again (the same version's timestamp), then clears it. The clearing deletes only the
version that was written: a newer version parked meanwhile stays, for the next attempt.
"""

from __future__ import annotations

from datetime import datetime

from ecom_shared.cassandra.store import DlqTable, OrdersTable, ParkedPayment, PaymentSource
from ecom_shared.runtime.faults import NO_CRASH, CrashHook, CrashPoint


async def complete_parked(
    orders: OrdersTable,
    dlq: DlqTable,
    parked: ParkedPayment,
    source: PaymentSource,
    now: datetime,
    *,
    crash: CrashHook = NO_CRASH,
) -> bool:
    """True when a payment was written to its row; a stub (no payment fields) is only cleared.
    ``crash`` is the fault-injection tests' hook between the two steps."""
    version = parked.version
    if parked.payment is not None and version is not None:
        await orders.set_payment(parked.payment, version, source, now)
        crash.reached(CrashPoint.AFTER_RECONCILE_BEFORE_DELETE)
    await dlq.remove(parked.order_id, parked.payment_id, version)
    return parked.payment is not None
