"""Log context (request id, sync run, account) and the JSON log format (`LOG_FORMAT=json`).

The context lives in contextvars, set where the work starts and reset where it ends: the
request middleware (dashboard/middleware.py) binds the request id, each sync step binds its run
and account, and a Celery task inherits the request id of the request that queued it (a message
header). `ContextFilter` copies them onto every record, so the plain format can ignore them and
the JSON one always has the keys (null when unbound).

The JSON formatter is python-json-logger's (see docs/reliability.md, "Logs", for why a library):
one object per line. Every string in it, the traceback and any `extra=` field included, goes
through the same Redactor as the message (RedactingLogFilter redacts the message only).
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

from executions.redaction import default_redactor

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "stepscope_request_id", default=None
)
sync_run_id: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "stepscope_sync_run_id", default=None
)
account: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "stepscope_account", default=None
)
FIELDS: dict[str, contextvars.ContextVar[Any]] = {
    "request_id": request_id,
    "sync_run_id": sync_run_id,
    "account": account,
}
# The message header that carries the request id from the web process to a Celery task.
REQUEST_ID_HEADER = "stepscope_request_id"


@contextmanager
def bound(**values: Any) -> Iterator[None]:
    """Bind context fields (names of FIELDS) for the block, restoring the previous values."""
    tokens = [(FIELDS[name], FIELDS[name].set(value)) for name, value in values.items()]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


class ContextFilter(logging.Filter):
    """Adds request_id, sync_run_id and account to every record (None when unbound)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in FIELDS.items():
            if getattr(record, name, None) is None:
                setattr(record, name, var.get())
        if record.request_id is None:  # type: ignore[attr-defined]
            # Django logs a request's 4xx/5xx after the middleware has returned: the request
            # it passes along still has its id.
            record.request_id = getattr(getattr(record, "request", None), "request_id", None)
        return True


class JsonFormatter(_JsonFormatter):
    """One JSON object per line: timestamp, level, logger, message and the context fields."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault(
            "fmt", "%(levelname)s %(name)s %(message)s %(request_id)s %(sync_run_id)s %(account)s"
        )
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger"})
        kwargs.setdefault("timestamp", True)
        super().__init__(*args, **kwargs)
        self.redactor = default_redactor()

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        # Django's request logs pass the request itself: its repr repeats the path (in the
        # message already) and would otherwise be serialised after redaction.
        log_data.pop("request", None)
        return {key: self._redacted(value) for key, value in log_data.items()}

    def _redacted(self, value: Any) -> Any:
        if value is None or isinstance(value, bool | int | float | datetime):
            return value
        if isinstance(value, dict | list | tuple):
            return self.redactor.value(value)
        # Strings, and any other object as the text the JSON encoder would have written.
        return self.redactor.text(value if isinstance(value, str) else str(value))


def connect_celery(publish: Any, prerun: Any, postrun: Any) -> None:
    """Carry the request id into the tasks a request queues (Celery's signals, passed in by
    the project's Celery module so this one stays free of the app)."""
    publish.connect(_add_request_id, weak=False)
    prerun.connect(_bind_task, weak=False)
    postrun.connect(_unbind_task, weak=False)


_task_tokens: dict[str, contextvars.Token[str | None]] = {}


def _add_request_id(headers: dict[str, Any] | None = None, **_: Any) -> None:
    current = request_id.get()
    if headers is not None and current:
        headers[REQUEST_ID_HEADER] = current


def _bind_task(task_id: str = "", task: Any = None, **_: Any) -> None:
    carried = getattr(getattr(task, "request", None), REQUEST_ID_HEADER, None)
    # An eager task (no message) runs inside the request and keeps its id.
    _task_tokens[task_id] = request_id.set(
        carried if isinstance(carried, str) else request_id.get()
    )


def _unbind_task(task_id: str = "", **_: Any) -> None:
    token = _task_tokens.pop(task_id, None)
    if token is not None:
        request_id.reset(token)
