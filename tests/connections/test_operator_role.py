"""The optional operator role: write-only, encrypted like the reader's, separate from the sync."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from connections import crypto
from connections.aws import AwsApi
from connections.aws.operator import NoOperatorRoleError, OperatorApi
from connections.choices import OperatorMode
from connections.forms import AwsAccountForm
from connections.models import AwsAccount
from tests.connections.test_accounts import make_account, raw_row

OPERATOR_SECRET = "operator-canary-secret-0f3a9b7c"
OPERATOR_EXTERNAL_ID = "operator-ext-canary-5d2e"

pytestmark = pytest.mark.django_db


def test_operator_keys_are_encrypted_at_rest_and_never_rendered(admin_client: Client) -> None:
    account = make_account(
        operator_auth_mode=OperatorMode.ACCESS_KEYS,
        operator_access_key_id="AKIAOPERATOR00000001",
        operator_secret_access_key=OPERATOR_SECRET,
    )
    row = raw_row(account)
    assert OPERATOR_SECRET not in row and "AKIAOPERATOR00000001" not in row
    assert row.count(crypto.TOKEN_PREFIX) >= 4  # reader's two keys and the operator's two
    stored = AwsAccount.objects.get(pk=account.pk)
    assert stored.operator_secret_access_key == OPERATOR_SECRET
    assert stored.has_operator_role
    html = admin_client.get(f"/admin/connections/awsaccount/{account.pk}/change/").content.decode()
    assert "Operator role" in html and "operator secret access key" in html
    assert OPERATOR_SECRET not in html and "AKIAOPERATOR00000001" not in html


def test_operator_role_arn_follows_the_readers_rules() -> None:
    data = {
        "name": "prod",
        "account_id": "123456789012",
        "regions": "eu-west-1",
        "auth_mode": "default",
        "operator_auth_mode": OperatorMode.ASSUME_ROLE,
        "operator_role_arn": "arn:aws:iam::999999999999:role/Operator",
        "enabled": True,
        "sync_interval_seconds": 60,
    }
    form = AwsAccountForm(data=data)
    assert not form.is_valid()
    assert "another account" in str(form.errors["operator_role_arn"])
    keys = AwsAccountForm(data={**data, "operator_auth_mode": OperatorMode.ACCESS_KEYS})
    assert not keys.is_valid()
    assert "operator_secret_access_key" in keys.errors


def test_blank_operator_secret_keeps_it_and_no_role_drops_it() -> None:
    account = make_account(
        operator_auth_mode=OperatorMode.ASSUME_ROLE,
        operator_role_arn="arn:aws:iam::123456789012:role/Operator",
        operator_external_id=OPERATOR_EXTERNAL_ID,
    )
    base = {
        "name": "prod",
        "account_id": "123456789012",
        "regions": "eu-west-1",
        "auth_mode": "default",
        "enabled": True,
        "sync_interval_seconds": 60,
        "operator_role_arn": "arn:aws:iam::123456789012:role/Operator",
    }
    kept = AwsAccountForm(
        data={**base, "operator_auth_mode": OperatorMode.ASSUME_ROLE}, instance=account
    )
    assert kept.is_valid(), kept.errors
    kept.save()
    assert AwsAccount.objects.get(pk=account.pk).operator_external_id == OPERATOR_EXTERNAL_ID
    dropped = AwsAccountForm(data={**base, "operator_auth_mode": ""}, instance=account)
    assert dropped.is_valid(), dropped.errors
    dropped.save()
    stored = AwsAccount.objects.get(pk=account.pk)
    assert not stored.has_operator_role
    assert (stored.operator_external_id, stored.operator_role_arn) == ("", "")


def test_without_an_operator_role_no_operator_client_exists() -> None:
    account = make_account()
    with pytest.raises(NoOperatorRoleError) as refused:
        OperatorApi(account, "eu-west-1")
    assert "no operator role" in str(refused.value)
    assert "docs/security.md" in str(refused.value)


def test_the_sync_never_uses_the_operator_credentials() -> None:
    account = make_account(
        operator_auth_mode=OperatorMode.ACCESS_KEYS,
        operator_access_key_id="AKIAOPERATOR00000001",
        operator_secret_access_key=OPERATOR_SECRET,
    )
    sfn: Any = AwsApi(account, "eu-west-1").client("stepfunctions")
    assert sfn._request_signer._credentials.access_key == "AKIAIOSFODNN7EXAMPLE"
    operator: Any = OperatorApi(account, "eu-west-1")._sfn
    assert operator._request_signer._credentials.access_key == "AKIAOPERATOR00000001"
