"""PostgreSQL-safe column values: what the parser or AWS gives, made storable.

Used wherever AWS text reaches a column or a query (the sync's execution rows, attempt rows,
their lookups), so a NUL or a lone surrogate in a third-party answer never fails a write.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from executions.history import ParsedAttempt

# PostgreSQL refuses NUL in text and jsonb, and lone surrogates anywhere (Python strings and
# JSON escapes allow them, UTF-8 does not); a third-party body may well contain either.
_PG_UNSAFE = re.compile("[\x00\ud800-\udfff]")


def pg_safe(value: Any) -> Any:
    """`value` with what PostgreSQL would refuse replaced: NUL and lone surrogates by U+FFFD,
    NaN and infinities (no JSON number) by their text."""
    if isinstance(value, str):
        return _PG_UNSAFE.sub("\ufffd", value) if _PG_UNSAFE.search(value) else value
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {pg_safe(k): pg_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [pg_safe(v) for v in value]
    return value


def jsonable(value: Any) -> Any:
    """JSON columns take only JSON: anything exotic from a parser becomes its text."""
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        value = json.loads(json.dumps(value, default=str))
    return pg_safe(value)


def pg_safe_texts(parsed: ParsedAttempt) -> ParsedAttempt:
    """The texts that reach queries as well as columns (endpoint, connection and last-success
    lookups) made PostgreSQL-safe in place: a NUL in a URL must not fail the lookup."""
    for name in ("state_name", "branch_path", "method", "url", "connection_arn", "error", "cause"):
        setattr(parsed, name, pg_safe(getattr(parsed, name)))
    return parsed


def is_status(code: Any) -> bool:
    """An HTTP status the status_code column can hold (and that means one)."""
    return isinstance(code, int) and 100 <= code <= 999
