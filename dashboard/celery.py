"""The Celery app: configured from Django settings under the CELERY_ namespace."""

from __future__ import annotations

import os

from celery import Celery, signals

from dashboard.worker_gc import tune_worker_gc
from executions.logs import connect_celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")

app = Celery("stepscope")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# A task queued by a request logs with that request's id.
connect_celery(signals.before_task_publish, signals.task_prerun, signals.task_postrun)
# The worker's garbage collector, once it is set up: in the main process before the prefork pool
# forks (and in a solo worker), then in each child for what its own start allocated.
signals.worker_init.connect(tune_worker_gc, weak=False)
signals.worker_process_init.connect(tune_worker_gc, weak=False)
