"""Template filters the pages share."""

from __future__ import annotations

from django import template

from executions import charts
from executions.classify.titles import connection_label as _connection_label

register = template.Library()


@register.filter
def connection_label(arn: str) -> str:
    """ "orders-api (123456789012, eu-west-1)": connections with the same name in different
    accounts or regions stay apart wherever one is named (the ARN holds both)."""
    return _connection_label(arn or "") if arn else ""


@register.filter
def duration(seconds: float | None) -> str:
    """ "850 ms", "12.4 s", "3.1 min", "2.0 h"; "" when unknown (still running)."""
    return charts.duration_label(seconds) if seconds is not None else ""
