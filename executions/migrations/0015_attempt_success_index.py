# The classifier's last-success lookups read every attempt of an endpoint through
# att_endpoint_all and dropped the failures; this partial index holds the successes alone.
# CONCURRENTLY, so building it on a table of millions of attempts does not block ingestion.

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("connections", "0009_connection_connectivity_kms"),
        ("executions", "0014_aborted_outcome"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="httpattempt",
            index=models.Index(
                condition=models.Q(("outcome", "succeeded")),
                fields=["endpoint", "occurred_at", "id"],
                name="att_success_endp",
            ),
        ),
    ]
