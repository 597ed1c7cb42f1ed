"""The admin's credential check on the AWS boundary: do an account's credentials work, in one
sentence (kept apart from api.py by size)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from connections.aws.api import AwsApi, AwsError

if TYPE_CHECKING:
    from connections.models import AwsAccount

__all__ = ["CredentialCheck", "check_credentials"]


@dataclass(frozen=True)
class CredentialCheck:
    ok: bool
    message: str
    identity_arn: str = ""


def check_credentials(account: AwsAccount) -> CredentialCheck:
    """sts:GetCallerIdentity + states:ListStateMachines in each region, said in one sentence."""
    try:
        api = AwsApi(
            account, account.regions[0] if account.regions else "us-east-1", rate_limited=False
        )
        identity = api.caller_identity()
        counts = []
        for region in account.regions:
            # Only the first page: one call per region, as many as a page holds.
            pages = AwsApi(account, region, rate_limited=False).state_machine_pages()
            counts.append(f"{region}: {len(next(pages, []))} state machines")
    except AwsError as exc:
        return CredentialCheck(False, f"Credentials of {account.name} failed — {exc}")
    if identity.account and identity.account != account.account_id:
        return CredentialCheck(
            False,
            f"Credentials of {account.name} belong to account {identity.account}, "
            f"not {account.account_id}.",
            identity.arn,
        )
    return CredentialCheck(
        True, f"{account.name}: authenticated as {identity.arn}; " + "; ".join(counts), identity.arn
    )
