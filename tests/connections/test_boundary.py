"""The AWS boundary: AWS's answers are read in the connections/aws/ package only.

Every other module gets domain objects (StateMachineDetail, ListedExecution, HistoryPage…) from
it, so a renamed or missing response field is handled in one place. History events stay the
plain dicts the pure parser documents as its input; only the page envelope is AWS's.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APPS = ("connections", "executions", "dashboard", "operations")
# The package: the reader's operations, the Map Run ones, the operator's calls (redrive,
# replay: the same boundary with the operator's credentials), the credential check, and the
# plumbing under them.
BOUNDARY = Path("connections/aws")
# Readers of documents, not of AWS answers: the pure parser's documented input is what the AWS
# CLI prints (history events, or a whole GetExecutionHistory / FilterLogEvents answer), and
# classify_history reads files of that format that a user hands it (saved_histories.py).
DOCUMENT_READERS = (
    Path("executions/history"),
    Path("executions/management/commands/classify_history.py"),
    Path("executions/saved_histories.py"),
)

# Field names of the answers Stepscope reads (Step Functions, EventBridge, CloudWatch Logs, STS),
# none of which is also a field of the history events the parser reads.
AWS_FIELDS = frozenset(
    {
        # pagination envelopes
        "nextToken",
        "NextToken",
        "events",
        # Step Functions
        "stateMachines",
        "stateMachineArn",
        "definition",
        "loggingConfiguration",
        "destinations",
        "cloudWatchLogsLogGroup",
        "logGroupArn",
        "includeExecutionData",
        "encryptionConfiguration",
        "kmsKeyId",
        "executions",
        "executionArn",
        "startDate",
        "stopDate",
        "redriveCount",
        "redriveStatus",
        "redriveStatusReason",
        "redriveDate",
        "ResponseMetadata",
        "RequestId",
        # EventBridge connections
        "Connections",
        "ConnectionArn",
        "ConnectionState",
        "StateReason",
        "AuthorizationType",
        "LastModifiedTime",
        "LastAuthorizedTime",
        "AuthParameters",
        "InvocationHttpParameters",
        "HeaderParameters",
        "QueryStringParameters",
        "BodyParameters",
        "IsValueSecret",
        "ApiKeyAuthParameters",
        "ApiKeyName",
        "BasicAuthParameters",
        "OAuthParameters",
        # CloudWatch Logs
        "eventId",
        "logStreamName",
        "ingestionTime",
        # STS
        "Credentials",
        "AccessKeyId",
        "SecretAccessKey",
        "SessionToken",
        "Arn",
        "Account",
    }
)


def _key(node: ast.AST) -> str | None:
    """The AWS field name `node` reads: x["F"], x.get("F"…), "F" in x."""
    if isinstance(node, ast.Subscript):
        if not isinstance(node.ctx, ast.Load):
            return None  # writing a dict of our own (a model's defaults), not reading one
        if isinstance(node.value, ast.Name) and node.value.id == "options":
            return None  # a management command's own arguments
        index = node.slice
    elif (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("get", "pop", "setdefault")
        and node.args
    ):
        index = node.args[0]
    elif isinstance(node, ast.Compare) and any(isinstance(o, ast.In | ast.NotIn) for o in node.ops):
        index = node.left
    else:
        return None
    if isinstance(index, ast.Constant) and index.value in AWS_FIELDS:
        return str(index.value)
    return None


def reads_outside_the_boundary(root: Path) -> list[str]:
    found = []
    for app in APPS:
        for path in sorted((root / app).rglob("*.py")):
            relative = path.relative_to(root)
            if (
                relative.is_relative_to(BOUNDARY)
                or "migrations" in relative.parts
                or any(relative.is_relative_to(reader) for reader in DOCUMENT_READERS)
            ):
                continue
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                key = _key(node)
                if key is not None:
                    found.append(f"{relative}:{node.lineno}: {key}")  # type: ignore[attr-defined]
    return found


def test_no_aws_response_field_is_read_outside_the_boundary() -> None:
    assert reads_outside_the_boundary(ROOT) == []


def test_the_scan_sees_each_way_of_reading_a_field(tmp_path: Path) -> None:
    (tmp_path / "executions").mkdir()
    (tmp_path / "executions" / "reader.py").write_text(
        "a = page['nextToken']\nb = item.get('stateMachineArn', '')\nc = 'IsValueSecret' in p\n"
        "d = row['name']\ndefaults['definition'] = d\n"
    )
    assert reads_outside_the_boundary(tmp_path) == [
        "executions/reader.py:1: nextToken",
        "executions/reader.py:2: stateMachineArn",
        "executions/reader.py:3: IsValueSecret",
    ]
