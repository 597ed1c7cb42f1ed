# One image for web, worker and beat (docker-compose.yml picks the command).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

RUN useradd --create-home --uid 10001 stepscope
COPY pyproject.toml ./
RUN pip install --no-cache-dir "pip==26.3" && pip install --no-cache-dir --group runtime

COPY . .
# collectstatic needs settings but no database or secrets.
RUN STATIC_MANIFEST=1 SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput

USER stepscope
ENV STATIC_MANIFEST=1
EXPOSE 8000
# --timeout: a revealing replay makes its TestState call in the confirming request (docs/security.md)
# and the operator client waits up to 330 s for it; gunicorn's default 30 s would kill the worker.
CMD ["gunicorn", "dashboard.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--timeout", "360", "--access-logfile", "-"]
