"""agentlab serve: a real server process on loopback, driven over HTTP.

Admission (429 + Retry-After), idempotency keys, per-user rate limits (in memory and shared through a
real Redis), deadlines, health, Prometheus metrics checked against the trace, and a SIGKILL
mid-request that loses no request and applies no side effect twice (from the world's ledger).
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import httpx
import orjson
import pytest

from agentlab.cli import main
from agentlab.domains.support import registry as support_registry
from agentlab.errors import InputError
from agentlab.runs import RunOptions, plan_run
from agentlab.serve.harness import ServerProcess

SUITE = "fixtures/suites/support.yaml"
FAULTS = "fixtures/faults/transient-10.yaml"
NON_IDEMPOTENT = {spec.name for spec in support_registry if not spec.idempotent}
SIDE_EFFECTS = ["multi-001", "multi-002", "multi-004", "multi-005", "multi-007", "refund-cond-001"]
# Effects the world itself would let happen twice (a second refund of one order is refused by the world;
# a second email is simply sent): what a re-run request could duplicate.
REPEATABLE = {"send_email", "create_ticket"}


def _post(url: str, body: dict, key: str | None = None, wait: float = 0.0) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key else {}
    return httpx.post(f"{url}/v1/requests", params={"wait": wait}, json=body, headers=headers, timeout=60)


def _finished(url: str, ids: list[str], tries: int = 600) -> dict[str, dict]:
    """Poll until every request has finished (a real server: its own pace, not a timed assertion)."""
    out: dict[str, dict] = {}
    for _ in range(tries):
        out = {i: httpx.get(f"{url}/v1/requests/{i}", timeout=10).json() for i in ids}
        if all(r["state"] in ("done", "failed") for r in out.values()):
            return out
        time.sleep(0.1)
    return out


def _metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _events(data: Path) -> list[dict]:
    return [orjson.loads(line) for line in (data / "events.jsonl").read_bytes().splitlines() if line.strip()]


def test_a_retried_post_never_acts_twice(tmp_path: Path, tiers_with) -> None:
    # Every tier's p_correct at 1. A served request's randomness follows its request id (a fresh uuid, or derived
    # from its idempotency key), so on the default tier (p_correct 0.85 a step) a request may answer without acting
    # (seen in CI): a test of what the server does with an action needs a model that always acts, not one that
    # happens to for the key the test chose.
    tiers = tiers_with(p_correct=1.0)
    with ServerProcess(SUITE, tmp_path / "srv", "--time-scale", "50", "--tiers", tiers) as server:
        body = {"scenario_id": "refund-cond-001"}
        first = _post(server.url, body, key="order-1004-refund", wait=120)
        again = _post(server.url, body, key="order-1004-refund", wait=120)
        assert first.status_code == 200 and first.json()["state"] == "done"
        assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
        assert again.json()["id"] == first.json()["id"]
        assert first.json()["result"]["effects"] and first.json()["result"]["duplicate_side_effects"] == 0
        other = _post(server.url, {"scenario_id": "refund-cond-003"}, key="order-1004-refund")
        assert other.status_code == 422 and other.json()["error"] == "idempotency_key_reused"
        assert _post(server.url, {"scenario_id": "no-such"}).status_code == 422
        metrics = httpx.get(f"{server.url}/metrics").text
    rows = sqlite3.connect(tmp_path / "srv" / "requests.sqlite").execute("SELECT attempts FROM requests").fetchall()
    assert rows == [(1,)]  # one request, run once
    started = [e for e in _events(tmp_path / "srv") if e["kind"] == "episode_started"]
    assert len(started) == 1
    assert _metric(metrics, "agentlab_requests_idempotent_replays_total") == 1


def test_a_full_queue_answers_429_with_retry_after(tmp_path: Path) -> None:
    # One worker, one place in the queue, real-time simulated latencies (seconds a request): the third
    # and later requests of a burst cannot be admitted.
    args = ["--workers", "1", "--queue", "1", "--rate-limit", "0"]
    with ServerProcess(SUITE, tmp_path / "srv", *args) as server:
        codes = [_post(server.url, {"scenario_id": "multi-001", "user_id": f"u{i}"}) for i in range(6)]
        assert [r.status_code for r in codes[:2]] == [202, 202]
        refused = [r for r in codes if r.status_code == 429]
        assert len(refused) == 4
        assert all(int(r.headers["Retry-After"]) >= 1 for r in refused)
        assert all("queue is full" in r.json()["reason"] for r in refused)
        assert httpx.get(f"{server.url}/readyz").status_code == 503
        assert httpx.get(f"{server.url}/healthz").status_code == 200
        metrics = httpx.get(f"{server.url}/metrics").text
        assert _metric(metrics, "agentlab_requests_rejected_total", reason="queue_full") == 4
        assert _metric(metrics, "agentlab_queue_depth") == 1


def test_per_user_rate_limit(tmp_path: Path) -> None:
    with ServerProcess(SUITE, tmp_path / "srv", "--rate-limit", "0.01", "--burst", "2", "--time-scale", "50") as server:
        mine = [_post(server.url, {"scenario_id": "lookup-001", "user_id": "U-busy"}).status_code for _ in range(3)]
        assert mine == [202, 202, 429]
        assert _post(server.url, {"scenario_id": "lookup-001", "user_id": "U-calm"}).status_code == 202


def test_replicas_share_the_rate_limit_through_redis(tmp_path: Path, redis_url: str) -> None:
    args = ["--rate-limit", "0.01", "--burst", "2", "--time-scale", "50", "--redis", redis_url]
    with ServerProcess(SUITE, tmp_path / "a", *args) as a, ServerProcess(SUITE, tmp_path / "b", *args) as b:
        user = f"U-shared-{time.monotonic_ns()}"
        codes = [
            _post(url, {"scenario_id": "lookup-001", "user_id": user}).status_code for url in (a.url, b.url, a.url)
        ]
        assert codes == [202, 202, 429]  # one bucket for both replicas


def test_a_deadline_fails_the_request(tmp_path: Path) -> None:
    with ServerProcess(SUITE, tmp_path / "srv") as server:  # real time: a request takes simulated seconds
        r = _post(server.url, {"scenario_id": "multi-001", "deadline_s": 0.5}, wait=30)
        assert r.status_code == 200
        assert r.json()["state"] == "failed" and r.json()["result"]["error"] == "deadline_exceeded"


def test_metrics_are_the_traces_figures(tmp_path: Path) -> None:
    with ServerProcess(SUITE, tmp_path / "srv", "--time-scale", "50", "--faults", FAULTS) as server:
        ids = [_post(server.url, {"scenario_id": s}).json()["id"] for s in SIDE_EFFECTS]
        done = _finished(server.url, ids)
        assert all(r["state"] == "done" for r in done.values())
        metrics = httpx.get(f"{server.url}/metrics").text
    calls = [e for e in _events(tmp_path / "srv") if e["kind"] == "model_call"]
    assert _metric(metrics, "agentlab_model_tokens_total", direction="input") == sum(c["input_tokens"] for c in calls)
    assert _metric(metrics, "agentlab_model_tokens_total", direction="output") == sum(c["output_tokens"] for c in calls)
    assert _metric(metrics, "agentlab_model_calls_total") == len(calls)
    assert _metric(metrics, "agentlab_cost_usd_total", kind="model") == pytest.approx(sum(c["cost_usd"] for c in calls))
    assert _metric(metrics, "agentlab_request_latency_seconds_count", state="done") == len(SIDE_EFFECTS)


def _running_with_effects(data: Path) -> set[str]:
    """Requests still running whose world already holds an effect the world would let happen twice."""
    with sqlite3.connect(data / "requests.sqlite") as db:
        running = [r[0] for r in db.execute("SELECT id FROM requests WHERE state = 'running'")]
    out = set()
    for request_id in running:
        world = data / "worlds" / f"{request_id}.sqlite"
        if not world.exists():
            continue
        with sqlite3.connect(world) as db:
            tools = {r[0] for r in db.execute("SELECT tool FROM effects WHERE action = 'apply'")}
        if tools & REPEATABLE:
            out.add(request_id)
    return out


@pytest.mark.parametrize(
    "agent_args",
    [
        ["--faults", FAULTS],
        # Journal only (issue 17): the re-run runs on the real-time loop and need not repeat its first run's calls in
        # the same order; the journal recognises an effect the first run applied by what it does, wherever the
        # re-run makes the call (tests/test_journal_rerun.py forces that divergence).
        ["--no-resilience"],
    ],
    ids=["idempotency-keys-and-faults", "journal-only"],
)
def test_a_killed_server_loses_no_request_and_repeats_no_side_effect(tmp_path: Path, agent_args: list[str]) -> None:
    # Two guards stop a re-run request from acting twice: the agent's idempotency keys (resilience on) and
    # each request's world journal, which answers calls that already took effect. The journal-only case runs
    # without faults: without idempotency keys a "timeout after commit" fault duplicates effects by itself.
    data = tmp_path / "srv"
    args = ["--time-scale", "4", "--workers", "6", *agent_args]
    server = ServerProcess(SUITE, data, *args).start()
    try:
        ids = [_post(server.url, {"scenario_id": s}, key=f"k-{s}").json()["id"] for s in SIDE_EFFECTS]
        # Kill once some request has sent its email (or opened its ticket) and is still running (read from
        # the durable stores): its re-run must not send it again.
        for _ in range(1500):
            acted = _running_with_effects(data)
            if acted:
                break
            time.sleep(0.01)
        assert acted, "no request was caught mid-way with a side effect applied"
        server.kill()
        server.start()
        again = [_post(server.url, {"scenario_id": s}, key=f"k-{s}").json()["id"] for s in SIDE_EFFECTS]
        assert again == ids  # the client's retries found their requests
        done = _finished(server.url, ids)
    finally:
        server.stop()
    assert all(r["state"] == "done" for r in done.values()), {i: r["state"] for i, r in done.items()}
    assert any(done[i]["attempts"] == 2 for i in acted)
    for request_id, record in done.items():
        assert record["result"]["duplicate_side_effects"] == 0, request_id
        # The world's own ledger, read directly: every non-idempotent effect once.
        ledger = sqlite3.connect(data / "worlds" / f"{request_id}.sqlite").execute(
            "SELECT tool, args FROM effects WHERE action = 'apply'"
        )
        rows = [row for row in ledger if row[0] in NON_IDEMPOTENT]
        assert len(rows) == len(set(rows)), request_id


def test_serve_bad_input_is_one_line(tmp_path: Path, capsys) -> None:
    assert main(["serve", str(tmp_path / "missing.yaml"), "--data", str(tmp_path / "d")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert main(["serve", SUITE, "--tier-model", "fast=gpt-4o-mini", "--data", str(tmp_path / "d")]) == 2
    assert "--tier-model: only live providers take model names" in capsys.readouterr().err
    assert main(["serve", SUITE, "--workers", "0"]) == 2
    assert not (tmp_path / "d").exists()


def test_tier_models_map_live_tiers_to_real_models(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-used")
    live = RunOptions(
        suite=SUITE,
        llm="openai",
        tier_models={"fast": "gpt-4o-mini", "balanced": "gpt-4o", "powerful": "gpt-4.1"},
        routing="cascade",
    )
    tiers = plan_run(live).tiers
    assert {name: tiers[name].model for name in tiers.order} == {
        "fast": "gpt-4o-mini",
        "balanced": "gpt-4o",
        "powerful": "gpt-4.1",
    }
    partial = live.model_copy(update={"tier_models": {"fast": "gpt-4o-mini"}, "model": "gpt-4o"})
    assert [plan_run(partial).tiers[n].model for n in ("fast", "balanced")] == ["gpt-4o-mini", "gpt-4o"]
    with pytest.raises(InputError, match="this tier has no model"):
        plan_run(live.model_copy(update={"tier_models": {"fast": "gpt-4o-mini"}}))
    with pytest.raises(InputError, match="no such tier"):
        plan_run(live.model_copy(update={"tier_models": {"turbo": "gpt-4o"}}))
    assert "OPENAI_API_KEY" in os.environ


def _decisions(events: list[dict], episode_id: str) -> list[tuple]:
    """What the agent did in one request, without its wall-clock-dependent fields (``t``, latencies)."""
    keep = ("kind", "tool", "args", "ok", "error_type", "tier", "stop_reason", "tool_calls", "text", "success")
    return [tuple(e.get(k) for k in keep) for e in events if e.get("episode_id") == episode_id]


def test_a_keyed_request_runs_the_same_on_a_fresh_server(tmp_path: Path) -> None:
    """A keyed request's id (and so its simulated randomness) comes from its idempotency key: sent in the same order
    to two fresh servers with the same options, the same keyed requests make the same decisions. Unkeyed requests get
    random ids."""
    keyed = [("refund-cond-001", "ticket-77"), ("multi-001", "ticket-78"), ("multi-004", "ticket-79")]
    runs = []
    for name in ("a", "b"):
        with ServerProcess(SUITE, tmp_path / name, "--time-scale", "50") as server:
            answers = [_post(server.url, {"scenario_id": s}, key=k, wait=120).json() for s, k in keyed]
            unkeyed = _post(server.url, {"scenario_id": "multi-001"}, wait=120).json()["id"]
        runs.append((answers, unkeyed, _events(tmp_path / name)))
    (first, unkeyed_a, events_a), (second, unkeyed_b, events_b) = runs
    assert all(r["state"] == "done" for r in first + second)
    assert [r["id"] for r in first] == [r["id"] for r in second]
    assert [r["result"] for r in first] == [r["result"] for r in second]
    for r in first:
        decisions = _decisions(events_a, r["id"])
        assert any(d[0] == "model_call" for d in decisions)
        assert decisions == _decisions(events_b, r["id"])
    assert unkeyed_a != unkeyed_b
