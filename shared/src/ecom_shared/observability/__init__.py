"""Observability: structured logs, the Prometheus metrics, the health state with its HTTP port
(``/metrics``, ``/livez``, ``/readyz``), ``ecom-health`` that probes it, and a process's peak
memory.
"""
