#!/usr/bin/env python3
"""`make run`: Billfold in one terminal.

Starts the embedded PostgreSQL unless DATABASE_URL is set, migrates, loads the demo data, then
runs the processes of the Procfile (web, Celery worker, Celery beat) with honcho. Ctrl-C (or
SIGTERM/SIGHUP) stops them all, then stops the embedded PostgreSQL if this run started it.

Run it with the project's virtualenv: ``.venv/bin/python bin/run.py`` (``make run`` does).
Environment: PORT (default 8000) and everything config/settings reads (docs/operations.md).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# created by `manage.py seed_demo`
DEMO_USER = "admin"
DEMO_PASSWORD = "billfold-demo"  # noqa: S105
# a Celery worker's warm shutdown takes a few seconds; honcho's default is to SIGKILL after 5
STOP_TIMEOUT_SECONDS = 20


def say(message: str) -> None:
    print(f"[make run] {message}", flush=True)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _port() -> int:
    raw = os.environ.get("PORT") or "8000"
    try:
        port = int(raw)
    except ValueError:
        raise SystemExit(f"[make run] PORT must be a number, not {raw!r}") from None
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            raise SystemExit(
                f"[make run] port {port} is in use on 127.0.0.1; choose another: PORT=8001 make run"
            ) from None
    return port


def _manage(*args: str) -> None:
    cmd = [sys.executable, "manage.py", *args]
    say("$ " + " ".join(["python", *cmd[1:]]))
    subprocess.run(cmd, check=True)  # noqa: S603


def _announce_when_up(port: int, stopping: threading.Event) -> None:
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not stopping.is_set():
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    break
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    else:
        return
    say(
        "Billfold is up.\n"
        f"    admin     {base}/admin/   login: {DEMO_USER} / {DEMO_PASSWORD}\n"
        f"    API docs  {base}/api/v1/docs\n"
        f"    health    {base}/healthz\n"
        "    Ctrl-C stops the web server, the worker and beat."
    )


def _serve(port: int) -> int:
    from honcho import manager as honcho_manager
    from honcho.environ import parse_procfile
    from honcho.printer import Printer

    honcho_manager.KILL_WAIT = STOP_TIMEOUT_SECONDS
    procfile = parse_procfile((ROOT / "Procfile").read_text())
    manager = honcho_manager.Manager(Printer(sys.stdout, colour=sys.stdout.isatty()))
    for name, command in procfile.processes.items():
        manager.add_process(name, command, env=dict(os.environ))
    stopping = threading.Event()
    threading.Thread(target=_announce_when_up, args=(port, stopping), daemon=True).start()
    # honcho handles SIGINT and SIGTERM; a closed terminal must stop everything too (only in
    # this process: honcho's helper processes inherit the handler)
    runner_pid = os.getpid()

    def _hangup(signum, frame) -> None:
        if os.getpid() == runner_pid:
            manager.terminate()

    signal.signal(signal.SIGHUP, _hangup)
    say(f"starting {', '.join(procfile.processes)} (Procfile) on port {port}")
    try:
        manager.loop()
    finally:
        stopping.set()
    return manager.returncode or 0


def main() -> int:
    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT))
    import environ

    # as the settings do: a .env file fills in what the environment does not set
    environ.Env.read_env(ROOT / ".env", overwrite=False)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")
    # the Procfile's `python` and `celery` are the virtualenv's
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    # children write to honcho's pipes: without this their output arrives in bursts
    os.environ["PYTHONUNBUFFERED"] = "1"
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)
    port = _port()
    os.environ["PORT"] = str(port)

    embedded_pg = None
    started_pg = False
    try:
        if not os.environ.get("DATABASE_URL"):
            from config import embedded_pg

            started_pg = not embedded_pg.is_running()
            # the processes get the URL, so none of them starts the server again after we stop it
            os.environ["DATABASE_URL"] = embedded_pg.ensure_running()
            say(
                ("started" if started_pg else "using the already running")
                + f" embedded PostgreSQL ({embedded_pg.PGDATA})"
            )
        else:
            say("using DATABASE_URL from the environment")
        _manage("migrate", "--no-input")
        _manage("seed_demo")
        return _serve(port)
    except KeyboardInterrupt:
        return 130
    except subprocess.CalledProcessError as exc:
        say(f"`{' '.join(exc.cmd[1:])}` failed with exit code {exc.returncode}")
        return exc.returncode or 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if started_pg and embedded_pg is not None:
            say("stopping the embedded PostgreSQL this run started")
            embedded_pg.stop()
        elif embedded_pg is not None:
            say("leaving the embedded PostgreSQL running (it ran before; `make db-stop` stops it)")


if __name__ == "__main__":
    sys.exit(main())
