"""Structured logging (structlog): key=value on a terminal, JSON lines when log_json is set.

Logs never carry secrets. Tracebacks are rendered without local variables (structlog's default
console renderer would print every frame's locals: the settings with their keys, users' password
hashes), and a last processor masks what still looks like a credential: the configured secret
values (see `register_secrets`), password hashes, bearer and refresh tokens, JWTs.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import Iterable
from typing import Any

import structlog

MASK = "[redacted]"

# Shapes of credentials that must never reach a log line, whatever carried them there.
_CREDENTIAL_SHAPES = re.compile(
    r"\$argon2(?:id|i|d)\$[^\s'\"]+"  # password hashes
    r"|\bhd[xr]_[A-Za-z0-9_\-]{16,}"  # personal API tokens and refresh tokens
    r"|\beyJ[A-Za-z0-9_\-]+\.eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+"  # JWTs
)

_secrets: set[str] = set()
_secrets_lock = threading.Lock()


def register_secrets(values: Iterable[str | None]) -> None:
    """Values to mask wherever they appear in a log line (keys, passwords inside URLs...)."""
    with _secrets_lock:
        # Very short values would mask ordinary words; no real secret is that short.
        _secrets.update(v for v in values if v and len(v) >= 6)


def redact(text: str) -> str:
    with _secrets_lock:
        known = sorted(_secrets, key=len, reverse=True)
    for value in known:
        if value in text:
            text = text.replace(value, MASK)
    return _CREDENTIAL_SHAPES.sub(MASK, text)


def _redact_rendered(_logger: Any, _method: str, line: str) -> str:
    return redact(line)


def configure_logging(level: str = "INFO", json: bool = False) -> None:
    """Set up structlog; the last step masks credentials in the rendered line (console or JSON)."""
    processors: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if json:
        # exc_info becomes a plain traceback string: file, line and code, never the frames' locals.
        processors.append(structlog.processors.format_exc_info)
        renderer: structlog.types.Processor = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=structlog.dev.plain_traceback
        )
    structlog.configure(
        processors=[*processors, renderer, _redact_rendered],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def ensure_logging(level: str = "INFO", json: bool = False) -> None:
    """Configure logging unless the program did already: structlog's own default prints locals."""
    if not structlog.is_configured():
        configure_logging(level, json)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name)
