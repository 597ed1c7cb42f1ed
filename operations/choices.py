"""Choice sets of the operations app."""

from __future__ import annotations

from django.db import models


class ActionKind(models.TextChoices):
    REPLAY = "replay", "Replay"
    REVEAL = "reveal", "Replay with secrets revealed"
    REDRIVE = "redrive", "Redrive"


class ActionOutcome(models.TextChoices):
    PENDING = "pending", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    REFUSED = "refused", "Refused by AWS"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"

    @property
    def colour(self) -> str:
        return OUTCOME_COLOURS[self]


OUTCOME_COLOURS = {
    ActionOutcome.PENDING: "blue",
    ActionOutcome.RUNNING: "blue",
    ActionOutcome.SUCCEEDED: "green",
    ActionOutcome.REFUSED: "orange",
    ActionOutcome.FAILED: "red",
    ActionOutcome.CANCELLED: "grey",
}


# The Django permissions (codename, label) granted through groups; `operations.<codename>`.
REPLAY_PERMISSION = "operations.replay_attempt"
REVEAL_PERMISSION = "operations.reveal_secrets"
REDRIVE_PERMISSION = "operations.redrive_execution"
AUDIT_PERMISSION = "operations.view_operatoraction"
