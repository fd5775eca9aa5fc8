"""The producer: a realistic stream of orders and payments into Pub/Sub, with a manifest."""
