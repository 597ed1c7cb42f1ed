"""AWS accounts we read from, the EventBridge connections they own, and the endpoints called."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Group
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import connection, models, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.urls import reverse

from connections.choices import (
    AuthMode,
    AuthorizationType,
    ConnectionState,
    OperatorMode,
    SyncStatus,
)
from connections.crypto import EncryptedTextField

if TYPE_CHECKING:
    AnyUser = AbstractBaseUser | AnonymousUser

account_id_validator = RegexValidator(r"^\d{12}$", "An AWS account id is exactly 12 digits.")


def sync_stale_after() -> timedelta:
    """How long a sync may go without a heartbeat before the next trigger takes it over."""
    return timedelta(seconds=int(settings.STEPSCOPE["SYNC_STALE_AFTER_SECONDS"]))


class AwsAccountQuerySet(models.QuerySet["AwsAccount"]):
    def visible_to(self, user: Any) -> AwsAccountQuerySet:
        """Accounts this user may see: all for superusers, else those granted to their groups.

        Every view scopes its queries through this one method, so access has one definition.
        """
        if not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
            return self.none()
        if user.is_superuser:
            return self.all()
        granted = AwsAccount.groups.through.objects.filter(
            awsaccount_id=OuterRef("pk"), group__user=user
        )
        return self.filter(Exists(granted))

    def claimable(self, now: datetime) -> AwsAccountQuerySet:
        """Accounts no live sync holds: unclaimed, or held by a run that stopped beating."""
        return self.filter(
            Q(sync_run__isnull=True)
            | Q(sync_heartbeat_at__isnull=True)
            | Q(sync_heartbeat_at__lt=now - sync_stale_after())
        )

    def enabled(self) -> AwsAccountQuerySet:
        return self.filter(enabled=True)


class AwsAccount(models.Model):
    """An AWS account (and its regions) registered by an admin for ingestion."""

    name = models.CharField(max_length=100, unique=True)
    account_id = models.CharField(max_length=12, validators=[account_id_validator])
    regions = models.JSONField(default=list, help_text="Region names, e.g. ['eu-west-1'].")
    auth_mode = models.CharField(
        max_length=20, choices=AuthMode.choices, default=AuthMode.DEFAULT_CHAIN
    )
    role_arn = models.CharField(max_length=2048, blank=True)
    # Secrets: encrypted at rest, write-only in forms, never logged or rendered.
    external_id = EncryptedTextField(blank=True)
    access_key_id = EncryptedTextField(blank=True)
    secret_access_key = EncryptedTextField(blank=True)
    # The optional operator role: used only for replay and redrive (operations/), never by the
    # sync, so an account can be read without anyone being able to change anything in it.
    operator_auth_mode = models.CharField(
        max_length=20, choices=OperatorMode.choices, default=OperatorMode.NONE, blank=True
    )
    operator_role_arn = models.CharField(max_length=2048, blank=True)
    operator_external_id = EncryptedTextField(blank=True)
    operator_access_key_id = EncryptedTextField(blank=True)
    operator_secret_access_key = EncryptedTextField(blank=True)
    endpoint_url = models.URLField(
        blank=True, help_text="Only for the sandbox or VPC endpoints; empty means real AWS."
    )
    enabled = models.BooleanField(default=True)
    sync_interval_seconds = models.PositiveIntegerField(default=60)
    groups = models.ManyToManyField(
        Group, blank=True, related_name="aws_accounts", help_text="Groups that may see it."
    )

    sync_status = models.CharField(
        max_length=10, choices=SyncStatus.choices, default=SyncStatus.NEVER
    )
    last_synced_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    # The sync holding the account, and when it last showed progress. Claimed, renewed and
    # released with conditional UPDATEs (executions/sync/): a run silent for longer than
    # SYNC_STALE_AFTER_SECONDS is taken over by the next trigger.
    sync_run = models.ForeignKey(
        "SyncRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    sync_heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = AwsAccountQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        verbose_name = "AWS account"

    def __str__(self) -> str:
        return f"{self.name} ({self.account_id})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Save, refusing an overlapping registration (ValidationError) whoever saves: the form
        checks first, this catches every other path and a concurrent registration."""
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and not OWNERSHIP_FIELDS.intersection(update_fields):
            super().save(*args, **kwargs)
            return
        with transaction.atomic():
            if connection.vendor == "postgresql" and self.account_id.isdigit():
                # Two registrations of one account id saved at once: the second waits for the
                # first to commit, then sees it.
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT pg_advisory_xact_lock(%s::int, %s::int)",
                        [OVERLAP_LOCK_CLASS, int(self.account_id) % 2**31],
                    )
            self._refuse_overlap()
            super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        return reverse("dashboard:sync_status") + f"?account={self.pk}"

    def clean(self) -> None:
        super().clean()
        self._refuse_overlap()

    @property
    def sync_status_colour(self) -> str:
        return SyncStatus(self.sync_status).colour

    def sync_stalled_since(self, now: datetime) -> datetime | None:
        """The last heartbeat of the run holding the account, once it is older than the stale
        window (the next trigger will close that run and take over); None otherwise."""
        beat = self.sync_heartbeat_at
        if self.sync_run_id is None or beat is None or now - beat <= sync_stale_after():
            return None
        return beat

    @property
    def has_operator_role(self) -> bool:
        """Whether replay and redrive have credentials of their own (no secret is loaded)."""
        return self.operator_auth_mode != OperatorMode.NONE

    @property
    def has_secret(self) -> bool:
        return bool(self.secret_access_key or self.external_id)

    def overlap(self) -> tuple[AwsAccount, list[str]] | None:
        """Another registration of this AWS account id sharing a region with this one, and the
        regions they share; None if there is none.

        Every resource is keyed by its ARN, and an ARN names only the account id and the region
        (not the endpoint URL): two registrations sharing a region would claim the same rows. The
        same account in disjoint regions is fine, and so is the same id on two endpoints in
        different regions; two sandboxes that both answer for 123456789012 in one region are not.
        """
        others = (
            AwsAccount.objects.filter(account_id=self.account_id)
            .exclude(pk=self.pk)
            .only("pk", "name", "account_id", "regions")
            .order_by("name")
        )
        for other in others:
            shared = [region for region in self.regions if region in other.regions]
            if shared:
                return other, shared
        return None

    def _refuse_overlap(self) -> None:
        found = self.overlap()
        if found is not None:
            other, shared = found
            raise ValidationError(
                {
                    "regions": (
                        f"AWS account {self.account_id} in {', '.join(shared)} is already "
                        f"registered as {other.name!r}; add the region to that registration "
                        "instead (the same account may be registered again for other regions)."
                    )
                }
            )


