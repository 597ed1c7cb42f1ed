# The account's sync claim names the run that holds it and is renewed by that run's heartbeat.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("connections", "0002_syncrun_fatal"),
    ]

    operations = [
        migrations.RenameField(
            model_name="awsaccount",
            old_name="sync_claimed_at",
            new_name="sync_heartbeat_at",
        ),
        migrations.AddField(
            model_name="awsaccount",
            name="sync_run",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="connections.syncrun",
            ),
        ),
    ]
