#!/usr/bin/env bash
# `make demo`: the sandbox (local AWS with HTTP tasks), seeded executions, a registered account,
# a Celery worker and beat, and the web server — everything a newcomer needs to look around.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
export DEBUG=${DEBUG:-1}
DEMO_PORT=${DEMO_PORT:-8000}
SANDBOX_PORT=${SANDBOX_PORT:-4566}
PER_HOUR=${DEMO_PER_HOUR:-8}
mkdir -p var/log

# `make demo` runs this inside tools/local_services.py, which chose PostgreSQL and Redis (system or
# embedded), created the database, exports DATABASE_URL / REDIS_URL and stops what it started
# when this script ends.
"$PY" manage.py migrate --noinput >/dev/null
LOGIN=$("$PY" manage.py demo_admin)

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM

"$PY" manage.py sandbox serve --port "$SANDBOX_PORT" > var/log/sandbox.log 2>&1 &
pids+=($!)
for _ in $(seq 1 60); do
  "$PY" -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=1)" "http://127.0.0.1:$SANDBOX_PORT/_sandbox/info" >/dev/null 2>&1 && break
  sleep 0.5
done
echo "sandbox: http://127.0.0.1:$SANDBOX_PORT (log: var/log/sandbox.log)"
# The demo's day (sandbox/day.py): executions over the last 24 hours and a few days before, a
# quiet night, an incident 6 hours ago and the recovery. Its names are fixed: a second
# `make demo` runs the same executions, which Stepscope already has (no duplicates).
echo "running the demo's day on the sandbox ($PER_HOUR executions an hour, an incident 6 hours ago)…"
"$PY" manage.py sandbox day --endpoint-url "http://127.0.0.1:$SANDBOX_PORT" --per-hour "$PER_HOUR"

secret_file=$(mktemp)
echo "sandbox-secret-access-key-0000000000" > "$secret_file"
"$PY" manage.py register_account --name sandbox --account-id 123456789012 --region us-east-1 \
  --access-key-id AKIAIOSFODNN7EXAMPLE --secret-access-key-file "$secret_file" \
  --endpoint-url "http://127.0.0.1:$SANDBOX_PORT"
rm -f "$secret_file"

.venv/bin/celery -A dashboard worker --loglevel INFO --concurrency 2 > var/log/worker.log 2>&1 &
pids+=($!)
.venv/bin/celery -A dashboard beat --loglevel INFO --schedule var/celerybeat-schedule > var/log/beat.log 2>&1 &
pids+=($!)
"$PY" manage.py sync_account sandbox || true

echo
echo "Stepscope: http://127.0.0.1:$DEMO_PORT/   ($LOGIN)"
echo "admin:     http://127.0.0.1:$DEMO_PORT/admin/"
echo "Ctrl-C stops everything."
"$PY" manage.py runserver "127.0.0.1:$DEMO_PORT" --noreload
