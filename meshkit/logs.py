"""JSON logging with the request id of the current call in every line.

:func:`configure` sends every log line of the process to stdout as one JSON object (``time``,
``level``, ``service``, ``logger``, ``message``, and ``request_id``, ``trace_id``, ``span_id``,
``exception`` when there are), including warnings and the uncaught exceptions of the main
thread and of other threads. A record logged with ``extra={"fields": {...}}`` carries those
fields too (the gateway's access line). :func:`json_line` formats one line without logging, for
what must be written before or without logging (a failed start, a child's plain output).
Operators' guide: docs/logging.md.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from types import TracebackType

from meshkit import tracing
from meshkit.interceptors import request_id_var


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON object per line."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        trace_ids = tracing.current_ids()
        if trace_ids is not None:
            entry["trace_id"], entry["span_id"] = trace_ids
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        fields = getattr(record, "fields", None)
        if isinstance(fields, Mapping):
            for key, value in fields.items():
                entry.setdefault(str(key), value)
        return json.dumps(entry, default=str)


def configure(service: str, level: str = "INFO") -> None:
    """Send every log line of this process to stdout as JSON, and its crashes and warnings.

    Uncaught exceptions (``sys.excepthook``, ``threading.excepthook``) become one ``critical``
    or ``error`` line with the traceback in ``exception``; ``warnings`` go through logging.
    The asyncio loop's default exception handler logs through logging already.
    """
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("ccxt").setLevel(logging.WARNING)
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_thread_exception


def json_line(
    service: str,
    level: str,
    message: str,
    *,
    logger: str = "root",
    exc_info: BaseException | None = None,
) -> str:
    """Return one JSON log line (no newline) in :class:`JsonFormatter`'s shape, without logging.

    Parameters
    ----------
    service
        The ``service`` field.
    level
        ``debug``, ``info``, ``warning``, ``error`` or ``critical``.
    message
        The message, as is (no ``%`` formatting).
    logger
        The ``logger`` field.
    exc_info
        An exception whose traceback goes in ``exception``.
    """
    record = logging.LogRecord(
        logger,
        logging.getLevelNamesMapping().get(level.upper(), logging.INFO),
        __file__,
        0,
        message,
        None,
        (type(exc_info), exc_info, exc_info.__traceback__) if exc_info is not None else None,
    )
    return JsonFormatter(service).format(record)


def _log_uncaught(
    exc_type: type[BaseException],
    value: BaseException,
    traceback: TracebackType | None,
) -> None:
    logging.getLogger("uncaught").critical(
        "uncaught %s: %s", exc_type.__name__, value, exc_info=(exc_type, value, traceback)
    )


def _log_thread_exception(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return  # what the default hook does: a thread's SystemExit ends the thread silently
    name = args.thread.name if args.thread is not None else "?"
    logging.getLogger("uncaught").error(
        "uncaught %s in thread %s: %s",
        args.exc_type.__name__,
        name,
        args.exc_value,
        exc_info=args.exc_value,
    )
