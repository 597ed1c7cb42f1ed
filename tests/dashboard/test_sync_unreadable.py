"""The Sync page names each resource a run could not read, as escaped text, and survives odd rows."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from connections.choices import SyncStatus
from connections.models import AwsAccount
from tests.factories import SyncRunFactory

pytestmark = pytest.mark.django_db


def test_sync_page_lists_unreadable_resources_with_their_hint_escaped(
    viewer_client: Client, account: AwsAccount
) -> None:
    SyncRunFactory.create(
        account=account,
        status=SyncStatus.PARTIAL,
        unreadable=[
            {
                "kind": "state machine",
                "name": "<script>alert(1)</script>",
                "arn": "arn:aws:states:eu-west-1:123456789012:stateMachine:x",
                "region": "eu-west-1",
                "operation": "DescribeStateMachine",
                "code": "KmsAccessDeniedException",
                "message": "DescribeStateMachine: KmsAccessDeniedException: <b>no</b>",
                "missing": "definition and execution histories unreadable",
                "hint": "Grant kms:Decrypt on the KMS key arn:aws:kms:eu-west-1:123456789012:key/k",
            },
            "not a dict",  # a row written by hand: skipped, never a 500
            {"code": "AccessDeniedException"},  # keys missing: shown with what it has
        ],
    )
    page = viewer_client.get(reverse("dashboard:sync_status")).content.decode()
    assert "2 resources could not be read" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert" not in page
    assert "&lt;b&gt;no&lt;/b&gt;" in page
    assert "Grant kms:Decrypt on the KMS key arn:aws:kms:eu-west-1:123456789012:key/k" in page


def test_overview_health_names_unreadable_resources_of_its_region(
    viewer_client: Client, account: AwsAccount
) -> None:
    SyncRunFactory.create(
        account=account,
        status=SyncStatus.PARTIAL,
        unreadable=[
            {
                "kind": "connection",
                "name": "gone-conn",
                "region": account.regions[0],
                "operation": "DescribeConnection",
                "code": "ResourceNotFoundException",
                "missing": "deleted after it was listed",
            }
        ],
    )
    page = viewer_client.get(reverse("dashboard:overview")).content.decode()
    assert "connection gone-conn: DescribeConnection: ResourceNotFoundException" in page
