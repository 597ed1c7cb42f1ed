"""The hand-written history fixtures, loaded once, as the fuzz suites mutate them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "histories"


def _documents() -> list[dict[str, Any]]:
    documents: list[dict[str, Any]] = []
    for path in sorted(FIXTURES.glob("*.json")):
        data = json.loads(path.read_text())
        documents.extend(data if isinstance(data, list) else [data])
    return documents


DOCUMENTS = _documents()
# GetExecutionHistory documents, and the FilterLogEvents events of the execution-log documents.
HISTORIES = [d for d in DOCUMENTS if d["events"] and "message" not in d["events"][0]]
LOG_EVENTS = [
    e for d in DOCUMENTS if d["events"] and "message" in d["events"][0] for e in d["events"]
]
EVENT_TYPES = sorted(
    {
        e["type"]
        for d in HISTORIES
        for e in d["events"]
        if isinstance(e, dict) and isinstance(e.get("type"), str)
    }
)
