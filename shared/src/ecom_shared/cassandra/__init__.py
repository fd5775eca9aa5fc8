"""Cassandra access: the driver session and its options, the schema and its check, and the two
tables as ports (``store``) with their Cassandra implementation. CQL values acsylla cannot
handle, the replication setting and TLS material are read and encoded here too.
"""