def owned_elsewhere(kind: str, arn: str, owner: str) -> str:
    """Why a sync skipped a resource that another registration owns (said on the run)."""
    return (
        f"{arn}: skipped: this {kind} belongs to the registration {owner!r} of the same AWS "
        "account and region (registrations must not overlap; remove the region from one of them)"
    )


# Fields that decide which AWS resources (ARNs) an account owns.
OWNERSHIP_FIELDS = frozenset({"account_id", "regions"})
# pg_advisory_xact_lock(class, id): the class keeps our ids apart from anyone else's locks.
OVERLAP_LOCK_CLASS = 0x5374_6570  # "Step"


# The encrypted secrets of an account: never sent to a browser, never loaded for a page.
ACCOUNT_SECRET_FIELDS = (
    "external_id",
    "access_key_id",
    "secret_access_key",
    "operator_external_id",
    "operator_access_key_id",
    "operator_secret_access_key",
)


RowWithAccount = TypeVar("RowWithAccount", bound=models.Model)


def with_account_but_no_secrets(queryset: QuerySet[RowWithAccount]) -> QuerySet[RowWithAccount]:
    """Join the row's account for display without loading (so decrypting) its secrets."""
    return queryset.select_related("account").defer(
        *(f"account__{name}" for name in ACCOUNT_SECRET_FIELDS)
    )


class Connection(models.Model):
    """An EventBridge connection (the credentials an HTTP task calls through)."""

    arn = models.CharField(max_length=1600, unique=True)
    account = models.ForeignKey(AwsAccount, on_delete=models.CASCADE, related_name="connections")
    region = models.CharField(max_length=32)
    name = models.CharField(max_length=128)
    authorization_type = models.CharField(
        max_length=32, choices=AuthorizationType.choices, blank=True
    )
    state = models.CharField(max_length=32, choices=ConnectionState.choices, blank=True)
    state_reason = models.TextField(blank=True)
    last_authorized_at = models.DateTimeField(null=True, blank=True)
    aws_modified_at = models.DateTimeField(null=True, blank=True)
    # Names of the parameters the connection injects (values are never read or stored):
    # {"headers": [...], "query": [...], "body": [...], "secret": [...]}, where "secret" lists
    # those whose values are secret (IsValueSecret, the API-key header, Authorization).
    invocation_parameter_names = models.JSONField(default=dict, blank=True)
    # How it reaches a private endpoint through VPC Lattice (DescribeConnection's
    # ConnectivityParameters): {"api": {...}, "auth": {...}}, each {"configuration_arn",
    # "association_arn"}; "api" when the API is private, "auth" when the OAuth endpoint is.
    private_resources = models.JSONField(default=dict, blank=True)
    kms_key_identifier = models.CharField(max_length=2048, blank=True)
    aws_created_at = models.DateTimeField(null=True, blank=True)
    # When DescribeConnection was last read; None: never (rows older than these fields).
    described_at = models.DateTimeField(null=True, blank=True)
    first_seen_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["account", "region"])]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("connections:detail", args=[self.pk])

    @property
    def state_colour(self) -> str:
        return ConnectionState(self.state).colour if self.state in ConnectionState else "grey"

    @property
    def private_api(self) -> dict[str, str]:
        return _resource(self.private_resources, "api")

    @property
    def private_auth(self) -> dict[str, str]:
        return _resource(self.private_resources, "auth")

    @property
    def secret_parameter_names(self) -> list[str]:
        """Names whose values the redactor must hide in this connection's calls, whatever they
        look like. Stored before secrecy was recorded: every injected name, to be safe."""
        return secret_parameter_names(self.invocation_parameter_names)


