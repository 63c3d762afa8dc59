"""Run one service process: logging, metrics exporter, database, server, graceful stop."""

from __future__ import annotations

import logging

from meshkit import logs, metrics

log = logging.getLogger("meshkit.service")


def prepare_process(service: str, level: str, metrics_port: int, host: str) -> None:
    """Configure JSON logs and start the metrics exporter for a service process."""
    logs.configure(service, level)
    metrics.start_exporter(metrics_port, host)
