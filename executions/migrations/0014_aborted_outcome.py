# Attempts cut off by StopExecution or an aborted state get their own outcome, `aborted`, which
# is not failing (executions.history.attempts says why): the partial indexes over failing
# attempts are rebuilt with the new predicate, CONCURRENTLY so ingestion is not blocked.
# Stored attempts move to the new outcome with `manage.py reclassify` (RULES_VERSION bumped).

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
import django.contrib.postgres.indexes
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ('connections', '0009_connection_connectivity_kms'),
        ('executions', '0013_execution_failing_new_index'),
    ]

    operations = [
        RemoveIndexConcurrently(
            model_name='httpattempt',
            name='att_fail_conn',
        ),
        RemoveIndexConcurrently(
            model_name='httpattempt',
            name='att_fail_endp',
        ),
        RemoveIndexConcurrently(
            model_name='httpattempt',
            name='att_fail_cat',
        ),
        RemoveIndexConcurrently(
            model_name='httpattempt',
            name='att_fail_acct',
        ),
        RemoveIndexConcurrently(
            model_name='httpattempt',
            name='att_fail_text',
        ),
        migrations.AlterField(
            model_name='httpattempt',
            name='outcome',
            field=models.CharField(choices=[('succeeded', 'Succeeded'), ('failed', 'Failed'), ('timed_out', 'Timed Out'), ('aborted', 'Aborted'), ('in_progress', 'In Progress')], max_length=12),
        ),
        AddIndexConcurrently(
            model_name='httpattempt',
            index=models.Index(condition=models.Q(('outcome__in', ['succeeded', 'in_progress', 'aborted']), _negated=True), fields=['account', '-occurred_at', '-id'], include=('category', 'connection', 'endpoint'), name='att_fail_acct'),
        ),
        AddIndexConcurrently(
            model_name='httpattempt',
            index=models.Index(condition=models.Q(('outcome__in', ['succeeded', 'in_progress', 'aborted']), _negated=True), fields=['connection_arn', '-occurred_at', '-id'], name='att_fail_conn'),
        ),
        AddIndexConcurrently(
            model_name='httpattempt',
            index=models.Index(condition=models.Q(('outcome__in', ['succeeded', 'in_progress', 'aborted']), _negated=True), fields=['endpoint', '-occurred_at', '-id'], name='att_fail_endp'),
        ),
        AddIndexConcurrently(
            model_name='httpattempt',
            index=models.Index(condition=models.Q(('outcome__in', ['succeeded', 'in_progress', 'aborted']), _negated=True), fields=['category', '-occurred_at', '-id'], name='att_fail_cat'),
        ),
        AddIndexConcurrently(
            model_name='httpattempt',
            index=django.contrib.postgres.indexes.GinIndex(condition=models.Q(('outcome__in', ['succeeded', 'in_progress', 'aborted']), _negated=True), fields=['error', 'cause', 'url', 'response_body'], name='att_fail_text', opclasses=['gin_trgm_ops', 'gin_trgm_ops', 'gin_trgm_ops', 'gin_trgm_ops']),
        ),
    ]
