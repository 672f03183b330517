"""The production agent as a service: admission, a bounded worker pool, durable requests.

The agent is the one ``agentlab run`` builds (:func:`agentlab.runs.assembly.assemble_agent`), and each
request is one episode run by :func:`agentlab.runs.episodes.run_episode` — same model backends, faults,
resilience, permissions and trace — on the server's real-time loop instead of a virtual one.

* **Admission**: a POST is refused with 429 and ``Retry-After`` when the user's token bucket is empty
  (in memory, or in Redis with ``--redis`` so replicas share it) or when ``queue`` requests already
  wait; otherwise it is stored (durably, under its idempotency key) and queued.
* **Workers**: ``workers`` tasks take requests off the queue; each request has a deadline (its
  ``deadline_s``, counted from acceptance) after which it fails as ``deadline_exceeded``.
* **Crash safety**: each request runs against its own world file with a journal of every tool
  call; a server killed mid-request re-queues it on restart, and the journal answers the calls that
  already happened, so no side effect is applied twice (the grade's ``duplicate_side_effects``,
  counted from the world's ledger, says so). The re-run is not a replay: on the real-time loop, with
  memory, breakers and budgets that other requests have moved on since, it may make its calls in
  another order. Rather than freeze all of that per request to force an exact replay, the journal
  recognises a call by the action it performs (:meth:`agentlab.world.store.World.journaled`), so
  it holds with idempotency keys off (``--no-resilience``) too.

Durations in the API (``deadline_s``, ``wait``) are on the agent's clock: with ``--time-scale K``
(the loop runs K times faster than the wall, for load tests of the simulated model) they pass K
times sooner.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from agentlab.components.memory import MemoryManager
from agentlab.errors import InputError
from agentlab.llm.backends import BACKENDS, SERVED
from agentlab.resilience.store import MemoryStore, RedisStore, StateStore
from agentlab.runs.assembly import assemble_agent, simulation_for
from agentlab.runs.episodes import run_episode
from agentlab.runs.options import RunOptions
from agentlab.runs.planning import plan_run
from agentlab.serve.metrics import ServeMetrics
from agentlab.serve.store import RequestStore, StoredRequest
from agentlab.sim.clock import Clock
from agentlab.sim.rng import RngTree
from agentlab.trace.recorder import Recorder

log = logging.getLogger("agentlab.serve")


@dataclass
class ServeConfig:
    opts: RunOptions
    data_dir: Path
    workers: int = 4
    queue: int = 32  # requests waiting for a worker beyond which a POST gets 429
    deadline_s: float = 120.0  # default per-request deadline, agent seconds from acceptance
    user_rate: float | None = 5.0  # requests per second per user (None: no per-user limit)
    user_burst: float = 10.0
    redis: str | None = None
    otel: str | None = None
    time_scale: float = 1.0


class Rejected(Exception):
    """Admission refused the request (429): ``reason`` and seconds to wait."""

    def __init__(self, reason: str, retry_after: float) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class UnknownScenario(LookupError):
    pass


@dataclass
class _Running:
    answers: dict[str, str] = field(default_factory=dict)  # episode id -> the agent's final answer (from the trace)


def _trace_end(path: Path) -> tuple[int, int] | None:
    """Where a killed server's trace ends cleanly: (offset after the last whole line, its seq)."""
    if not path.exists():
        return None
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    last = data[:end].rstrip(b"\n").rsplit(b"\n", 1)[-1]
    return end, (orjson.loads(last)["seq"] if last else 0)


