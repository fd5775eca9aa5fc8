"""The verifier: the manifest (the producer's ground truth, one JSON line per published
message, and the rules that fold it into what the tables must hold) and ``ecom-verify``, which
checks the tables and the dead letters against it, category by category.
"""
