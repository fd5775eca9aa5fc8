"""Exceptions raised by ecom_devtools."""

from __future__ import annotations


class InfraError(RuntimeError):
    """A local infrastructure process could not be installed, started, reached or stopped."""


class CqlError(InfraError):
    """A CQL statement failed, or Cassandra could not be reached to run it."""
