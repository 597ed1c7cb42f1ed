"""The facts a rule looks at, derived once per attempt (and lazily where they cost)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from connections.arn import connection_name
from executions.classify.cause import CauseInfo, is_forbidden_header
from executions.classify.context import ClassificationContext, RequestShape, shape_diff
from executions.classify.endpoint_templates import endpoint_template
from executions.history import ParsedAttempt


@dataclass(slots=True)
class Facts:
    """Everything the rules look at, derived once per attempt.

    Checks record what decided (`decided_by`) and what they found (`extra`); both end up in
    the evidence.
    """

    attempt: ParsedAttempt
    context: ClassificationContext
    error: str
    status: int | None
    cause: CauseInfo
    decided_by: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    _diff: dict[str, list[str]] | None = None
    _endpoint: str | None = None

    @property
    def endpoint(self) -> str:
        # Only hints need it, and successes (most attempts) have none.
        if self._endpoint is None:
            self._endpoint = endpoint_template(self.attempt.url) if self.attempt.url else ""
        return self._endpoint

    @property
    def duration_ms(self) -> int | None:
        return self.attempt.duration_ms

    @property
    def connection(self) -> str:
        return connection_label(self.context.connection_name, self.attempt.connection_arn)

    @property
    def call(self) -> str:
        method = self.attempt.method or "the call"
        return f"{method} {self.endpoint}" if self.endpoint else method

    def shape_diff(self) -> dict[str, list[str]]:
        """Names present in the last success to this endpoint and absent from this attempt."""
        if self._diff is None:
            self._diff = shape_diff(self.context.last_success_shape, RequestShape.of(self.attempt))
        return self._diff

    def forbidden_header(self) -> tuple[str, str]:
        """A header Step Functions refuses, and where it was seen (what was sent wins)."""
        headers = self.attempt.request_headers
        sent = {str(k).lower() for k in headers} if isinstance(headers, Mapping) else set()
        declared = (
            self.context.definition_state.header_names
            if self.context.definition_state
            else frozenset()
        )
        for names, source in ((sent, "request_headers"), (declared, "definition_state")):
            found = next((h for h in sorted(names) if is_forbidden_header(h)), "")
            if found:
                return found, source
        return self.cause.forbidden_header, "cause"


def connection_label(name: str, arn: str) -> str:
    """The connection's name: given, or read from its ARN."""
    if name:
        return name
    return connection_name(arn) or arn or "(unknown connection)"
