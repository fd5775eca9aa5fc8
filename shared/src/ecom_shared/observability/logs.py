"""One logging setup for every service: structlog, one JSON object per line on stdout.

Libraries that log through the standard ``logging`` module (gcloud-aio, aiohttp, acsylla's
bridge) are routed through the same processors, so a service writes a single JSON stream.
Per-message context travels in ``contextvars``; tracebacks are rendered without frame locals
so message payloads never leak into logs.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from ecom_shared.settings import LogSettings

_shared_processors: list[structlog.typing.Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


class _DropShardingNotice(logging.Filter):
    """acsylla (a ScyllaDB driver) logs at ERROR that Cassandra has no shard info: not an error."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "sharding info" not in record.getMessage()


def configure_logging(settings: LogSettings, *, service: str) -> None:
    """Configure structlog and the standard library's root logger. Call once, in ``main()``."""
    renderer: structlog.typing.Processor
    if settings.json_output:
        renderer = structlog.processors.JSONRenderer()
        exception_processors: list[structlog.typing.Processor] = [
            structlog.processors.ExceptionRenderer(
                structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
            )
        ]
    else:
        renderer = structlog.dev.ConsoleRenderer()
        exception_processors = []

    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared_processors,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *exception_processors,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.level)
    # aiohttp's access and client chatter is not ours to report at INFO.
    logging.getLogger("aiohttp").setLevel(max(logging.WARNING, root.level))
    acsylla_logger = logging.getLogger("acsylla")
    if not any(isinstance(f, _DropShardingNotice) for f in acsylla_logger.filters):
        acsylla_logger.addFilter(_DropShardingNotice())

    structlog.configure(
        processors=[
            *_shared_processors,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[settings.level]
        ),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(service=service)


def get_logger(name: str) -> Any:
    """A module's logger. It is a lazy proxy: safe to create at import time, before
    :func:`configure_logging` runs (binding values here would freeze the default setup)."""
    return structlog.stdlib.get_logger(name)
