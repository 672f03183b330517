"""The HTTP API of ``agentlab serve`` (FastAPI on uvicorn).

========================  =====================================================================
``POST /v1/requests``     ``{"scenario_id", "user_id"?, "deadline_s"?}``, header ``Idempotency-Key``;
                          ``?wait=S`` answers when done (or after S agent-seconds). 202 queued,
                          200 finished, 429 + ``Retry-After`` (rate limit or full queue), 422 bad
                          body or a key reused for another body
``GET /v1/requests/{id}`` the request and, once finished, its result
``GET /healthz``          the process is up
``GET /readyz``           the agent is built and the queue has room (503 otherwise)
``GET /metrics``          Prometheus text format
========================  =====================================================================
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Header, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field

from agentlab.serve.service import AgentService, Rejected, UnknownScenario
from agentlab.serve.store import KeyReused


class CreateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scenario_id: str = Field(min_length=1)
    user_id: str | None = Field(default=None, min_length=1)
    deadline_s: float | None = Field(default=None, gt=0)


def create_app(service: AgentService) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    app = FastAPI(title="agentlab", lifespan=lifespan)
    metrics = service.metrics

    @app.middleware("http")
    async def count(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        route = request.scope.get("route")
        metrics.http.labels(getattr(route, "path", "other"), str(response.status_code)).inc()
        return response

    @app.post("/v1/requests")
    async def create(
        body: CreateRequest,
        wait: float = 0.0,
        idempotency_key: str | None = Header(default=None, max_length=200),
    ) -> Response:
        try:
            stored, created = service.submit(idempotency_key, body.model_dump(exclude_none=True))
        except Rejected as exc:
            return JSONResponse(
                {"error": "too_many_requests", "reason": exc.reason},
                status_code=429,
                headers={"Retry-After": str(max(1, math.ceil(exc.retry_after)))},
            )
        except UnknownScenario as exc:
            return JSONResponse({"error": "unknown_scenario", "scenario_id": str(exc)}, status_code=422)
        except KeyReused:
            return JSONResponse(
                {"error": "idempotency_key_reused", "reason": "this key was used for a different request body"},
                status_code=422,
            )
        if wait > 0:
            stored = await service.wait(stored.id, wait) or stored
        finished = stored.state in ("done", "failed")
        headers = {"Location": f"/v1/requests/{stored.id}"}
        if not created:
            headers["Idempotent-Replayed"] = "true"
        return JSONResponse(stored.public(), status_code=200 if finished else 202, headers=headers)

    @app.get("/v1/requests/{request_id}")
    async def get(request_id: str) -> Response:
        stored = service.requests.get(request_id)
        if stored is None:
            return JSONResponse({"error": "not_found"}, status_code=404)
        return JSONResponse(stored.public())

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> Response:
        if service.accepting:
            return JSONResponse({"status": "ready", "queued": service.queue.qsize()})
        return JSONResponse(
            {"status": "not_ready", "started": service.ready},
            status_code=503,
            headers={"Retry-After": str(service.retry_after())},
        )

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


def serve(service: AgentService, host: str, port: int, *, time_scale: float = 1.0) -> None:
    """Run the API on a real-time loop (``time_scale`` > 1: the agent's clock runs that much faster)."""
    import uvicorn

    from agentlab.sim.loop import RealTimeLoop

    # uvicorn's timers run on the loop's clock too: scale them back to wall seconds (else a keep-alive
    # connection would be dropped after 5 / K wall seconds, racing the client's next request on it).
    config = uvicorn.Config(
        create_app(service),
        host=host,
        port=port,
        log_level="warning",
        lifespan="on",
        timeout_keep_alive=round(5 * time_scale),
        timeout_graceful_shutdown=round(10 * time_scale),
    )
    server = uvicorn.Server(config)
    loop = RealTimeLoop(0.0, speed=time_scale)
    try:
        loop.run_until_complete(server.serve())
    finally:
        loop.close()
