"""The DLQ worker: joins parked payments with orders that have since arrived."""
