"""The AWS boundary: the only code that imports boto3 or reads an AWS answer.

- `api`: the reader's named, typed operations (`AwsApi`), each answering a small frozen
  dataclass (StateMachineDetail, ListedExecution, HistoryPage…);
- `maps`: the Map Run operations beside them;
- `operator`: the calls that change something (redrive, replay), with the operator's role;
- `checks`: the credential check the account form runs;
- `client`: what they stand on (client cache, sessions, botocore's errors as `AwsError`).

What the rest of the project uses of the reader's side is importable from here.
"""

from connections.aws.api import (
    READ_ON_PAGE,
    AwsApi,
    ConnectionDetail,
    ConnectionSummary,
    HistoryPage,
    ListedExecution,
    LogPage,
    StateMachineDetail,
    StateMachineSummary,
)
from connections.aws.client import AwsError, AwsPermanentError, AwsTransientError, translate

__all__ = [
    "READ_ON_PAGE",
    "AwsApi",
    "AwsError",
    "AwsPermanentError",
    "AwsTransientError",
    "ConnectionDetail",
    "ConnectionSummary",
    "HistoryPage",
    "ListedExecution",
    "LogPage",
    "StateMachineDetail",
    "StateMachineSummary",
    "translate",
]
