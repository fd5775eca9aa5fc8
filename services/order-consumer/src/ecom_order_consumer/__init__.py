"""The order consumer: orders from Pub/Sub into the order columns of ``order_payments``."""
