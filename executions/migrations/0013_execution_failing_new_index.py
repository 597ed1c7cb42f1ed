# The failing-executions list also shows failures saved from ListExecutions whose history is not
# read yet ("failed — not yet inspected"): its query ORs them in, which exec_failing_start's
# predicate does not cover. CONCURRENTLY, so building it on a large table does not block ingestion.

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("connections", "0009_connection_connectivity_kms"),
        ("executions", "0012_map_runs"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="execution",
            index=models.Index(
                condition=models.Q(
                    ("has_failed_attempt", True),
                    models.Q(
                        ("history_complete", False),
                        ("source", "listing"),
                        ("status__in", ["ABORTED", "FAILED", "TIMED_OUT"]),
                    ),
                    _connector="OR",
                ),
                fields=["-start_date", "-id"],
                name="exec_failing_new_start",
            ),
        ),
    ]
