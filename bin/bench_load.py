"""The load generator of `make bench` (bin/bench.py): client threads, one request per
connection, and the workloads (single events, batches, hold + capture pairs, ``/healthz``)."""

from __future__ import annotations

import json
import os
import random
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field

PORT = int(os.environ.get("BENCH_PORT", "8765"))
CUSTOMERS = 1000


@dataclass
class Result:
    name: str
    ok: int = 0
    failed: int = 0
    units: int = 0  # events (a batch request counts its events)
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.units / self.seconds if self.seconds else 0.0

    def pct(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p))] * 1000


def http(method: str, path: str, body: bytes, key: str) -> tuple[int, bytes]:
    """One request on a new connection (gunicorn's sync workers close each one), with
    blocking sockets: the loader's own CPU per request stays small, leaving the two cores
    to the server as far as a Python client can."""
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", PORT)) as sock:
        sock.sendall(head + body)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    data = b"".join(chunks)
    status = int(data[9:12]) if data[:5] == b"HTTP/" else 0
    return status, data.split(b"\r\n\r\n", 1)[-1]


def run_load(name: str, make, key: str, clients: int, seconds: float) -> Result:
    """``make(i, n, key)`` does one unit of work → (ok, units, status); ``clients`` threads
    call it in a loop until the time is up."""
    result = Result(name)
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds
    started = time.perf_counter()

    def client(i: int) -> None:
        n = 0
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            try:
                ok, units, status = make(i, n, key)
            except OSError:
                ok, units, status = False, 0, 0
            elapsed = time.perf_counter() - t0
            with lock:
                result.latencies.append(elapsed)
                result.statuses[status] = result.statuses.get(status, 0) + 1
                if ok:
                    result.ok += 1
                    result.units += units
                else:
                    result.failed += 1
            n += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.seconds = time.perf_counter() - started
    return result


RUN = uuid.uuid4().hex[:8]


def new_run_ids() -> None:
    global RUN
    RUN = uuid.uuid4().hex[:8]


def event_body(event_id: str, customer: str) -> dict:
    return {"id": event_id, "customer": customer, "meter": "llm_tokens", "quantity": "1000"}


def single_events(hot: bool):
    def make(i: int, n: int, key: str):
        customer = "c0001" if hot else f"c{random.randint(1, CUSTOMERS):04d}"
        body = json.dumps(event_body(f"{RUN}-{'h' if hot else 's'}-{i}-{n}", customer)).encode()
        status, _ = http("POST", "/api/v1/events", body, key)
        return status == 201, 1, status

    return make


def batches(size: int = 1000):
    def make(i: int, n: int, key: str):
        events = [
            event_body(f"{RUN}-b-{i}-{n}-{k}", f"c{random.randint(1, CUSTOMERS):04d}")
            for k in range(size)
        ]
        status, payload = http(
            "POST", "/api/v1/events/batch", json.dumps({"events": events}).encode(), key
        )
        if status != 200:
            return False, 0, status
        accepted = sum(1 for r in json.loads(payload)["results"] if r["status"] == "accepted")
        return accepted == size, accepted, status

    return make


def hold_pairs():
    def make(i: int, n: int, key: str):
        hold_id = f"{RUN}-hold-{i}-{n}"
        customer = f"c{random.randint(1, CUSTOMERS):04d}"
        body = {
            "id": hold_id,
            "customer": customer,
            "meter": "llm_tokens",
            "quantity": "2000",
            "expires_in": 600,
        }
        status, _ = http("POST", "/api/v1/holds", json.dumps(body).encode(), key)
        if status != 201:
            return False, 0, status
        status, _ = http("POST", f"/api/v1/holds/{hold_id}/capture", b'{"quantity": "1200"}', key)
        return status == 200, 1, status

    return make


def healthz():
    """The project's own cheapest answer through the same server and client: what Django's
    request cycle costs here, the yardstick of the single-event target."""

    def make(i: int, n: int, key: str):
        status, _ = http("GET", "/healthz", b"", key)
        return status == 200, 1, status

    return make
