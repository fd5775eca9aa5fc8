"""The shared library of the order/payment pipeline.

Modules, each named for what it holds: ``settings``, ``logs``, ``events``, ``errors``,
``policy``, ``pubsub``, ``consumer``, ``deadletter``, ``cassandra``, ``schema``, ``store``,
``resources``, ``service``, ``provision``, ``manifest``.
"""
