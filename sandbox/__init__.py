"""A local AWS that really runs Step Functions HTTP Tasks.

moto's Step Functions interpreter plus an `http:invoke` task service (`sandbox.http_task`),
EventBridge connections that authorize and deauthorize like AWS (`sandbox.eventbridge`),
CloudWatch execution logging (`sandbox.logs`), a partner API that misbehaves on purpose
(`sandbox.partner`) and a seeded workload (`sandbox.scenarios`). Start it with
`sandbox.server.start_sandbox()` or `python manage.py sandbox serve`; docs/sandbox.md says what is
faithful to AWS and what is not.
"""

from __future__ import annotations

ACCOUNT_ID = "123456789012"
DEFAULT_REGION = "us-east-1"
