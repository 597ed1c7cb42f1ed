# Retention (executions/retention.py) finds what to prune by stop time. CONCURRENTLY, so adding
# it to a large table does not block ingestion while it builds.

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("connections", "0004_syncrun_unreadable"),
        ("executions", "0004_state_machine_read_problem"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="execution",
            index=models.Index(fields=["stop_date", "id"], name="exec_stop"),
        ),
    ]
