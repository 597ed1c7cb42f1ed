"""The realistic account `sandbox run` creates: connections, log groups and state machines.

Each state machine wraps HTTP Tasks in what real workflows use around them (Retry with backoff and
jitter, Catch, TimeoutSeconds, Choice, Map, Parallel) and calls the partner API through a
connection of each auth type. `ensure_account` is idempotent: it creates what is missing, updates
what exists (definitions follow the partner URL) and re-authorizes the connections, so every run
starts from AUTHORIZED connections and replays the deauthorization cascade.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import Any

from sandbox import ACCOUNT_ID, partner
from sandbox.http_task import DENY_TAG_KEY

HTTP_INVOKE = "arn:aws:states:::http:invoke"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/stepscope-sandbox-states"
PREFIX = "sandbox-"
TRANSIENT_ERRORS = [f"States.Http.StatusCode.{code}" for code in (429, 500, 502, 503, 504)]
# A connection ARN that never existed: tasks using it fail with ResourceNotFound.
MISSING_CONNECTION_NAME = f"{PREFIX}reports-legacy"
MISSING_CONNECTION_UUID = "6f1c0d3e-2b7a-4e59-9d3c-5a1e8b7c4f20"


@dataclass(frozen=True)
class ConnectionSpec:
    name: str
    authorization_type: str
    auth_parameters: dict[str, Any]
    description: str


@dataclass(frozen=True)
class Account:
    """ARNs of what ensure_account created, by short name."""

    connections: dict[str, str]
    state_machines: dict[str, str]
    log_groups: dict[str, str]
    express: frozenset[str]


def connection_specs(partner_url: str) -> list[ConnectionSpec]:
    token_url = f"{partner_url}/oauth/token"
    return [
        _basic("partner-basic", partner.BASIC_USERNAME, partner.BASIC_PASSWORD, "Orders API"),
        _basic("crm-rotated", partner.BASIC_USERNAME, "password-before-rotation", "Legacy CRM"),
        _basic("crm-readonly", partner.READONLY_USERNAME, partner.BASIC_PASSWORD, "CRM reports"),
        ConnectionSpec(
            name="partner-apikey",
            authorization_type="API_KEY",
            auth_parameters={
                "ApiKeyAuthParameters": {
                    "ApiKeyName": partner.API_KEY_NAME,
                    "ApiKeyValue": partner.API_KEY,
                },
                "InvocationHttpParameters": {
                    "HeaderParameters": [
                        {"Key": "X-Client-Version", "Value": "2024-06", "IsValueSecret": False}
                    ],
                    "BodyParameters": [
                        {"Key": "source", "Value": "stepscope", "IsValueSecret": False}
                    ],
                },
            },
            description="Webhooks and notifications",
        ),
        _oauth("partner-oauth", partner.OAUTH_CLIENT_ID, partner.OAUTH_CLIENT_SECRET, token_url),
        _oauth("billing-revoked", partner.OAUTH_CLIENT_ID, "revoked-client-secret", token_url),
        _oauth(
            "billing-audit",
            partner.OAUTH_READONLY_CLIENT_ID,
            partner.OAUTH_CLIENT_SECRET,
            token_url,
        ),
    ]


def _basic(name: str, username: str, password: str, description: str) -> ConnectionSpec:
    return ConnectionSpec(
        name=name,
        authorization_type="BASIC",
        auth_parameters={
            "BasicAuthParameters": {"Username": username, "Password": password},
            "InvocationHttpParameters": {
                "HeaderParameters": [
                    {"Key": "X-Partner-Account", "Value": "acme", "IsValueSecret": False}
                ],
                "QueryStringParameters": [
                    {"Key": "tenant", "Value": "acme", "IsValueSecret": True}
                ],
            },
        },
        description=description,
    )


def _oauth(name: str, client_id: str, client_secret: str, token_url: str) -> ConnectionSpec:
    return ConnectionSpec(
        name=name,
        authorization_type="OAUTH_CLIENT_CREDENTIALS",
        auth_parameters={
            "OAuthParameters": {
                "ClientParameters": {"ClientID": client_id, "ClientSecret": client_secret},
                "AuthorizationEndpoint": token_url,
                "HttpMethod": "POST",
                "OAuthHttpParameters": {
                    "BodyParameters": [
                        {"Key": "grant_type", "Value": "client_credentials", "IsValueSecret": False}
                    ]
                },
            }
        },
        description="Payments API (OAuth client credentials)",
    )


# --- definitions ------------------------------------------------------------------------------


def _http(parameters: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"Type": "Task", "Resource": HTTP_INVOKE, "Parameters": parameters, **fields}


def _retry(
    errors: list[str], attempts: int = 2, interval: int = 1, backoff: float = 2.0
) -> dict[str, Any]:
    return {
        "ErrorEquals": errors,
        "IntervalSeconds": interval,
        "MaxAttempts": attempts,
        "BackoffRate": backoff,
        "MaxDelaySeconds": 4,
        "JitterStrategy": "FULL",
    }


def definitions(p: str, c: dict[str, str], region: str) -> dict[str, dict[str, Any]]:
    """ASL per state machine short name; `p` is the partner URL, `c` connection ARNs."""
    missing = f"arn:aws:events:{region}:{ACCOUNT_ID}:connection/{MISSING_CONNECTION_NAME}/{MISSING_CONNECTION_UUID}"
    return {
        "webhook-dispatcher": {
            "Comment": "Delivers partner webhooks; URL, method, headers and body come from the event.",
            "StartAt": "Deliver",
            "States": {
                "Deliver": _http(
                    {
                        "ApiEndpoint.$": "$.url",
                        "Method.$": "$.method",
                        "Headers.$": "$.headers",
                        "RequestBody.$": "$.body",
                        "InvocationConfig": {"ConnectionArn": c["partner-apikey"]},
                    },
                    Retry=[_retry(TRANSIENT_ERRORS)],
                    Catch=[
                        {
                            "ErrorEquals": [
                                "States.Http.StatusCode.404",
                                "States.Http.StatusCode.409",
                            ],
                            "ResultPath": "$.rejection",
                            "Next": "RecordRejection",
                        }
                    ],
                    ResultSelector={"status.$": "$.StatusCode"},
                    ResultPath="$.delivery",
                    End=True,
                ),
                "RecordRejection": {
                    "Type": "Pass",
                    "Result": "rejected",
                    "ResultPath": "$.outcome",
                    "End": True,
                },
            },
        },
        "orders-sync": {
            "Comment": "Fetches new orders, pushes one to the order API, notifies CRM and warehouse.",
            "StartAt": "FetchOrders",
            "States": {
                "FetchOrders": _http(
                    {
                        "ApiEndpoint": f"{p}/basic",
                        "Method": "GET",
                        "QueryParameters": {"since.$": "$.since", "delay.$": "$.fetchDelay"},
                        "InvocationConfig": {"ConnectionArn": c["partner-basic"]},
                    },
                    TimeoutSeconds=2,
                    ResultPath=None,
                    Next="PushOrder",
                ),
                "PushOrder": _http(
                    {
                        "ApiEndpoint": f"{p}/orders",
                        "Method": "POST",
                        "Headers": {"Idempotency-Key.$": "$$.Execution.Name"},
                        "RequestBody": {"customerId.$": "$.customerId", "amount.$": "$.amount"},
                        "InvocationConfig": {"ConnectionArn": c["partner-apikey"]},
                    },
                    Retry=[_retry(TRANSIENT_ERRORS)],
                    ResultSelector={"order.$": "$.ResponseBody"},
                    ResultPath="$.push",
                    Next="Notify",
                ),
                "Notify": {
                    "Type": "Parallel",
                    "ResultPath": None,
                    "End": True,
                    "Branches": [
                        {
                            "StartAt": "NotifyCrm",
                            "States": {
                                "NotifyCrm": _http(
                                    {
                                        "ApiEndpoint": f"{p}/form",
                                        "Method": "POST",
                                        "RequestBody": {
                                            "event": "order.synced",
                                            "tags.$": "$.tags",
                                        },
                                        "Transform": {
                                            "RequestBodyEncoding": "URL_ENCODED",
                                            "RequestEncodingOptions": {"ArrayFormat": "BRACKETS"},
                                        },
                                        "InvocationConfig": {"ConnectionArn": c["partner-apikey"]},
                                    },
                                    End=True,
                                )
                            },
                        },
                        {
                            "StartAt": "NotifyWarehouse",
                            "States": {
                                "NotifyWarehouse": _http(
                                    {
                                        "ApiEndpoint": f"{p}/flaky",
                                        "Method": "GET",
                                        "QueryParameters": {
                                            "key.$": "$$.Execution.Name",
                                            "fail.$": "$.warehouseFailures",
                                            "of": "3",
                                        },
                                        "InvocationConfig": {"ConnectionArn": c["partner-basic"]},
                                    },
                                    Retry=[_retry(["States.Http.StatusCode.503"], backoff=1.5)],
                                    End=True,
                                )
                            },
                        },
                    ],
                },
            },
        },
        "inventory-fanout": {
            "Comment": "Checks stock for every SKU of an order (Map over HTTP Tasks).",
            "StartAt": "CheckStock",
            "States": {
                "CheckStock": {
                    "Type": "Map",
                    "ItemsPath": "$.skus",
                    "MaxConcurrency": 4,
                    "ItemProcessor": {
                        "ProcessorConfig": {"Mode": "INLINE"},
                        "StartAt": "GetStock",
                        "States": {
                            "GetStock": _http(
                                {
                                    "ApiEndpoint.$": f"States.Format('{p}/inventory/{{}}', $.sku)",
                                    "Method": "GET",
                                    "InvocationConfig": {"ConnectionArn": c["partner-oauth"]},
                                },
                                Retry=[
                                    _retry(
                                        ["States.Http.StatusCode.429", "States.Http.StatusCode.503"]
                                    )
                                ],
                                ResultSelector={"available.$": "$.ResponseBody.available"},
                                End=True,
                            )
                        },
                    },
                    "End": True,
                }
            },
        },
        "payments-capture": {
            "Comment": "Captures, refunds or audits a payment through OAuth connections.",
            "StartAt": "Route",
            "States": {
                "Route": {
                    "Type": "Choice",
                    "Choices": [
                        {"Variable": "$.route", "StringEquals": "refund", "Next": "Refund"},
                        {"Variable": "$.route", "StringEquals": "audit", "Next": "Audit"},
                    ],
                    "Default": "Capture",
                },
                "Capture": _payment(p, c["partner-oauth"]),
                "Refund": _payment(p, c["billing-revoked"]),
                "Audit": _payment(p, c["billing-audit"]),
            },
        },
        "crm-legacy": {
            "Comment": "Legacy CRM lookups; still uses Authentication.ConnectionArn.",
            "StartAt": "Route",
            "States": {
                "Route": {
                    "Type": "Choice",
                    "Choices": [
                        {
                            "Variable": "$.account",
                            "StringEquals": "readonly",
                            "Next": "UpdateReadonly",
                        }
                    ],
                    "Default": "LookupContact",
                },
                "LookupContact": _http(
                    {
                        "ApiEndpoint": f"{p}/basic",
                        "Method": "POST",
                        "RequestBody": {"email.$": "$.email"},
                        "Authentication": {"ConnectionArn": c["crm-rotated"]},
                    },
                    Retry=[_retry(["States.Http.StatusCode.401"], attempts=1)],
                    End=True,
                ),
                "UpdateReadonly": _http(
                    {
                        "ApiEndpoint": f"{p}/basic",
                        "Method": "PUT",
                        "RequestBody": {"email.$": "$.email"},
                        "Authentication": {"ConnectionArn": c["crm-readonly"]},
                    },
                    End=True,
                ),
            },
        },
        "reports-export": {
            "Comment": "Exports reports through a connection that was deleted.",
            "StartAt": "Export",
            "States": {
                "Export": _http(
                    {
                        "ApiEndpoint": f"{p}/ok",
                        "Method": "GET",
                        "InvocationConfig": {"ConnectionArn": missing},
                    },
                    End=True,
                )
            },
        },
        "ledger-sync": {
            "Comment": "Its role lacks events:RetrieveConnectionCredentials (sandbox deny tag).",
            "StartAt": "PostEntry",
            "States": {
                "PostEntry": _http(
                    {
                        "ApiEndpoint": f"{p}/apikey",
                        "Method": "POST",
                        "RequestBody": {"entry.$": "$.entry"},
                        "InvocationConfig": {"ConnectionArn": c["partner-apikey"]},
                    },
                    End=True,
                )
            },
        },
        "notifications-express": {
            "Comment": "Express workflow: known only through its CloudWatch logs.",
            "StartAt": "Notify",
            "States": {
                "Notify": _http(
                    {
                        "ApiEndpoint.$": "$.url",
                        "Method": "POST",
                        "Headers.$": "$.headers",
                        "RequestBody.$": "$.body",
                        "InvocationConfig": {"ConnectionArn": c["partner-basic"]},
                    },
                    Retry=[_retry(["States.Http.StatusCode.503"], attempts=1)],
                    End=True,
                )
            },
        },
        "orders-fanout": {
            "Comment": "Distributed Map: one child execution per order of the batch.",
            "StartAt": "PushEach",
            "States": {
                "PushEach": {
                    "Type": "Map",
                    "Label": "orders",
                    "ItemsPath": "$.orders",
                    "ItemProcessor": {
                        "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                        "StartAt": "Push",
                        "States": {
                            "Push": _http(
                                {
                                    "ApiEndpoint.$": "$.url",
                                    "Method": "POST",
                                    "RequestBody.$": "$.order",
                                    "InvocationConfig": {"ConnectionArn": c["partner-apikey"]},
                                },
                                End=True,
                            )
                        },
                    },
                    "End": True,
                }
            },
        },
    }


def _payment(p: str, connection_arn: str) -> dict[str, Any]:
    return _http(
        {
            "ApiEndpoint": f"{p}/bearer",
            "Method": "POST",
            "RequestBody": {"paymentId.$": "$.paymentId", "amount.$": "$.amount"},
            "InvocationConfig": {"ConnectionArn": connection_arn},
        },
        Retry=[_retry(TRANSIENT_ERRORS)],
        End=True,
    )


# Logging per state machine: (level, includeExecutionData).
LOGGING = {
    "webhook-dispatcher": ("ALL", True),
    "orders-sync": ("ALL", True),
    "inventory-fanout": ("ALL", False),
    "payments-capture": ("ERROR", False),
    "crm-legacy": ("ALL", True),
    "reports-export": ("FATAL", False),
    "ledger-sync": ("ERROR", True),
    "notifications-express": ("ALL", True),
    "orders-fanout": ("ALL", True),
}
EXPRESS = frozenset({"notifications-express"})
DENIED = frozenset({"ledger-sync"})


# --- setup ------------------------------------------------------------------------------------


def ensure_account(clients: Any, partner_url: str, region: str) -> Account:
    """Create or update everything; `clients` has .stepfunctions, .events, .logs (boto3)."""
    connections = {
        spec.name: _ensure_connection(clients.events, spec)
        for spec in connection_specs(partner_url)
    }
    log_groups = {
        name: _ensure_log_group(clients.logs, f"/aws/vendedlogs/states/{PREFIX}{name}")
        for name in LOGGING
    }
    existing = _state_machines_by_name(clients.stepfunctions)
    state_machines = {}
    for name, definition in definitions(partner_url, connections, region).items():
        level, include_data = LOGGING[name]
        state_machines[name] = _ensure_state_machine(
            clients.stepfunctions,
            existing,
            name=PREFIX + name,
            definition=json.dumps(definition),
            logging={
                "level": level,
                "includeExecutionData": include_data,
                "destinations": [
                    {
                        "cloudWatchLogsLogGroup": {
                            "logGroupArn": f"arn:aws:logs:{region}:{ACCOUNT_ID}:log-group:{log_groups[name]}:*"
                        }
                    }
                ],
            },
            express=name in EXPRESS,
            tags=[{"key": DENY_TAG_KEY, "value": "connection"}] if name in DENIED else [],
        )
    return Account(connections, state_machines, log_groups, EXPRESS)


def _ensure_connection(events: Any, spec: ConnectionSpec) -> str:
    name = PREFIX + spec.name
    kwargs = {
        "Name": name,
        "Description": spec.description,
        "AuthorizationType": spec.authorization_type,
        "AuthParameters": spec.auth_parameters,
    }
    try:
        events.describe_connection(Name=name)
    except events.exceptions.ResourceNotFoundException:
        events.create_connection(**kwargs)
    else:
        # UpdateConnection re-authorizes a DEAUTHORIZED connection, as on AWS.
        events.update_connection(**kwargs)
    return str(events.describe_connection(Name=name)["ConnectionArn"])


def _ensure_log_group(logs: Any, name: str) -> str:
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName=name)
    return name


def _state_machines_by_name(sfn: Any) -> dict[str, str]:
    found: dict[str, str] = {}
    for page in sfn.get_paginator("list_state_machines").paginate():
        found.update({sm["name"]: sm["stateMachineArn"] for sm in page["stateMachines"]})
    return found


def _ensure_state_machine(
    sfn: Any,
    existing: dict[str, str],
    *,
    name: str,
    definition: str,
    logging: dict[str, Any],
    express: bool,
    tags: list[dict[str, str]],
) -> str:
    arn = existing.get(name)
    if arn is None:
        kwargs: dict[str, Any] = {"type": "EXPRESS"} if express else {}
        if tags:
            kwargs["tags"] = tags
        arn = sfn.create_state_machine(
            name=name,
            definition=definition,
            roleArn=ROLE_ARN,
            loggingConfiguration=logging,
            **kwargs,
        )["stateMachineArn"]
    else:
        sfn.update_state_machine(
            stateMachineArn=arn,
            definition=definition,
            roleArn=ROLE_ARN,
            loggingConfiguration=logging,
        )
        if tags:
            sfn.tag_resource(resourceArn=arn, tags=tags)
    return str(arn)
