#!/usr/bin/env python3
"""`make bench`: Billfold's performance run (docs/quality.md "Performance").

It prepares a separate database (``<db>_bench``) with 1,000 funded customers, starts gunicorn
with production settings on it, loads it from this separate process over loopback, checks the
ledger afterwards (zero drift) and prints, per workload, throughput, p50 and p99 beside a
bare-SQL baseline of the same database work measured in the same run, and the single-event
workloads as a ratio to ``GET /healthz`` through the same server (the load: bin/bench_load.py).

Environment: DATABASE_URL (default: the embedded PostgreSQL), BENCH_SECONDS (per workload,
default 10), BENCH_WORKERS (gunicorn workers, default 3: on two cores 3 did better than 5
or 8), BENCH_PORT (default 8765),
BENCH_CLIENTS (concurrent clients, default 16), BENCH_WARMUP (seconds of each workload run
before it is measured, default 2: the workers' first requests, first charges and freshly
seeded tables are not the steady state), BENCH_ONLY (comma-separated words picking
workloads by name, e.g. ``single,batches``), BENCH_BILLING_SUBSCRIPTIONS (0 skips the
run_billing workload), BENCH_BILLING_WORKERS (``run_billing --workers``, default 2).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_load import (  # noqa: E402 - bin/ is the script's own directory on sys.path
    CUSTOMERS,
    PORT,
    Result,
    batches,
    healthz,
    hold_pairs,
    http,
    new_run_ids,
    run_load,
    single_events,
)

SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))
WARMUP = float(os.environ.get("BENCH_WARMUP", "2"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "3"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "16"))
BILLING_SUBSCRIPTIONS = int(os.environ.get("BENCH_BILLING_SUBSCRIPTIONS", "10000"))
BILLING_WORKERS = int(os.environ.get("BENCH_BILLING_WORKERS", "2"))


def base_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    from config.embedded_pg import ensure_running

    return ensure_running()


def with_db(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


def psycopg_dsn(url: str) -> str:
    """A libpq connection string for psycopg from a postgresql:// URL."""
    return url


# --- preparing the bench database ---------------------------------------------------------------


