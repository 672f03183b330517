"""``agentlab bench --workload serve``: a load test of ``agentlab serve`` on loopback, in three phases.

Each phase starts a real server process (:class:`agentlab.serve.harness.ServerProcess`) on 127.0.0.1
with the simulated model, a fault plan (default ``transient-10``) and ``--time-scale K``, and drives it
with an asyncio ``httpx`` client. Every phase is bounded in requests and in wall time.

1. **steady**: a closed loop of as many clients as workers, each POSTing with ``?wait`` and sending
   its next request when the last is answered: requests per second, p50/p99 latency (client side).
2. **overload**: an open loop at twice the steady throughput (POSTs at fixed times, not waiting for
   answers), into a queue of ``2 x workers``: the share answered 429, and that every admitted
   request finishes.
3. **kills**: requests with side effects (emails, tickets, refunds) under idempotency keys; the server
   is SIGKILLed ``--kills`` times while a request that has already sent its email is still running,
   restarted from its data directory, and every client POST is retried with its key. Lost requests
   (accepted, never finished) and duplicate side effects (from each request's world ledger) are counted.
"""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from agentlab.serve.harness import ServerProcess

KILL_SCENARIOS = ["multi-001", "multi-002", "multi-004", "multi-005", "multi-007", "refund-cond-001"]
# Effects the world would let happen twice (non-idempotent tools of the suite's domain); set by main_serve.
REPEATABLE: tuple[str, ...] = ()


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


async def _steady(url: str, scenarios: list[str], requests: int, clients: int, limit_s: float) -> dict[str, Any]:
    latencies: list[float] = []
    states: dict[str, int] = {}
    counter = itertools.count()
    give_up = time.perf_counter() + limit_s

    async def client(http: httpx.AsyncClient) -> None:
        while time.perf_counter() < give_up:
            i = next(counter)
            if i >= requests:
                return
            body = {"scenario_id": scenarios[i % len(scenarios)], "user_id": f"U-load-{i % 50}"}
            sent = time.perf_counter()
            try:
                r = await http.post(f"{url}/v1/requests", params={"wait": 600}, json=body)
            except httpx.TransportError as exc:
                states[type(exc).__name__] = states.get(type(exc).__name__, 0) + 1
                continue
            latencies.append(time.perf_counter() - sent)
            state = r.json().get("state", str(r.status_code)) if r.status_code != 429 else "429"
            states[state] = states.get(state, 0) + 1

    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=clients)) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        elapsed = time.perf_counter() - started
    return {
        "requests": len(latencies),
        "clients": clients,
        "requests_per_s": round(len(latencies) / elapsed, 2),
        "p50_ms": round(_pct(latencies, 0.50) * 1000, 1),
        "p99_ms": round(_pct(latencies, 0.99) * 1000, 1),
        "states": states,
    }


async def _overload(url: str, scenarios: list[str], rate: float, duration_s: float) -> dict[str, Any]:
    total = max(1, int(rate * duration_s))
    codes: dict[int, int] = {}
    admitted: list[str] = []
    retry_after: list[int] = []
    errors: dict[str, int] = {}

    async def one(http: httpx.AsyncClient, i: int, at: float) -> None:
        await asyncio.sleep(max(0.0, at - time.perf_counter()))
        body = {"scenario_id": scenarios[i % len(scenarios)], "user_id": f"U-load-{i % 50}"}
        try:
            r = await http.post(f"{url}/v1/requests", json=body)
        except httpx.TransportError as exc:  # a load generator counts a failed request, it does not stop
            errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
            return
        codes[r.status_code] = codes.get(r.status_code, 0) + 1
        if r.status_code == 429:
            retry_after.append(int(r.headers["Retry-After"]))
        elif r.status_code in (200, 202):
            admitted.append(r.json()["id"])

    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=64)) as http:
        start = time.perf_counter() + 0.2
        await asyncio.gather(*(one(http, i, start + i / rate) for i in range(total)))
        finished = await _wait_finished(http, url, admitted, limit_s=300)
    rejected = codes.get(429, 0)
    return {
        "offered_per_s": round(rate, 2),
        "sent": total,
        "status_codes": {str(k): v for k, v in sorted(codes.items())},
        "transport_errors": errors,
        "share_429": round(rejected / total, 3),
        "retry_after_s_max": max(retry_after, default=0),
        "admitted_finished": f"{sum(1 for r in finished.values() if r['state'] in ('done', 'failed'))}/{len(admitted)}",
    }


async def _wait_finished(http: httpx.AsyncClient, url: str, ids: list[str], limit_s: float) -> dict[str, dict]:
    give_up = time.perf_counter() + limit_s
    out: dict[str, dict] = {}
    pending = list(ids)
    while pending and time.perf_counter() < give_up:
        for rid in pending:
            out[rid] = (await http.get(f"{url}/v1/requests/{rid}")).json()
        pending = [rid for rid in pending if out[rid]["state"] not in ("done", "failed")]
        if pending:
            await asyncio.sleep(0.2)
    return out


def _acting(data: Path) -> bool:
    """Whether a request is still running after a non-idempotent effect (a kill now tests the journal)."""
    with sqlite3.connect(data / "requests.sqlite") as db:
        running = [r[0] for r in db.execute("SELECT id FROM requests WHERE state = 'running'")]
    for rid in running:
        world = data / "worlds" / f"{rid}.sqlite"
        if world.exists():
            with sqlite3.connect(world) as db:
                marks = ",".join("?" * len(REPEATABLE))
                if db.execute(f"SELECT 1 FROM effects WHERE tool IN ({marks}) LIMIT 1", REPEATABLE).fetchone():
                    return True
    return False


