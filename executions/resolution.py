"""What an attempt refers to: its endpoint, its connection, and the redactor that applies.

Looked up once per sync and cached: thousands of attempts share a handful of each.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from connections.models import AwsAccount, Connection, Endpoint, secret_parameter_names
from executions.classify.endpoint_templates import endpoint_template
from executions.redaction import Redactor


@dataclass
class Resolver:
    """Endpoints, connections and redactors of one account."""

    account: AwsAccount
    redactor: Redactor
    _endpoints: dict[tuple[str, str], Endpoint] = field(default_factory=dict)
    _connections: dict[str, Connection | None] = field(default_factory=dict)
    _redactors: dict[str, Redactor] = field(default_factory=dict)
    _account_redactor: Redactor | None = None

    def template_of(self, url: str) -> str:
        """The endpoint template of a URL as stored. Templates go through the URL rules too
        (after ids became {id}): a token-like path segment that is no id shape must not reach
        the endpoint table."""
        return self.redactor.url(endpoint_template(url)) if url else ""

    def endpoint(self, method: str, template: str, seen_at: datetime) -> Endpoint:
        key = (method, template)
        if key not in self._endpoints:
            endpoint, _ = Endpoint.objects.get_or_create(
                account=self.account,
                method=method[:10],
                url_template=template[:2048],
                defaults={"first_seen_at": seen_at, "last_seen_at": seen_at},
            )
            self._endpoints[key] = endpoint
        return self._endpoints[key]

    def connection(self, arn: str) -> Connection | None:
        if arn not in self._connections:
            self._connections[arn] = Connection.objects.filter(arn=arn).first() if arn else None
        return self._connections[arn]

    def redactor_for(self, connection: Connection | None) -> Redactor:
        """The settings' redactor plus the secret parameter names of the attempt's connection
        (unknown connection: the generic rules; scrub.py re-redacts once it is described)."""
        if connection is None:
            return self.redactor
        if connection.arn not in self._redactors:
            self._redactors[connection.arn] = self.redactor.with_secret_names(
                connection.secret_parameter_names
            )
        return self._redactors[connection.arn]

    def account_redactor(self) -> Redactor:
        """For what belongs to no single connection (definitions, execution causes): the
        secret names of every connection of the account."""
        if self._account_redactor is None:
            self._account_redactor = account_redactor(self.account, self.redactor)
        return self._account_redactor

    def forget(self) -> None:
        """After a rolled-back write: a cached endpoint may have been created there and be gone."""
        self._endpoints.clear()


def account_redactor(account: AwsAccount, base: Redactor) -> Redactor:
    """`base` plus the secret parameter names of every connection of the account."""
    names = Connection.objects.filter(account=account).values_list(
        "invocation_parameter_names", flat=True
    )
    return base.with_secret_names(n for value in names for n in secret_parameter_names(value))
