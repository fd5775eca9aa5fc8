"""Exceptions raised by ecom_devtools, and how its commands report them."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence


class InfraError(RuntimeError):
    """A local infrastructure process could not be installed, started, reached or stopped."""


class CqlError(InfraError):
    """A CQL statement failed, or Cassandra could not be reached to run it."""


def run_subcommand(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> int:
    """Parse ``argv`` and run the handler its subcommand set; an InfraError is one line on
    stderr and exit 1, an interrupt exit 130."""
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except InfraError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        return 130
