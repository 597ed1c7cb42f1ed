# Retention (executions/retention.py) finds what to prune by stop time. CONCURRENTLY, so adding
# it to a large table does not block ingestion while it builds.

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("connections", "0006_outbox_dispatched_at"),
        ("executions", "0007_group_snooze_mute_acknowledge"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="execution",
            index=models.Index(fields=["stop_date", "id"], name="exec_stop"),
        ),
    ]
