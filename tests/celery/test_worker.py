"""Real Celery processes run Billfold's tasks end to end.

The worker and beat are started with the commands of the Procfile (the ones `make run` uses),
on the broker and the test database of this test run: the filesystem broker and the embedded
PostgreSQL by default, Redis and a PostgreSQL server under .ci/run. Each test routes its
messages to a queue of its own, so a leftover message or another worker on the same broker
cannot take part."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from django.conf import settings
from django.db import connection, transaction
from django_celery_beat.models import IntervalSchedule, PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler
from honcho.environ import parse_procfile
from kombu import Exchange, Queue

from billing.models import Heartbeat
from billing.tasks import heartbeat
from config.celery import app as celery_app
from config.celery import enqueue_on_commit

DEADLINE_SECONDS = 60
STOP_TIMEOUT_SECONDS = 20  # bin/run.py gives the processes as long before killing them


def _procfile_command(name: str) -> str:
    procfile = parse_procfile((Path(settings.BASE_DIR) / "Procfile").read_text())
    return procfile.processes[name]


def _test_database_url() -> str:
    """A URL for the test database, in the form DATABASE_URL takes."""
    db = connection.settings_dict
    options = {k: v for k, v in db["OPTIONS"].items() if isinstance(v, str | int)}
    host = db["HOST"] or options.pop("host", "")
    auth = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        auth += ":" + quote(db["PASSWORD"], safe="")
    netloc = f"{auth}@" if auth else ""
    if host.startswith("/"):  # a Unix socket folder (the embedded PostgreSQL)
        options["host"] = host
    else:
        netloc += host + (f":{db['PORT']}" if db["PORT"] else "")
    url = f"postgresql://{netloc}/{quote(db['NAME'], safe='')}"
    return f"{url}?{urlencode(options)}" if options else url


def _process_env(settings_module: str = "config.settings.test", **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=_test_database_url(),
        DJANGO_SETTINGS_MODULE=settings_module,
        CELERY_TASK_ALWAYS_EAGER="false",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


class RunningProcess:
    def __init__(self, proc: subprocess.Popen, log: Path) -> None:
        self.proc = proc
        self.log = log
        self.returncode: int | None = None

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def _procfile_process(
    name: str, extra_args: str, env: dict[str, str], log: Path, *, whole_group: bool = False
) -> Iterator[RunningProcess]:
    """Start the Procfile's `name` command plus `extra_args`; on exit send SIGTERM (to the main
    process, or to its whole process group as honcho does) and wait for a clean stop."""
    command = f"{_procfile_command(name)} {extra_args}"
    with log.open("wb") as out:
        proc = subprocess.Popen(  # noqa: S602 - a Procfile line is a shell command
            command,
            shell=True,
            cwd=settings.BASE_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    running = RunningProcess(proc, log)
    try:
        yield running
    finally:
        with contextlib.suppress(ProcessLookupError):
            if whole_group:
                os.killpg(proc.pid, signal.SIGTERM)
            else:
                proc.send_signal(signal.SIGTERM)
        try:
            running.returncode = proc.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        # nothing of this process may outlive the test (e.g. pool children)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def _wait_for(what: str, check: Callable[[], Any], *processes: RunningProcess) -> Any:
    """Poll `check` until it returns a truthy value; fail when a process dies or time is up."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        for running in processes:
            if running.proc.poll() is not None:
                pytest.fail(
                    f"waiting for {what}: process exited with {running.proc.returncode}\n"
                    + running.output()
                )
        time.sleep(0.2)
    logs = "\n\n".join(running.output() for running in processes)
    pytest.fail(f"no {what} within {DEADLINE_SECONDS} s\n{logs}")


def _worker_args(queue: str) -> str:
    return f"--queues {queue} --hostname {queue}@%h"


def _worker_ready(worker: RunningProcess, queue: str) -> Callable[[], bool]:
    return lambda: f"{queue}@" in worker.output() and " ready." in worker.output()


def _drop_queue(name: str) -> None:
    """Remove a test's queue (and any message left in it) from the broker."""
    with celery_app.connection_for_write() as conn:
        queue = Queue(name, Exchange(name), routing_key=name)(conn.default_channel)
        queue.declare()
        queue.purge()
        queue.delete()
    control = celery_app.conf.broker_transport_options.get("control_folder")
    if control:  # the filesystem broker keeps an (now empty) exchange file per queue
        (Path(control) / f"{name}.exchange").unlink(missing_ok=True)


@pytest.fixture
def queue() -> Iterator[str]:
    name = f"test-{uuid.uuid4().hex[:12]}"
    yield name
    _drop_queue(name)


def _heartbeat_row() -> Heartbeat | None:
    return Heartbeat.objects.filter(name="worker").first()


def test_tasks_are_not_run_eagerly() -> None:
    assert settings.CELERY_TASK_ALWAYS_EAGER is False
    assert celery_app.conf.task_always_eager is False


def test_heartbeat_acks_late_and_is_requeued_when_its_worker_dies() -> None:
    registered = celery_app.tasks["billing.heartbeat"]
    assert registered.acks_late is True
    assert registered.reject_on_worker_lost is True


