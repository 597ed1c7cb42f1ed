#!/usr/bin/env bash
# Make sure PostgreSQL and Redis answer where the tests expect them; start them when their
# binaries are installed, else stop with one line naming the Debian packages to install; create
# the database DATABASE_URL names when it is missing.
set -euo pipefail

DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/stepscope}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}
PY=${PY:-.venv/bin/python}

pg_up() { "$PY" - "$DATABASE_URL" <<'PYEOF' >/dev/null 2>&1
import sys, psycopg, urllib.parse as u
url = u.urlparse(sys.argv[1])
psycopg.connect(host=url.hostname, port=url.port or 5432, user=url.username or "postgres",
                password=url.password, dbname="postgres", connect_timeout=3).close()
PYEOF
}
redis_up() { "$PY" -c "import redis,sys; redis.Redis.from_url(sys.argv[1], socket_connect_timeout=3).ping()" "$REDIS_URL" >/dev/null 2>&1; }

if ! pg_up; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && ls /etc/postgresql/*/main >/dev/null 2>&1; then
    echo "PostgreSQL is not answering at $DATABASE_URL; starting the local cluster"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
    for _ in $(seq 1 30); do pg_up && break; sleep 1; done
  fi
  pg_up || { echo "ERROR: PostgreSQL is not reachable at $DATABASE_URL — install and start it: apt-get install postgresql (trust auth for 127.0.0.1), or set DATABASE_URL." >&2; exit 1; }
fi
if ! redis_up; then
  if command -v redis-server >/dev/null 2>&1; then
    echo "Redis is not answering at $REDIS_URL; starting redis-server"
    mkdir -p /tmp/stepscope-redis
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no --dir /tmp/stepscope-redis --logfile /tmp/stepscope-redis/redis.log || true
    for _ in $(seq 1 20); do redis_up && break; sleep 0.5; done
  fi
  redis_up || { echo "ERROR: Redis is not reachable at $REDIS_URL — install it: apt-get install redis-server, or set REDIS_URL." >&2; exit 1; }
fi
# The application's database (tests make their own test_ copy of it); created when missing so
# that `make check`, `make demo` and `make bench` find it.
"$PY" - "$DATABASE_URL" <<'PYEOF'
import sys, urllib.parse as u, psycopg
url = u.urlparse(sys.argv[1]); name = url.path.lstrip("/")
with psycopg.connect(host=url.hostname, port=url.port or 5432, user=url.username or "postgres",
                     password=url.password, dbname="postgres", autocommit=True) as conn:
    if name and not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
        conn.execute(f'CREATE DATABASE "{name}"')
        print(f"created database {name}")
PYEOF
echo "services: PostgreSQL and Redis are up"
