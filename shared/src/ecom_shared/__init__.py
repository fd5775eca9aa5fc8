"""The shared library of the order/payment pipeline.

The domain lives at the top: the events on the wire, the errors and the one error policy,
write versions, settings. Beneath it, one package per concern: :mod:`ecom_shared.cassandra`
(the session and the tables), :mod:`ecom_shared.pubsub` (the client, dead letters, set-up),
:mod:`ecom_shared.runtime` (running a service and the consumer loop) and
:mod:`ecom_shared.observability` (logs, metrics, health).
"""
