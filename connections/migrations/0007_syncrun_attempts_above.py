from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("connections", "0006_outbox_dispatched_at"),
    ]

    operations = [
        migrations.AddField(
            model_name="syncrun",
            name="attempts_above",
            field=models.BigIntegerField(default=0),
        ),
    ]
