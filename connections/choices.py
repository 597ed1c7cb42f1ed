"""Choice sets of the connections app, with one colour map for status badges."""

from __future__ import annotations

from django.db import models

from connections import deauthorization


class AuthMode(models.TextChoices):
    DEFAULT_CHAIN = "default", "Default credential chain"
    ASSUME_ROLE = "assume_role", "Assume role (role ARN + external id)"
    ACCESS_KEYS = "access_keys", "Access keys"


class OperatorMode(models.TextChoices):
    """How the optional operator role (replay, redrive; never the sync) gets its credentials.
    No default chain: that would be the reader's own identity, not a separate role."""

    NONE = "", "No operator role"
    ASSUME_ROLE = "assume_role", "Assume role (role ARN + external id)"
    ACCESS_KEYS = "access_keys", "Access keys"


class SyncStatus(models.TextChoices):
    NEVER = "never", "Never synced"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    OK = "ok", "OK"
    PARTIAL = "partial", "Partial (some errors)"
    FAILED = "failed", "Failed"

    @property
    def colour(self) -> str:
        return SYNC_STATUS_COLOURS[self]


SYNC_STATUS_COLOURS = {
    SyncStatus.NEVER: "grey",
    SyncStatus.QUEUED: "blue",
    SyncStatus.RUNNING: "blue",
    SyncStatus.OK: "green",
    SyncStatus.PARTIAL: "orange",
    SyncStatus.FAILED: "red",
}


class AuthorizationType(models.TextChoices):
    BASIC = "BASIC", "Basic"
    API_KEY = "API_KEY", "API key"
    OAUTH_CLIENT_CREDENTIALS = "OAUTH_CLIENT_CREDENTIALS", "OAuth client credentials"
    UNKNOWN = "", "Unknown"


class ConnectionState(models.TextChoices):
    CREATING = "CREATING"
    UPDATING = "UPDATING"
    DELETING = "DELETING"
    AUTHORIZED = "AUTHORIZED"
    DEAUTHORIZED = deauthorization.DEAUTHORIZED
    AUTHORIZING = "AUTHORIZING"
    DEAUTHORIZING = deauthorization.DEAUTHORIZING
    ACTIVE = "ACTIVE"
    FAILED_CONNECTIVITY = "FAILED_CONNECTIVITY"
    DELETED = "DELETED", "Deleted (no longer listed)"
    UNKNOWN = "", "Unknown"

    @property
    def colour(self) -> str:
        return CONNECTION_STATE_COLOURS.get(self, "grey")


CONNECTION_STATE_COLOURS = {
    ConnectionState.AUTHORIZED: "green",
    ConnectionState.ACTIVE: "green",
    ConnectionState.DEAUTHORIZED: "red",
    ConnectionState.FAILED_CONNECTIVITY: "red",
    ConnectionState.AUTHORIZING: "blue",
    ConnectionState.DEAUTHORIZING: "orange",
    ConnectionState.CREATING: "blue",
    ConnectionState.UPDATING: "blue",
    ConnectionState.DELETING: "orange",
    ConnectionState.DELETED: "grey",
}

HEALTHY_CONNECTION_STATES = frozenset({ConnectionState.AUTHORIZED, ConnectionState.ACTIVE})