def _kills(server: ServerProcess, requests: int, kills: int) -> dict[str, Any]:
    keys = [f"kill-{i}" for i in range(requests)]
    bodies = [
        {"scenario_id": KILL_SCENARIOS[i % len(KILL_SCENARIOS)], "user_id": f"U-kill-{i}"} for i in range(requests)
    ]
    accepted: dict[str, str] = {}
    done_kills = 0

    def post_all(upto: int) -> None:
        for key, body in zip(keys[:upto], bodies[:upto], strict=True):
            r = httpx.post(f"{server.url}/v1/requests", json=body, headers={"Idempotency-Key": key}, timeout=60)
            if r.status_code in (200, 202):
                rid = r.json()["id"]
                if accepted.setdefault(key, rid) != rid:
                    raise RuntimeError(f"idempotency key {key} made a second request")

    batch = -(-requests // (kills + 1))
    for k in range(kills + 1):
        post_all(batch * (k + 1))  # a new batch, and every earlier POST retried with its key
        if k == kills:
            break
        give_up = time.perf_counter() + 60
        while time.perf_counter() < give_up and not _acting(server.data):
            time.sleep(0.005)
        server.kill()
        done_kills += 1
        server.start()
    post_all(requests)  # after the last restart, the clients retry every POST once more
    with httpx.Client(timeout=60) as http:
        results: dict[str, dict] = {}
        give_up = time.perf_counter() + 300
        pending = list(accepted.values())
        while pending and time.perf_counter() < give_up:
            for rid in pending:
                results[rid] = http.get(f"{server.url}/v1/requests/{rid}").json()
            pending = [rid for rid in pending if results[rid]["state"] not in ("done", "failed")]
            time.sleep(0.2)
    lost = [rid for rid in accepted.values() if results.get(rid, {}).get("state") not in ("done", "failed")]
    duplicates = sum((r.get("result") or {}).get("duplicate_side_effects", 0) for r in results.values())
    ledger_duplicates = 0
    for rid in accepted.values():
        world = server.data / "worlds" / f"{rid}.sqlite"
        if world.exists():
            with sqlite3.connect(world) as db:
                marks = ",".join("?" * len(REPEATABLE))
                rows = db.execute(
                    f"SELECT tool, args, count(*) FROM effects WHERE action = 'apply' AND tool IN ({marks}) "
                    "GROUP BY tool, args HAVING count(*) > 1",
                    REPEATABLE,
                ).fetchall()
            ledger_duplicates += sum(n - 1 for _, _, n in rows)
    return {
        "requests": len(accepted),
        "kills": done_kills,
        "rerun_after_kill": sum(1 for r in results.values() if r.get("attempts", 0) > 1),
        "lost": len(lost),
        "failed": sum(1 for r in results.values() if r.get("state") == "failed"),
        "failed_why": sorted(
            {(r.get("result") or {}).get("error", "") for r in results.values() if r["state"] == "failed"}
        ),
        "duplicate_side_effects": duplicates,
        "ledger_duplicates": ledger_duplicates,
    }


def main_serve(
    suite: str,
    *,
    requests: int = 300,
    workers: int = 8,
    time_scale: float = 20.0,
    faults: str | None = "fixtures/faults/transient-10.yaml",
    kills: int = 3,
    overload_s: float = 10.0,
) -> dict[str, Any]:
    from agentlab.scenarios.loader import load_suite

    global REPEATABLE
    loaded = load_suite(suite)
    scenarios = [s.id for s in loaded.scenarios]
    REPEATABLE = tuple(sorted(s.name for s in loaded.domain.tools if s.side_effects and not s.idempotent))
    common = ["--time-scale", f"{time_scale:g}", "--workers", str(workers), "--rate-limit", "0"]
    if faults:
        common += ["--faults", faults]
    out: dict[str, Any] = {
        "workload": "serve",
        "suite": suite,
        "workers": workers,
        "time_scale": time_scale,
        "faults": faults,
        "host": "127.0.0.1",
    }
    with tempfile.TemporaryDirectory(prefix="agentlab-bench-serve-") as tmp:
        root = Path(tmp)
        with ServerProcess(suite, root / "steady", *common, "--queue", str(requests)) as server:
            out["steady"] = asyncio.run(_steady(server.url, scenarios, requests, workers, limit_s=600))
        rate = 2 * out["steady"]["requests_per_s"]
        with ServerProcess(suite, root / "overload", *common, "--queue", str(2 * workers)) as server:
            out["overload_2x"] = asyncio.run(_overload(server.url, scenarios, rate, overload_s))
        # Restarts take wall seconds, which --time-scale multiplies on the agent's clock: a long deadline, so
        # that what the phase counts is lost and repeated work, not requests that timed out while it restarted.
        deadline = ["--deadline", f"{3600 * time_scale:g}"]
        server = ServerProcess(suite, root / "kills", *common, *deadline, "--queue", "1000").start()
        try:
            out["kills"] = _kills(server, max(12, requests // 10), kills)
        finally:
            server.stop()
    return out
