"""Pub/Sub access: the HTTP client (publisher, subscription, received messages), batching of
concurrent publishes, the dead-letter topic, and ``ecom-setup``, which creates the topics and
subscriptions (and applies the schema through :mod:`ecom_shared.cassandra.schema`).
"""
