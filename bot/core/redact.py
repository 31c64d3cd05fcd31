"""Secrets never reach a log line or a traceback.

python-telegram-bot puts the whole token into `InvalidToken`'s text, aiohttp and httpx
errors carry the request URL (which holds the token), and SQLAlchemy's connection errors
may carry the database URL. A filter on every handler of the root logger replaces the bot
token, the secret key and the database password with `<redacted>` in the message, its
arguments and any traceback, however the library formatted them; uncaught exceptions
printed at exit go through the same replacement.
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Iterable
from types import TracebackType
from urllib.parse import quote

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

REDACTED = "<redacted>"
# Shorter values would match ordinary text; no real secret is this short.
MIN_SECRET = 6


class Redactor(logging.Filter):
    """Replaces known secrets in log records (attach it to handlers: a logger's own filters
    do not see records that propagate from its children)."""

    def __init__(self) -> None:
        super().__init__("sezim-redact")
        self._secrets: list[str] = []

    def add(self, *values: str | None) -> None:
        """Secrets to hide, in the forms they appear in: as given, URL-quoted, and for a
        bot token its secret part alone; a list of keys (`NEW,OLD`) each on its own."""
        found = set(self._secrets)
        for value in values:
            for part in _forms(value):
                if len(part) >= MIN_SECRET:
                    found.add(part)
        self._secrets = sorted(found, key=len, reverse=True)

    def add_database_url(self, url: str | None) -> None:
        if not url:
            return
        try:
            password = make_url(url).password
        except ArgumentError:
            return
        self.add(str(password) if password else None)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the line
            message = f"{record.msg} {record.args}"
        record.msg, record.args = self.redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
            record.exc_info = None
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def _forms(value: str | None) -> Iterable[str]:
    if not value:
        return []
    parts = [p.strip() for p in value.split(",") if p.strip()] or [value]
    forms: list[str] = []
    for part in [value, *parts]:
        forms += [part, quote(part, safe="")]
        if ":" in part:  # a bot token: its secret half alone also gives it away
            forms.append(part.split(":", 1)[1])
    return forms


REDACTOR = Redactor()


def install() -> None:
    """Put the redactor on every handler of the root logger, and on uncaught exceptions."""
    for handler in logging.getLogger().handlers:
        if REDACTOR not in handler.filters:
            handler.addFilter(REDACTOR)
    sys.excepthook = _excepthook


def _excepthook(kind: type[BaseException], value: BaseException,
                tb: TracebackType | None) -> None:
    text = "".join(traceback.format_exception(kind, value, tb))
    sys.stderr.write(REDACTOR.redact(text))