def prepare(url: str) -> tuple[str, str]:
    import psycopg

    name = urlsplit(url).path.lstrip("/") + "_bench"
    admin = with_db(url, "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
        # as docs/operations.md asks of a PostgreSQL server of your own (the embedded one
        # has it already): plans for data on an SSD or in memory
        conn.execute(f'ALTER DATABASE "{name}" SET random_page_cost = 1.1')
    bench_url = with_db(url, name)
    env = {
        **os.environ,
        "DATABASE_URL": bench_url,
        "DJANGO_SETTINGS_MODULE": "config.settings.prod",
    }
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    out = subprocess.run(  # noqa: S603 - our own manage.py
        [sys.executable, "manage.py", "seed_bench", "--customers", str(CUSTOMERS)],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    # settled statistics and no autovacuum of the fresh seed in the middle of a workload
    with psycopg.connect(psycopg_dsn(bench_url), autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
    return bench_url, out.stdout.strip().splitlines()[-1]


def analyze(url: str) -> None:
    """Statistics of the tables as the warm-up left them, as autovacuum keeps them on a
    running system (it analyzes a table once 50 rows have changed). The seed leaves the
    usage tables empty: plans that the workers' connections chose then (and keep) would
    scan them sequentially; ANALYZE invalidates those plans."""
    import psycopg

    with psycopg.connect(psycopg_dsn(url), autocommit=True) as conn:
        conn.execute("ANALYZE")


# --- the bare-SQL baseline ------------------------------------------------------------------------

BASELINE_SETUP = """
DROP TABLE IF EXISTS ev, counter, bal, ledger;
CREATE TABLE ev (id bigserial primary key, key uuid unique, customer int, meter text,
                 qty numeric, ts timestamptz default now());
CREATE TABLE counter (customer int, meter text, qty numeric default 0,
                      primary key(customer, meter));
CREATE TABLE bal (id int primary key, amount numeric(38,12));
CREATE TABLE ledger (id bigserial primary key, txn uuid, account int, amount numeric(38,12),
                     created timestamptz default now());
"""


def _baseline_worker(args) -> tuple[int, float, list[float]]:
    import psycopg

    dsn, n_customers, seconds, batch, seed = args
    rnd = random.Random(seed)
    done, lat = 0, []
    with psycopg.connect(dsn) as conn:
        cur = conn.cursor()
        deadline = time.perf_counter() + seconds
        t0 = time.perf_counter()
        while time.perf_counter() < deadline:
            ts = time.perf_counter()
            with conn.transaction():
                if batch == 1:
                    cust = rnd.randint(1, n_customers)
                    k = uuid.uuid4()
                    cur.execute(
                        "INSERT INTO ev(key, customer, meter, qty) VALUES (%s,%s,'tokens',%s) "
                        "ON CONFLICT DO NOTHING RETURNING id",
                        (k, cust, 1000),
                        prepare=True,
                    )
                    cur.execute(
                        "UPDATE counter SET qty = qty + %s WHERE customer=%s AND meter='tokens' "
                        "RETURNING qty",
                        (1000, cust),
                        prepare=True,
                    )
                    cur.execute(
                        "UPDATE bal SET amount = amount - %s WHERE id=%s AND amount - %s >= 0 "
                        "RETURNING amount",
                        (0.002, cust, 0.002),
                        prepare=True,
                    )
                    cur.execute(
                        "INSERT INTO ledger(txn, account, amount) VALUES (%s,%s,%s),(%s,0,%s)",
                        (k, cust, -0.002, k, 0.002),
                        prepare=True,
                    )
                else:
                    evs = [(uuid.uuid4(), rnd.randint(1, n_customers), 1000) for _ in range(batch)]
                    with cur.copy("COPY ev(key, customer, meter, qty) FROM STDIN") as cp:
                        for k, cust, q in evs:
                            cp.write_row((k, cust, "tokens", q))
                    per: dict[int, int] = {}
                    for _, cust, q in evs:
                        per[cust] = per.get(cust, 0) + q
                    custs = sorted(per)
                    cur.executemany(
                        "UPDATE counter SET qty = qty + %s WHERE customer=%s AND meter='tokens'",
                        [(per[x], x) for x in custs],
                    )
                    cur.executemany(
                        "UPDATE bal SET amount = amount - %s WHERE id=%s AND amount - %s >= 0",
                        [(per[x] * 0.000002, x, per[x] * 0.000002) for x in custs],
                    )
                    with cur.copy("COPY ledger(txn, account, amount) FROM STDIN") as cp:
                        for k, cust, q in evs:
                            cp.write_row((k, cust, -q * 0.000002))
                            cp.write_row((k, 0, q * 0.000002))
            lat.append(time.perf_counter() - ts)
            done += batch
        return done, time.perf_counter() - t0, lat


def baseline(url: str, procs: int, n_customers: int, batch: int, seconds: float) -> Result:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(BASELINE_SETUP)
        conn.execute(
            "INSERT INTO counter SELECT g, 'tokens', 0 FROM generate_series(1,%s) g", (n_customers,)
        )
        conn.execute("INSERT INTO bal SELECT g, 1e12 FROM generate_series(0,%s) g", (n_customers,))
    with mp.Pool(procs) as pool:
        rows = pool.map(
            _baseline_worker, [(url, n_customers, seconds, batch, i) for i in range(procs)]
        )
    result = Result("baseline")
    result.units = sum(r[0] for r in rows)
    result.seconds = max(r[1] for r in rows)
    result.latencies = [x for r in rows for x in r[2]]
    return result


# --- orchestration --------------------------------------------------------------------------------


def start_server(bench_url: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": bench_url,
        "DJANGO_SETTINGS_MODULE": "config.settings.prod",
        "DB_CONN_MAX_AGE": "600",
        "LOG_LEVEL": "WARNING",
    }
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    proc = subprocess.Popen(  # noqa: S603
        [
            gunicorn,
            "config.wsgi",
            "-w",
            str(WORKERS),
            "-b",
            f"127.0.0.1:{PORT}",
            "--log-level",
            "warning",
            "--backlog",
            "2048",
            "--timeout",
            "300",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            status, _ = http("GET", "/healthz", b"", "none")
            if status == 200:
                return proc
        except OSError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise SystemExit("gunicorn did not answer /healthz within 60 s")


def reconcile(bench_url: str) -> str:
    env = {
        **os.environ,
        "DATABASE_URL": bench_url,
        "DJANGO_SETTINGS_MODULE": "config.settings.prod",
    }
    done = subprocess.run(
        [sys.executable, "manage.py", "reconcile"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    return "zero drift" if done.returncode == 0 else f"DRIFT:\n{done.stderr}"


def billing_scale(url: str) -> tuple[BillingRun, BillingRun]:
    """Seed BILLING_SUBSCRIPTIONS postpaid subscriptions with usage in January 2026, then time
    `manage.py run_billing --as-of 2026-02-01` closing them all, and the same a week later
    finalizing the drafts it made."""
    import psycopg

    name = urlsplit(url).path.lstrip("/") + "_bench_billing"
    with psycopg.connect(with_db(url, "postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
        # as docs/operations.md asks of a PostgreSQL server of your own (the embedded one
        # has it already): plans for data on an SSD or in memory
        conn.execute(f'ALTER DATABASE "{name}" SET random_page_cost = 1.1')
    db_url = with_db(url, name)
    env = {**os.environ, "DATABASE_URL": db_url, "DJANGO_SETTINGS_MODULE": "config.settings.prod"}
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v0"], cwd=ROOT, env=env, check=True)  # noqa: S603
    print(f"  seeding {BILLING_SUBSCRIPTIONS:,} subscriptions with usage …", flush=True)
    subprocess.run(  # noqa: S603
        [
            *manage,
            "seed_bench",
            "--customers",
            str(BILLING_SUBSCRIPTIONS),
            "--billing-start",
            "2026-01-01T00:00:00+00:00",
        ],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    # as a database that has been running has them: fresh statistics, no autovacuum of the
    # just-loaded tables starting in the middle of the timed run
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
    print("  running: run_billing closing them …", flush=True)
    close = _timed_run_billing(env, "2026-02-01T00:00:00+00:00")
    # a week later (past the grace period): the same command finalizes every draft the
    # close made, refreshing each draft's usage lines first
    print("  running: run_billing finalizing their drafts …", flush=True)
    finalize = _timed_run_billing(env, "2026-02-08T00:00:00+00:00")
    return close, finalize


def _timed_run_billing(env: dict, as_of: str) -> BillingRun:
    """`manage.py run_billing --as-of <as_of>`, timed, its peak RSS sampled with psutil."""
    import psutil

    started = time.perf_counter()
    # output goes to a file: a pipe nobody reads until the end would fill and stall it
    log = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen(  # noqa: S603
        [
            sys.executable,
            "manage.py",
            "run_billing",
            "--as-of",
            as_of,
            "--workers",
            str(BILLING_WORKERS),
        ],
        cwd=ROOT,
        env={**env, "LOG_LEVEL": "WARNING"},
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    watched = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        # the memory of the whole process tree (the command and its worker processes): the
        # sum of proportional set sizes, so pages the forked workers share count once
        try:
            tree = [watched, *watched.children(recursive=True)]
        except psutil.NoSuchProcess:
            break
        total = 0
        for p in tree:
            try:
                total += p.memory_full_info().pss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass
        peak = max(peak, total)
        time.sleep(0.2)
    proc.wait()
    log.seek(0)
    output = log.read()
    seconds = time.perf_counter() - started
    steps = {}
    for line in output.splitlines():
        name, colon, count = line.strip().rpartition(":")
        if colon and count.strip().isdigit():
            steps[name] = int(count)
    drift = "zero drift" if "ledger: no drift" in output else "DRIFT"
    return BillingRun(seconds, peak / 2**20, steps, drift)


@dataclass
class BillingRun:
    seconds: float
    rss_mb: float
    steps: dict[str, int]
    drift: str


def main() -> int:
    url = base_url()
    print(
        f"bench: {os.cpu_count()} cores, {SECONDS:.0f} s per workload, gunicorn -w {WORKERS}, "
        f"{CLIENTS} clients",
        flush=True,
    )
    bench_url, key = prepare(url)
    server = start_server(bench_url)
    rows = []
    try:
        # the yardstick of the single-event target: the cheapest answer of the same server
        print("  running: GET /healthz …", flush=True)
        if WARMUP:
            run_load("healthz", healthz(), key, CLIENTS, WARMUP)
        yardstick = run_load("healthz", healthz(), key, CLIENTS, SECONDS)
        workloads = [
            (
                "single events, 1,000 customers",
                single_events(False),
                CLIENTS,
                (4, CUSTOMERS, 1),
                "≥ 0.75 × /healthz, p99 ≤ 50 ms",
                lambda r: r.rate >= 0.75 * yardstick.rate and r.pct(0.99) <= 50,
            ),
            (
                "single events, one hot customer",
                single_events(True),
                CLIENTS,
                (4, 1, 1),
                "≥ 400 ev/s, p99 ≤ 100 ms",
                lambda r: r.rate >= 400 and r.pct(0.99) <= 100,
            ),
            (
                "batches of 1,000",
                batches(),
                4,
                (2, CUSTOMERS, 500),
                "≥ 10,000 ev/s",
                lambda r: r.rate >= 10000,
            ),
            (
                "hold + capture pairs",
                hold_pairs(),
                CLIENTS,
                None,
                "≥ 400 pairs/s",
                lambda r: r.rate >= 400,
            ),
        ]
        only = [w for w in os.environ.get("BENCH_ONLY", "").split(",") if w]
        for name, make, clients, base_args, target, met in workloads:
            if only and not any(w in name for w in only):
                continue
            print(f"  running: {name} …", flush=True)
            if WARMUP:
                run_load(name, make, key, clients, WARMUP)
                new_run_ids()  # the measured run's ids are new, not replays of the warm-up's
                analyze(bench_url)
            result = run_load(name, make, key, clients, SECONDS)
            base = None
            if base_args is not None:
                procs, n_customers, batch = base_args
                base = baseline(
                    with_db(bench_url, urlsplit(bench_url).path.lstrip("/")),
                    procs,
                    n_customers,
                    batch,
                    min(SECONDS, 5),
                )
            rows.append((name, result, base, target, met(result)))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    drift = reconcile(bench_url)
    billing = None
    if BILLING_SUBSCRIPTIONS:
        billing = billing_scale(url)
    print()
    print(
        "| workload | throughput | p50 | p99 | errors | bare-SQL baseline | ratio | target | met |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, r, base, target, ok in rows:
        unit = "pairs/s" if "hold" in name else "ev/s"
        base_text = f"{base.rate:,.0f} ev/s" if base else "—"
        ratio = f"{r.rate / base.rate:.2f}" if base and base.rate else "—"
        errors = ", ".join(f"{k}×{v}" for k, v in sorted(r.statuses.items()) if k not in (200, 201))
        print(
            f"| {name} | {r.rate:,.0f} {unit} | {r.pct(0.5):.1f} ms | {r.pct(0.99):.1f} ms | "
            f"{errors or 'none'} | {base_text} | {ratio} | {target} | {'yes' if ok else 'no'} |"
        )
    if billing is not None:
        close, finalize = billing
        closed = close.steps.get("periods closed", 0)
        ok = close.seconds <= 60 and close.rss_mb <= 300 and closed == BILLING_SUBSCRIPTIONS
        print(
            f"| run_billing --workers {BILLING_WORKERS} closing {closed:,} subscriptions with "
            f"usage | {close.seconds:.1f} s | peak memory {close.rss_mb:.0f} MB | | "
            f"{close.drift} | — | — | ≤ 60 s, ≤ 300 MB RSS | {'yes' if ok else 'no'} |"
        )
        finalized = finalize.steps.get("invoices finalized", 0)
        print(
            f"| run_billing --workers {BILLING_WORKERS} a week later, finalizing {finalized:,} "
            f"drafts | {finalize.seconds:.1f} s | peak memory {finalize.rss_mb:.0f} MB | | "
            f"{finalize.drift} | — | — | — | — |"
        )
    print()
    print(
        f"GET /healthz through the same server and clients: {yardstick.rate:,.0f} req/s, "
        f"p50 {yardstick.pct(0.5):.1f} ms, p99 {yardstick.pct(0.99):.1f} ms"
    )
    for name, r, _base, _target, _ok in rows:
        if name.startswith("single events"):
            print(f"{name}: {r.rate / yardstick.rate:.2f} × /healthz")
    print(f"ledger after the run: {drift}")
    return 0 if drift == "zero drift" else 1


if __name__ == "__main__":
    raise SystemExit(main())