class AgentService:
    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self.metrics = ServeMetrics()
        self.ready = False
        self.recovered = 0
        self._done: dict[str, asyncio.Event] = {}
        self._running = _Running()
        self._workers: list[asyncio.Task[None]] = []
        self._busy = 0
        self._service_s = 1.0  # moving average of a request's wall seconds in a worker (for Retry-After)
        # Everything below is checked now (bad input: one error line before the server listens).
        if not BACKENDS[config.opts.llm].served:  # the CLI offers only these; a Python caller gets the same answer
            served = "|".join(SERVED)
            raise InputError(f"--llm {config.opts.llm}", "", f"agentlab serve cannot use this backend (use {served})")
        planned = plan_run(config.opts)
        self.planned = planned
        self.scenarios = {s.id: s for s in planned.suite.scenarios}
        self.run_id = "serve-" + planned.run_id.removeprefix("run-")
        self.limits: StateStore = RedisStore.from_url(config.redis) if config.redis else MemoryStore()

    # --- life cycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Build the agent on the running loop, re-queue what a killed server left, start the workers."""
        cfg, p = self.config, self.planned
        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        (cfg.data_dir / "worlds").mkdir(exist_ok=True)
        trace_path = cfg.data_dir / "events.jsonl"
        self.recorder = Recorder(self.run_id, trace_path, resume_at=_trace_end(trace_path))
        self.recorder.listeners.append(self.metrics.on_event)
        self.recorder.listeners.append(self._on_event)
        self.otel = None
        if cfg.otel:
            from agentlab.observe.otel import SIM_PROVIDER, LiveExporter
            from agentlab.runs.backends import provider_for

            self.otel = LiveExporter(
                endpoint=cfg.otel, provider_name=provider_for(cfg.opts) or SIM_PROVIDER, run_id=self.run_id
            )
            self.recorder.listeners.append(self.otel)
        rng, clock = RngTree(cfg.opts.seed), Clock()
        self.memory = MemoryManager(cfg.data_dir / "memory.sqlite")
        parts = assemble_agent(
            p,
            self.recorder,
            self.memory,
            cfg.data_dir / "audit.sqlite",
            rng,
            clock,
            store=self.limits if cfg.redis else None,
        )
        self.parts = parts
        self.sim = simulation_for(p, parts, rng, clock)
        self.requests = RequestStore(cfg.data_dir / "requests.sqlite")
        self.queue: asyncio.Queue[str] = asyncio.Queue()  # admission bounds it (a restart may exceed it once)
        for stored in self.requests.unfinished():
            self.queue.put_nowait(stored.id)
            self.recovered += 1
        self.metrics.queue_depth.set(self.queue.qsize())
        self._workers = [asyncio.create_task(self._worker(i), name=f"agentlab-worker-{i}") for i in range(cfg.workers)]
        self.ready = True
        log.info("agentlab serve: %s ready, %d workers, %d recovered", self.run_id, cfg.workers, self.recovered)

    async def stop(self) -> None:
        self.ready = False
        for task in self._workers:
            task.cancel()
        for task in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.parts.audit.close()
        self.memory.close()
        self.sim.template.close()
        self.requests.close()
        if self.parts.stack is not None:
            await self.parts.stack.aclose(save=True)
        self.recorder.close()
        if self.otel is not None:
            self.otel.close()

    # --- admission ----------------------------------------------------------------------------

    def submit(self, key: str | None, body: dict[str, Any]) -> tuple[StoredRequest, bool]:
        """Accept a request (or find the one its idempotency key made); raise :class:`Rejected` for a 429."""
        if body["scenario_id"] not in self.scenarios:
            raise UnknownScenario(body["scenario_id"])
        if key is not None and (earlier := self.requests.by_key(key)) is not None:
            self.requests.create(key, earlier.user_id, body, 0.0, 0.0)  # raises KeyReused if the body differs
            self.metrics.replayed.inc()
            return earlier, False
        user = body.get("user_id") or self.scenarios[body["scenario_id"]].user.id
        cfg = self.config
        if cfg.user_rate is not None:
            wait = self.limits.take(f"serve:user:{user}", cfg.user_burst, cfg.user_rate, time.time())
            if wait > 0:
                self.metrics.rejected.labels("rate_limited").inc()
                raise Rejected(f"user {user} is over {cfg.user_rate:g} requests/s", wait)
        if self.queue.qsize() >= cfg.queue:
            self.metrics.rejected.labels("queue_full").inc()
            drain = self.queue.qsize() * self._service_s / max(1, cfg.workers)
            raise Rejected(f"the queue is full ({cfg.queue} waiting)", drain)
        now = time.time()
        deadline_s = float(body.get("deadline_s") or cfg.deadline_s)
        stored, created = self.requests.create(key, user, body, now, now + deadline_s / cfg.time_scale)
        if created:
            self.metrics.admitted.inc()
            self.queue.put_nowait(stored.id)
            self.metrics.queue_depth.set(self.queue.qsize())
        return stored, created

    async def wait(self, request_id: str, seconds: float) -> StoredRequest | None:
        """The request once it has finished, or as it is after ``seconds`` (agent clock)."""
        stored = self.requests.get(request_id)
        if stored is None or stored.state in ("done", "failed") or seconds <= 0:
            return stored
        event = self._done.setdefault(request_id, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await event.wait()
        return self.requests.get(request_id)

    def retry_after(self) -> int:
        queued = self.queue.qsize() if self.ready else 0
        return max(1, math.ceil(queued * self._service_s / max(1, self.config.workers)))

    @property
    def accepting(self) -> bool:
        return self.ready and self.queue.qsize() < self.config.queue

    # --- workers ------------------------------------------------------------------------------

    def _on_event(self, event: Any) -> None:
        if event.kind == "final_response":
            self._running.answers[event.episode_id] = event.text

    async def _worker(self, index: int) -> None:
        while True:
            request_id = await self.queue.get()
            self.metrics.queue_depth.set(self.queue.qsize())
            stored = self.requests.get(request_id)
            if stored is None or stored.state in ("done", "failed"):
                continue
            self._busy += 1
            self.metrics.busy.set(self._busy)
            started = time.time()
            try:
                await self._run(stored)
            except asyncio.CancelledError:
                raise  # the server is stopping: the request stays 'running' and runs again on restart
            except Exception:  # a bug must not kill the worker: the request fails, the worker goes on
                log.exception("request %s failed", request_id)
                self._finish(stored, "failed", {"error": "internal_error"})
            finally:
                self._busy -= 1
                self.metrics.busy.set(self._busy)
                self._service_s = 0.8 * self._service_s + 0.2 * (time.time() - started)

    async def _run(self, stored: StoredRequest) -> None:
        cfg = self.config
        remaining = (stored.deadline_wall - time.time()) * cfg.time_scale
        if remaining <= 0:
            self._finish(stored, "failed", {"error": "deadline_exceeded", "where": "queue"})
            return
        attempt = self.requests.start(stored.id)
        scenario = self.scenarios[stored.body["scenario_id"]]
        try:
            async with asyncio.timeout(remaining):
                graded = await run_episode(
                    self.sim,
                    scenario,
                    0,
                    episode_id=stored.id,
                    world_path=cfg.data_dir / "worlds" / f"{stored.id}.sqlite",
                    user_id=stored.user_id,
                )
        except TimeoutError:
            if self.otel is not None:
                self.otel.end_episode(stored.id)
            self._finish(stored, "failed", {"error": "deadline_exceeded", "where": "agent", "attempt": attempt})
            return
        finally:
            self._after_episode(stored.id)
        self._finish(
            stored,
            "done",
            {
                "status": graded.status,
                "success": graded.success,
                "answer": self._running.answers.pop(stored.id, ""),
                "duplicate_side_effects": graded.duplicate_side_effects,
                "effects": graded.effects,
                "attempt": attempt,
            },
        )

    def _after_episode(self, episode_id: str) -> None:
        if self.parts.ledger is not None:
            self.parts.ledger.end_session(episode_id)
        if self.parts.stack is not None:
            self.parts.stack.end_episode(episode_id)
        self.parts.audit.flush()
        self.recorder.flush()

    def _finish(self, stored: StoredRequest, state: str, result: dict[str, Any]) -> None:
        self.requests.finish(stored.id, state, result, time.time())
        self.metrics.finished.labels(state).inc()
        self.metrics.latency.labels(state).observe(max(0.0, time.time() - stored.created_wall))
        event = self._done.pop(stored.id, None)
        if event is not None:
            event.set()
