"""De-authorization: the words AWS uses when EventBridge takes a connection's authorization away.

EventBridge de-authorizes a Basic or API-key connection when the endpoint answers 401 or 407;
from then on every HTTP task through it fails with InvalidConnectionState. The cascade rules
(`connections/health.py`), the classifier's rule, hint and tracker (`executions/classify/`) and
the connection states (`connections/choices.py`) all take these from here. Pure (no Django):
the pure classifier imports it.
"""

from __future__ import annotations

import re

# ConnectionState values (DescribeConnection's ConnectionState).
DEAUTHORIZED = "DEAUTHORIZED"
DEAUTHORIZING = "DEAUTHORIZING"
# The error of every call through a de-authorized connection.
INVALID_STATE = "Events.ConnectionResource.InvalidConnectionState"
# The endpoint's answers that make EventBridge de-authorize the connection, as statuses, as
# the errors of the attempts that got them, and as a number in a state change's reason.
TRIGGER_STATUSES = (401, 407)
TRIGGER_ERRORS = tuple(f"States.Http.StatusCode.{status}" for status in TRIGGER_STATUSES)
TRIGGER_STATUS_IN_TEXT = re.compile(r"\b(" + "|".join(map(str, TRIGGER_STATUSES)) + r")\b")
