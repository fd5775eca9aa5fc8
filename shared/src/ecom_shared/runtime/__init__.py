"""The service runtime: running a service (signals, exit codes, resources in one exit stack),
the one consumer loop with its settling of acks, its dependency gate, in-flight limit and
backoff, the micro-batcher that merges concurrent calls (under the coalesced reads and the
batching publisher), and the crash points the fault tests arm.
"""