@pytest.mark.django_db
def test_beat_database_scheduler_has_the_worker_heartbeat_after_migrate() -> None:
    entry = PeriodicTask.objects.get(name="Worker heartbeat")
    assert (entry.task, entry.enabled, entry.interval.every, entry.interval.period) == (
        "billing.heartbeat",
        True,
        60,
        IntervalSchedule.SECONDS,
    )
    assert settings.CELERY_BEAT_SCHEDULER == "django_celery_beat.schedulers:DatabaseScheduler"
    schedule = DatabaseScheduler(app=celery_app, lazy=True).all_as_schedule()
    assert schedule["Worker heartbeat"].task == "billing.heartbeat"
    assert schedule["Worker heartbeat"].schedule.run_every.total_seconds() == 60


class _Recorder:
    """Stands in for a task: records what would be sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[tuple, dict]] = []

    def apply_async(self, args: tuple = (), kwargs: dict | None = None, **options: Any) -> None:
        self.sent.append((args, kwargs or {}))


@pytest.mark.django_db
def test_enqueue_on_commit_sends_only_when_the_transaction_commits(
    django_capture_on_commit_callbacks,
) -> None:
    task = _Recorder()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        enqueue_on_commit(task, 7, period="2026-01")
        assert task.sent == []
    assert len(callbacks) == 1
    assert task.sent == [((7,), {"period": "2026-01"})]


@pytest.mark.django_db
def test_enqueue_on_commit_never_sends_when_the_transaction_rolls_back(
    django_capture_on_commit_callbacks,
) -> None:
    task = _Recorder()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with contextlib.suppress(RuntimeError), transaction.atomic():
            enqueue_on_commit(task, 7)
            raise RuntimeError("rolled back")
    assert callbacks == []
    assert task.sent == []


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("pool", ["procfile", "prefork"])
def test_a_worker_process_runs_a_task_enqueued_on_commit(
    pool: str, queue: str, tmp_path: Path
) -> None:
    """The Procfile's worker (thread pool) and the same worker with the prefork pool (as in
    production) each run a task sent after commit, once."""
    assert celery_app.conf.task_always_eager is False
    assert _heartbeat_row() is None
    extra = _worker_args(queue) + (" --pool prefork" if pool == "prefork" else "")
    with _procfile_process("worker", extra, _process_env(), tmp_path / "worker.log") as worker:
        _wait_for("worker ready", _worker_ready(worker, queue), worker)
        task_id = str(uuid.uuid4())
        with transaction.atomic():
            enqueue_on_commit(heartbeat.s().set(queue=queue, task_id=task_id))
            assert len(connection.run_on_commit) == 1  # nothing sent before the commit
        beat = _wait_for("heartbeat row", _heartbeat_row, worker)
        assert beat.runs == 1
        _wait_for(
            "task success in the worker log",
            lambda: f"Task billing.heartbeat[{task_id}] succeeded" in worker.output(),
            worker,
        )
    assert worker.returncode == 0, worker.output()  # a clean warm shutdown
    assert worker.output().count(f"[{task_id}] succeeded") == 1


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _healthz(port: int) -> dict | None:
    try:
        url = f"http://127.0.0.1:{port}/healthz"
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.loads(response.read()) if response.status == 200 else None
    except (urllib.error.URLError, OSError):
        return None


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_procfile_web_worker_and_beat_run_the_scheduled_heartbeat(
    queue: str, tmp_path: Path
) -> None:
    """What `make run` starts: beat sends the scheduled heartbeat from the database schedule,
    the worker runs it, /healthz on the web process reports it."""
    every_second, _ = IntervalSchedule.objects.get_or_create(
        every=1, period=IntervalSchedule.SECONDS
    )
    assert _heartbeat_row() is None
    entry = PeriodicTask.objects.get(name="Worker heartbeat")
    entry.interval = every_second
    entry.queue = queue
    entry.save()
    # the other jobs would go to the shared default queue
    PeriodicTask.objects.exclude(pk=entry.pk).update(enabled=False)
    port = _free_port()
    web_env = _process_env("config.settings.dev", PORT=str(port))
    with (
        _procfile_process("web", "", web_env, tmp_path / "web.log", whole_group=True) as web,
        _procfile_process("worker", _worker_args(queue), _process_env(), tmp_path / "w.log") as w,
    ):
        _wait_for("worker ready", _worker_ready(w, queue), w, web)
        with _procfile_process("beat", "", _process_env(), tmp_path / "beat.log") as beat:
            health = _wait_for(
                "worker_last_seen_at in /healthz",
                lambda: (h := _healthz(port)) and h["worker_last_seen_at"] and h,
                web,
                w,
                beat,
            )
        assert health["status"] == "ok"
        assert "Sending due task Worker heartbeat (billing.heartbeat)" in beat.output()
    assert (beat.returncode, w.returncode) == (0, 0), beat.output() + w.output()
    row = _heartbeat_row()
    assert row is not None
    assert datetime.fromisoformat(health["worker_last_seen_at"]) <= row.last_seen_at
    # every run the worker logged is counted once in the row, and nothing else wrote it
    runs_logged = w.output().count("Task billing.heartbeat[")  # "received" and "succeeded"
    assert runs_logged >= 2
    assert row.runs * 2 == runs_logged