def _resource(resources: Any, kind: str) -> dict[str, str]:
    found = resources.get(kind) if isinstance(resources, dict) else None
    return found if isinstance(found, dict) else {}


def secret_parameter_names(names: Any) -> list[str]:
    """The secret names of an `invocation_parameter_names` value (see Connection)."""
    if not isinstance(names, dict):
        return []
    if "secret" in names:
        return [str(n) for n in names["secret"] or () if n]
    return [str(n) for kind in ("headers", "query", "body") for n in names.get(kind) or () if n]


class ConnectionStateChange(models.Model):
    """One observed state of a connection; the rows form its health timeline."""

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="changes")
    state = models.CharField(max_length=32, choices=ConnectionState.choices)
    reason = models.TextField(blank=True)
    # When AWS says it changed (LastModifiedTime) if known, else when we first saw it.
    changed_at = models.DateTimeField()
    observed_at = models.DateTimeField(auto_now_add=True)
    # Outbox marker: written in the transaction that changed the connection's state, this row is
    # turned into notifications by the layer above (alerts), which then sets the time.
    dispatched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["connection", "changed_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "state", "changed_at"], name="uniq_connection_state_change"
            )
        ]
        indexes = [
            models.Index(
                fields=["observed_at"],
                condition=Q(dispatched_at__isnull=True),
                name="conn_change_pending",
            )
        ]

    def __str__(self) -> str:
        return f"{self.connection} → {self.state} at {self.changed_at:%Y-%m-%d %H:%M:%S}"


class Endpoint(models.Model):
    """A method + normalised URL template called by HTTP tasks in one account."""

    account = models.ForeignKey(AwsAccount, on_delete=models.CASCADE, related_name="endpoints")
    method = models.CharField(max_length=10)
    url_template = models.CharField(max_length=2048)
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()

    class Meta:
        ordering = ["url_template", "method"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "method", "url_template"], name="uniq_endpoint"
            )
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.url_template}"

    def get_absolute_url(self) -> str:
        return reverse("connections:endpoint", args=[self.pk])


class SyncRun(models.Model):
    """One sync of one account: its progress, API calls and outcome (shown on the sync page)."""

    account = models.ForeignKey(AwsAccount, on_delete=models.CASCADE, related_name="sync_runs")
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=SyncStatus.choices, default=SyncStatus.RUNNING)
    trigger = models.CharField(max_length=20, default="schedule")
    api_calls = models.JSONField(default=dict, blank=True)
    # Throttled AWS answers by operation ({"GetExecutionHistory": 3}), retried ones included.
    throttles = models.JSONField(default=dict, blank=True)
    executions_added = models.PositiveIntegerField(default=0)
    executions_updated = models.PositiveIntegerField(default=0)
    attempts_added = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    # A permanent error (credentials, access) in any step fails the whole run.
    fatal = models.BooleanField(default=False)
    # Resources that could not be read and cost only themselves (connections/unreadable.py):
    # [{"kind", "name", "arn", "region", "operation", "code", "message", "missing", "hint"}].
    unreadable = models.JSONField(default=list, blank=True)
    progress = models.CharField(max_length=200, blank=True)
    # The newest attempt id when the run began: the attempts it wrote are above it (one run per
    # account at a time), which bounds the final reclassification when it closes.
    attempts_above = models.BigIntegerField(default=0)
    # Its steps ran one after the other in one process (the command, a redrive's re-read), so
    # each batch saw every row written before it and the final reclassification has nothing to
    # put right. False when steps fan out over workers, or when the run took over what
    # unfinished runs wrote (their steps may have raced).
    steps_one_at_a_time = models.BooleanField(default=False)
    # Outbox marker, as on ConnectionStateChange: a failed (or abandoned, i.e. stalled) run is
    # turned into notifications by the layer above, which then sets the time.
    dispatched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [
            models.Index(fields=["account", "-started_at"]),
            models.Index(
                fields=["finished_at"],
                condition=Q(dispatched_at__isnull=True, status="failed"),
                name="sync_run_failed_pending",
            ),
        ]

    def __str__(self) -> str:
        return f"sync of {self.account} at {self.started_at:%Y-%m-%d %H:%M:%S}"

    @property
    def is_running(self) -> bool:
        return self.finished_at is None

    @property
    def status_colour(self) -> str:
        return SyncStatus(self.status).colour
