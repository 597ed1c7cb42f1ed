"""Seed the dashboard's tables at scale with PostgreSQL COPY (psycopg 3 `cursor.copy()`).

Rows are generated in Python, deterministically from the seed, and streamed through COPY in
text format. Columns come from the models, so a column added later gets its model default
without touching this file; only a new required column without a default needs a generator.

Shape (full mode): 2 accounts, 50 connections, 500 endpoints (each called through one
connection), 40 state machines, 200,000 executions over the last 30 days with 5 HTTP attempts
each (1,000,000). About a third of the executions fail (three attempts of one state, the last
final) and a tenth succeed after a retry, so roughly a quarter of the attempts are failures,
in every category, grouped per endpoint × category × status like the classifier groups them.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bench.common import Config
from connections import arn as arns

# (category, subcategory, error, status code, cause, hint); status None: no HTTP answer.
FAILURES: tuple[tuple[str, str, str, int | None, str, str], ...] = (
    ("server_error", "http_503", "States.Http.StatusCode.503", 503, "Service Unavailable",
     "The partner API was unavailable; retries with backoff usually get through."),
    ("server_error", "http_500", "States.Http.StatusCode.500", 500, "Internal Server Error",
     "The partner API failed; its logs for this request id say why."),
    ("rate_limited", "http_429", "States.Http.StatusCode.429", 429, "Too Many Requests",
     "The partner throttled the call; add Retry on States.Http.StatusCode.429 with backoff."),
    ("auth", "deauthorized", "Events.ConnectionResource.InvalidConnectionState", None,
     "Connection resource is not authorized. This is likely a configuration issue with your "
     "connection.",
     "The connection was de-authorized after a 401; fix its credentials and call "
     "UpdateConnection."),
    ("auth", "http_401", "States.Http.StatusCode.401", 401, "Unauthorized",
     "The partner rejected the connection's credentials."),
    ("client_error", "http_404", "States.Http.StatusCode.404", 404, "Not Found",
     "The URL names something the partner does not have."),
    ("client_error", "http_400", "States.Http.StatusCode.400", 400, "Bad Request",
     "The partner rejected the request; compare it with the last successful call."),
    ("missing_header", "header_absent", "States.Http.StatusCode.400", 400, "Bad Request",
     "Idempotency-Key was sent by the last successful call and is missing here."),
    ("missing_parameter", "body_key_absent", "States.Http.StatusCode.400", 400, "Bad Request",
     "Body key amount was sent by the last successful call and is missing here."),
    ("timeout", "http_cap", "States.Http.Socket", None, "",
     "The call ran into the 60-second HTTP task limit."),
    ("network", "socket", "States.Http.Socket", None, "",
     "The connection to the partner was reset."),
    ("permissions", "retrieve_credentials", "Events.ConnectionResource.AccessDenied", None, "",
     "The execution role lacks events:RetrieveConnectionCredentials."),
    ("payload_too_large", "response", "States.DataLimitExceeded", None, "",
     "The response exceeded 256 KiB."),
    ("invalid_request", "forbidden_header", "States.Runtime", None, "",
     "Cache-Control may not be set in Headers; the connection can send it."),
)  # fmt: skip
CATEGORIES_PER_ENDPOINT = 3
STATES = ("FetchOrder", "ReserveStock", "ChargeCard", "NotifyWarehouse", "SendReceipt")
WINDOW = timedelta(days=30)
ACCOUNT_IDS = ("123456789012", "210987654321")
REGIONS = ("us-east-1", "eu-west-1")


@dataclass
class Seeded:
    """What the pages will be asked for, and how much was written."""

    user_id: int
    connections: list[tuple[int, str]]  # (pk, arn) of a sample
    endpoints: list[int]
    executions: list[int]  # failing executions, newest first
    rows: dict[str, int] = field(default_factory=dict)


# --- COPY --------------------------------------------------------------------------------------


def _escape(text: str) -> str:
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        text = text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
        text = text.replace("\r", "\\r")
    return text


def _converter(internal_type: str) -> Callable[[Any], str]:
    if internal_type == "JSONField":
        return lambda v: _escape(json.dumps(v, separators=(",", ":")))
    if internal_type == "BooleanField":
        return lambda v: "t" if v else "f"
    if internal_type == "DateTimeField":
        return lambda v: v.isoformat()
    if internal_type in ("CharField", "TextField", "URLField", "EncryptedTextField"):
        return lambda v: _escape(str(v))
    return str  # integers and foreign keys


class Table:
    """COPY rows into one model's table; absent columns take the model's default."""

    def __init__(self, model: Any, now: datetime) -> None:
        self.model = model
        self.fields = list(model._meta.concrete_fields)
        self.convert = {f.attname: _converter(f.get_internal_type()) for f in self.fields}
        self.defaults = {f.attname: self._default(f, now) for f in self.fields}

    def _default(self, f: Any, now: datetime) -> str | None:
        if f.primary_key:
            return None  # always given: rows reference each other by id
        if f.has_default():
            value = f.get_default()
            return "\\N" if value is None else self.convert[f.attname](value)
        if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
            return now.isoformat()
        if f.null:
            return "\\N"
        kind = f.get_internal_type()
        fallback = {"CharField": "", "TextField": "", "BooleanField": "f", "JSONField": "{}"}
        if kind in fallback:
            return fallback[kind]
        return None  # required and unknown: the generator must give it

    def copy(self, cursor: Any, rows: Iterable[dict[str, Any]]) -> int:
        """COPY the rows; secondary indexes are dropped first and rebuilt after (a sort per
        index is far cheaper than a million index insertions)."""
        indexes = _secondary_indexes(cursor, self.model._meta.db_table)
        for name, _ in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        count = self._copy(cursor, rows)
        for _, definition in indexes:
            cursor.execute(definition)
        return count

    def _copy(self, cursor: Any, rows: Iterable[dict[str, Any]]) -> int:
        from psycopg import sql

        names = [f.attname for f in self.fields]
        columns = sql.SQL(", ").join(sql.Identifier(f.column) for f in self.fields)
        statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(self.model._meta.db_table), columns
        )
        count = 0
        with cursor.copy(statement) as copy:
            lines: list[str] = []
            for row in rows:
                lines.append("\t".join([self._cell(row, n) for n in names]))
                count += 1
                if len(lines) >= 5000:
                    copy.write("\n".join(lines) + "\n")
                    lines.clear()
            if lines:
                copy.write("\n".join(lines) + "\n")
        return count

    def _cell(self, row: dict[str, Any], name: str) -> str:
        if name in row:
            value = row[name]
            return "\\N" if value is None else self.convert[name](value)
        default = self.defaults[name]
        if default is None:
            raise KeyError(f"{self.model.__name__}.{name} is required and has no default")
        return default


def _secondary_indexes(cursor: Any, table: str) -> list[tuple[str, str]]:
    """(name, CREATE INDEX statement) of the table's indexes that back no constraint."""
    cursor.execute(
        """
        SELECT c.relname, pg_get_indexdef(i.indexrelid)
        FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        WHERE i.indrelid = %s::regclass
          AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
        """,
        [table],
    )
    return [(str(name), str(definition)) for name, definition in cursor.fetchall()]


