"""Local infrastructure without Docker: Cassandra 5.0 (jars from Maven Central, a JDK 17) and
the Pub/Sub emulator as supervised processes with their ports and pid files, ``ecom-infra``
that runs them, a reader of what waits on an emulator subscription, and the pipeline's
services started as child processes the way a user starts them.
"""
