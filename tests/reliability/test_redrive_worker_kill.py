"""A real Celery worker SIGKILLed in the middle of a redrive batch (between two rows, held by
the shared rate limiter): resumed after the batch goes silent and a new worker started, every
execution of the batch is redriven exactly once (AWS's redriveCount)."""

from __future__ import annotations

from typing import Any

import pytest

from connections.ratelimit import RateLimiter, quota_scope
from executions.models import Execution
from executions.sync import sync_account_by_id
from operations.batch import resume_stale_batches
from operations.choices import ActionOutcome
from operations.models import OperatorAction, RedriveBatch
from sandbox.server import Sandbox
from tests.aws_sandbox import register
from tests.operations.test_redrive import with_operator_role
from tests.reliability.conftest import (
    WORKER_STALE_AFTER_SECONDS,
    RedisServer,
    celery_client,
    wait_for,
)
from tests.sandbox.support import Aws, http_task, single_state, unique

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.worker]
EXECUTIONS = 3
SHARE = 0.01  # REDRIVE_QUOTA_PERCENT=1
# At 1% of RedriveExecution's quota the bucket holds 13 tokens and refills 3 a second: the batch
# would be over before the test could kill anything. The test empties the bucket, and the
# workers refill it this much slower (one token every ~6 s), so each row waits for its token
# and the kill lands while a row does.
WORKER_ENV = {"AWS_QUOTA_TIME_SCALE": str(1 / 18)}


def _empty_the_redrive_bucket(limiter: RateLimiter) -> None:
    size, _ = limiter.bucket("RedriveExecution")
    for _ in range(int(size)):
        limiter.acquire("RedriveExecution")


def _outcomes(batch: RedriveBatch) -> list[str]:
    return list(batch.actions.order_by("id").values_list("outcome", flat=True))


def test_a_worker_killed_mid_batch_then_resumed_redrives_each_execution_once(
    sync_sandbox: Sandbox,
    redis_server: RedisServer,
    workers: Any,
    monkeypatch: pytest.MonkeyPatch,
    settings: Any,
) -> None:
    monkeypatch.setenv("REDRIVE_QUOTA_PERCENT", "1")
    settings.STEPSCOPE = {
        **settings.STEPSCOPE,
        "SYNC_STALE_AFTER_SECONDS": WORKER_STALE_AFTER_SECONDS,
    }
    settings.REDIS_URL = redis_server.url  # the workers' Redis, which holds the shared buckets
    aws = Aws(sync_sandbox.endpoint_url, sync_sandbox.region)
    account = register(sync_sandbox, name=unique("killed"))
    with_operator_role(account)
    arns = []
    for _ in range(EXECUTIONS):
        url = f"{sync_sandbox.partner_url}/sequence?key={unique('k')}&statuses=500,200"
        arn = aws.start(
            aws.state_machine(single_state(http_task({"ApiEndpoint": url, "Method": "GET"})))
        )
        assert aws.wait(arn).status == "FAILED"
        arns.append(arn)
    sync_account_by_id(account.pk, trigger="test")
    batch = RedriveBatch.objects.create(account=account, username="operator")
    for arn in arns:
        OperatorAction.objects.create(
            kind="redrive",
            username="operator",
            account=account,
            execution=Execution.objects.get(arn=arn),
            target=arn,
            client_token=unique("token"),
            batch=batch,
        )

    _empty_the_redrive_bucket(RateLimiter(quota_scope(account), sync_sandbox.region, SHARE))
    first = workers(redis_server.url, env=WORKER_ENV)
    client = celery_client(redis_server.url)
    client.send_task("operations.tasks.run_redrive_batch", args=[batch.pk], queue=first.queue)
    wait_for(
        lambda: _outcomes(batch)[0] == ActionOutcome.SUCCEEDED,
        "the first row to be redriven",
        alive=first,
    )
    assert ActionOutcome.PENDING in _outcomes(batch) or ActionOutcome.RUNNING in _outcomes(batch)
    first.kill()

    # What the beat does once the batch is silent; then a new worker takes the message.
    resumed = wait_for(resume_stale_batches, "the silent batch to be resumed", timeout=60)
    assert resumed == [batch.pk]
    second = workers(redis_server.url, env=WORKER_ENV)
    client.send_task("operations.tasks.run_redrive_batch", args=[batch.pk], queue=second.queue)
    wait_for(
        lambda: set(_outcomes(batch)) == {ActionOutcome.SUCCEEDED},
        "every row to be redriven after the restart",
        alive=second,
    )
    counts = [aws.sfn.describe_execution(executionArn=arn)["redriveCount"] for arn in arns]
    assert counts == [1] * EXECUTIONS