# --- the data ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Endpoint:
    pk: int
    account: int
    connection: int
    connection_arn: str
    method: str
    template: str
    groups: tuple[int, ...]  # failure group ids, one per category this endpoint fails with
    failures: tuple[int, ...]  # index into FAILURES, same order as groups


@dataclass
class _Group:
    pk: int
    endpoint: _Endpoint
    failure: int
    count: int = 0
    first: datetime | None = None
    last: datetime | None = None


class Generator:
    """Rows of every table, deterministic for a seed; ids are assigned here."""

    def __init__(self, config: Config, accounts: list[int], now: datetime) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.accounts = accounts
        self.now = now
        self.connections = self._connections()
        self.endpoints = self._endpoints()
        self.groups = {
            g: _Group(g, e, f)
            for e in self.endpoints
            for g, f in zip(e.groups, e.failures, strict=True)
        }
        self.machines = [(i + 1, accounts[i % len(accounts)]) for i in range(40)]
        self.by_account = {a: [e for e in self.endpoints if e.account == a] for a in accounts}
        self.failing_executions: list[tuple[datetime, int]] = []

    def _connections(self) -> list[tuple[int, int, str, str]]:
        found = []
        for i in range(self.config.connections):
            account = self.accounts[i % len(self.accounts)]
            region = REGIONS[i % len(REGIONS)]
            acct = ACCOUNT_IDS[i % len(ACCOUNT_IDS)]
            name = f"bench-partner-{i:03d}"
            connection_id = str(uuid.UUID(int=self.rng.getrandbits(128)))
            arn = arns.connection_arn(region, acct, name, connection_id)
            found.append((i + 1, account, arn, name))
        return found

    def _endpoints(self) -> list[_Endpoint]:
        found = []
        for i in range(self.config.endpoints):
            conn_pk, account, arn, _ = self.connections[i % len(self.connections)]
            failures = tuple(self.rng.sample(range(len(FAILURES)), CATEGORIES_PER_ENDPOINT))
            groups = tuple(
                i * CATEGORIES_PER_ENDPOINT + k + 1 for k in range(CATEGORIES_PER_ENDPOINT)
            )
            template = f"https://api{i % 7}.partner.example.com/v{1 + i % 3}/resource-{i}/{{id}}"
            method = ("GET", "POST", "PUT")[i % 3]
            found.append(
                _Endpoint(i + 1, account, conn_pk, arn, method, template, groups, failures)
            )
        return found

    # Small tables -----------------------------------------------------------------------------

    def connection_rows(self) -> Iterator[dict[str, Any]]:
        for pk, account, arn, name in self.connections:
            deauthorized = pk % 9 == 0
            yield {
                "id": pk,
                "arn": arn,
                "account_id": account,
                "region": arns.region_of(arn),
                "name": name,
                "authorization_type": ("BASIC", "API_KEY", "OAUTH_CLIENT_CREDENTIALS")[pk % 3],
                "state": "DEAUTHORIZED" if deauthorized else "AUTHORIZED",
                "state_reason": "Received 401 from the endpoint" if deauthorized else "",
                "last_authorized_at": self.now - WINDOW,
                "aws_modified_at": self.now - timedelta(days=2),
                "invocation_parameter_names": {"header": ["X-Partner-Account"]},
                "first_seen_at": self.now - WINDOW,
                "last_seen_at": self.now,
            }

    def state_change_rows(self) -> Iterator[dict[str, Any]]:
        pk = 0
        for conn_pk, _, _, _ in self.connections:
            changes = [("AUTHORIZED", self.now - WINDOW, "")]
            if conn_pk % 3 == 0:
                down = self.now - timedelta(days=3 + conn_pk % 20, hours=conn_pk % 24)
                changes.append(("DEAUTHORIZED", down, "Received 401 from the endpoint"))
                if conn_pk % 9 != 0:
                    changes.append(("AUTHORIZED", down + timedelta(hours=5), ""))
            for state, at, reason in changes:
                pk += 1
                yield {
                    "id": pk, "connection_id": conn_pk, "state": state, "reason": reason,
                    "changed_at": at, "observed_at": at,
                }  # fmt: skip

    def endpoint_rows(self) -> Iterator[dict[str, Any]]:
        for e in self.endpoints:
            yield {
                "id": e.pk,
                "account_id": e.account,
                "method": e.method,
                "url_template": e.template,
                "first_seen_at": self.now - WINDOW,
                "last_seen_at": self.now,
            }

    def machine_rows(self) -> Iterator[dict[str, Any]]:
        for pk, account in self.machines:
            region = REGIONS[pk % len(REGIONS)]
            acct = ACCOUNT_IDS[self.accounts.index(account) % len(ACCOUNT_IDS)]
            name = f"bench-machine-{pk:02d}"
            yield {
                "id": pk,
                "account_id": account,
                "region": region,
                "arn": arns.state_machine_arn(region, acct, name),
                "name": name,
                "type": "EXPRESS" if pk % 10 == 0 else "STANDARD",
                "logging_level": ("ALL", "ALL", "ERROR", "OFF")[pk % 4],
                "include_execution_data": pk % 4 != 1,
                "log_group_arn": "",
                "definition": "{}",
                "http_states": {
                    s: {"endpoint": "", "method": "GET", "connection_arn": ""} for s in STATES
                },
                "newest_start_seen": self.now,
                "last_synced_at": self.now - timedelta(minutes=pk % 5),
            }

    def group_rows(self) -> Iterator[dict[str, Any]]:
        """After the attempts: counts and first/last seen are what was generated."""
        for group in self.groups.values():
            if not group.count:
                continue
            category, sub, error, status, _, hint = FAILURES[group.failure]
            e = group.endpoint
            yield {
                "id": group.pk,
                "account_id": e.account,
                "fingerprint": f"{group.pk:016x}",
                "connection_id": e.connection,
                "connection_arn": e.connection_arn,
                "endpoint_id": e.pk,
                "method": e.method,
                "category": category,
                "subcategory": sub,
                "status_code": status,
                "error": error,
                "title": f"{sub}: {status or error} on {e.method} {e.template}",
                "hint": hint,
                "first_seen_at": group.first,
                "last_seen_at": group.last,
                "count": group.count,
                "status": "resolved" if group.pk % 11 == 0 else "open",
                "status_changed_at": group.last if group.pk % 11 == 0 else None,
            }

    # Executions and attempts ------------------------------------------------------------------

    def executions_and_attempts(
        self,
    ) -> tuple[list[dict[str, Any]], Callable[[], Iterator[dict[str, Any]]]]:
        """Execution rows (held: 200k small dicts) and a generator of their attempts."""
        plans = []
        executions = []
        per = max(1, self.config.attempts // self.config.dashboard_executions)
        extra = self.config.attempts - per * self.config.dashboard_executions
        for i in range(self.config.dashboard_executions):
            pk = i + 1
            machine_pk, account = self.machines[self.rng.randrange(len(self.machines))]
            start = self.now - WINDOW * (self.rng.random() ** 1.3)
            endpoints = self._route(account)
            count = per + (1 if i < extra else 0)
            mode = self._mode()
            plans.append((pk, account, start, endpoints, count, mode))
            status = {"ok": "SUCCEEDED", "retried": "SUCCEEDED", "failed": "FAILED"}[mode]
            if mode == "failed" and self.rng.random() < 0.08:
                status = "TIMED_OUT"
            executions.append(self._execution_row(pk, account, machine_pk, start, status, mode))
            if mode != "ok":
                self.failing_executions.append((start, pk))

        def attempts() -> Iterator[dict[str, Any]]:
            pk = 0
            for plan in plans:
                for row in self._attempt_rows(pk, *plan):
                    pk += 1
                    yield row

        return executions, attempts

    def _route(self, account: int) -> list[_Endpoint]:
        """The endpoint each state of this execution calls."""
        mine = self.by_account[account] or self.endpoints
        return [mine[self.rng.randrange(len(mine))] for _ in STATES]

    def _mode(self) -> str:
        roll = self.rng.random()
        return "failed" if roll < 0.33 else "retried" if roll < 0.43 else "ok"

    def _execution_row(
        self, pk: int, account: int, machine: int, start: datetime, status: str, mode: str
    ) -> dict[str, Any]:
        name = f"run-{pk:07d}"
        acct = ACCOUNT_IDS[self.accounts.index(account) % len(ACCOUNT_IDS)]
        failed = status != "SUCCEEDED"
        return {
            "id": pk,
            "account_id": account,
            "state_machine_id": machine,
            "arn": arns.execution_arn("us-east-1", acct, f"bench-machine-{machine:02d}", name),
            "name": name,
            "status": status,
            "start_date": start,
            "stop_date": start + timedelta(seconds=9),
            "error": "States.Http.StatusCode.503" if failed else "",
            "cause": "Service Unavailable" if failed else "",
            "source": "history",
            "has_failed_attempt": mode != "ok",
            "last_event_id": 40,
            "history_complete": True,
            "synced_at": start + timedelta(seconds=30),
        }

    def _attempt_rows(
        self,
        first_pk: int,
        execution: int,
        account: int,
        start: datetime,
        endpoints: list[_Endpoint],
        count: int,
        mode: str,
    ) -> Iterator[dict[str, Any]]:
        # Which attempt numbers fail: the last state retries twice (failed), or the first
        # state fails once then succeeds (retried).
        shapes: list[tuple[int, int, bool]] = []  # (state index, attempt number, fails)
        if mode == "failed":
            shapes = [(s, 1, False) for s in range(max(0, count - 3))]
            state = min(len(STATES) - 1, max(0, count - 3))
            shapes += [(state, n, True) for n in range(1, min(3, count) + 1)]
        elif mode == "retried":
            shapes = [(0, 1, True)] + [
                (0 if k == 0 else k, 2 if k == 0 else 1, False) for k in range(count - 1)
            ]
        else:
            shapes = [(s % len(STATES), 1, False) for s in range(count)]
        at = start
        for offset, (state, number, fails) in enumerate(shapes):
            at += timedelta(milliseconds=300 + self.rng.randrange(1500))
            endpoint = endpoints[state % len(endpoints)]
            final = not fails or number == 3 or offset == len(shapes) - 1
            yield self._attempt(
                first_pk + offset + 1,
                execution,
                account,
                endpoint,
                state,
                number,
                fails,
                final,
                at,
                offset,
            )

    def _attempt(
        self,
        pk: int,
        execution: int,
        account: int,
        e: _Endpoint,
        state: int,
        number: int,
        fails: bool,
        final: bool,
        at: datetime,
        offset: int,
    ) -> dict[str, Any]:
        key = 3 + 4 * offset
        duration = 40 + self.rng.randrange(900)
        row: dict[str, Any] = {
            "id": pk,
            "account_id": account,
            "execution_id": execution,
            "state_name": STATES[state],
            "attempt_number": number,
            "key_event_id": key,
            "entered_event_id": key - 1,
            "scheduled_event_id": key,
            "closed_event_id": key + 2,
            "scheduled_at": at,
            "closed_at": at + timedelta(milliseconds=duration),
            "occurred_at": at,
            "duration_ms": duration,
            "method": e.method,
            "url": e.template.replace("{id}", str(execution)),
            "endpoint_id": e.pk,
            "connection_arn": e.connection_arn,
            "connection_id": e.connection,
            "request_headers": {
                "Content-Type": "application/json",
                "Idempotency-Key": "[redacted]",
            },
            "request_query": None,
            "request_body": {"orderId": f"ord-{execution}", "amount": 1999}
            if e.method != "GET"
            else None,
            "final_attempt": final,
            "classifier_version": "2026.11.1",
        }
        if not fails:
            row.update(
                status_code=200, outcome="succeeded",
                response_headers={"content-type": ["application/json"]},
                response_body='{"ok":true}',
            )  # fmt: skip
            return row
        slot = self.rng.randrange(CATEGORIES_PER_ENDPOINT)
        failure = e.failures[slot]
        category, sub, error, status, cause, hint = FAILURES[failure]
        group = self.groups[e.groups[slot]]
        group.count += 1
        group.first = at if group.first is None or at < group.first else group.first
        group.last = at if group.last is None or at > group.last else group.last
        row.update(
            status_code=status,
            outcome="timed_out" if category == "timeout" else "failed",
            response_headers={"content-type": ["application/json"]} if status else {},
            response_body='{"error":"' + cause.replace('"', "") + '"}' if status else "",
            error=error,
            cause=cause,
            category=category,
            subcategory=sub,
            evidence={"error": error, "status_code": status},
            hint=hint,
            failure_group_id=group.pk,
        )
        return row
