"""The Celery app: configured from Django settings under the CELERY_ namespace."""

from __future__ import annotations

import os

from celery import Celery, signals

from executions.logs import connect_celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")

app = Celery("stepscope")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# A task queued by a request logs with that request's id.
connect_celery(signals.before_task_publish, signals.task_prerun, signals.task_postrun)
