"""``ecom-bench``: the pipeline's benchmark on its own real Cassandra and Pub/Sub emulator.

Every figure comes with a ratio to a ceiling measured in the same run by minimal consumers
built from the same libraries (gcloud-aio-pubsub, acsylla) and no product code. See
docs/benchmark.md for what each scenario measures and how.
"""
