"""``agentlab bench --workload replay``: model calls per second through the real SDK stack, replaying.

What one call exercises is exactly the ``--llm replay`` path below the agent: the provider adapter
builds the request, the real ``openai``/``anthropic`` SDK sends it (headers, retry loop, response
parsing), httpx2 hands it to the :class:`~agentlab.llm.replay.library.CassetteLibrary`, vcrpy's
cassette matches it (method, host, path, normalised JSON body) and serves the recorded response,
and the SDK and adapter parse that into a ModelResponse. The agent, tools and trace are left out:
``--workload suite`` measures those.

The requests are the recorded ones, rebuilt as ModelRequests by the simulated endpoint's own parser
(:mod:`agentlab.llm.wire`), so each one must re-serialise to a body that matches its cassette — the
workload checks the wire round trip as it measures. Cassettes are read once, before the clock
starts; each pass rewinds them. Recorded latencies are not slept (``latency=False``): the figure is
the stack's own cost. ``--profile`` adds where the time goes, by layer.
"""

from __future__ import annotations

import cProfile
import pstats
import time
from pathlib import Path
from typing import Any

from agentlab.errors import InputError
from agentlab.llm.replay.cassette import read_cassette
from agentlab.llm.replay.library import CassetteLibrary, cassette_dir
from agentlab.llm.types import ModelRequest
from agentlab.llm.wire import anthropic_format, openai_format
from agentlab.llm.wire.headers import metadata_from_headers
from agentlab.sim.loop import VirtualTimeLoop

# Where a replayed call's time goes: disjoint stages, each the inclusive (cumulative) time of the
# functions named — (path fragment, function name) — as a share of the adapter's ``complete``.
STAGES: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    (
        "SDK: request params transform (TypedDict walk)",
        (("/_utils/_transform.py", "async_maybe_transform"), ("/_utils/_prepare.py", "async_prepare_request_data")),
    ),
    ("SDK: build httpx2 request (headers, JSON body)", (("/_base_client.py", "_build_request"),)),
    (
        "agentlab transport: vcrpy matching",
        (("/vcr/cassette.py", "can_play_response_for"), ("/vcr/cassette.py", "play_response")),
    ),
    (
        "agentlab transport: serving (Replayer, CassetteLibrary)",
        (("/agentlab/llm/replay/replayer.py", "handle_async_request"),),
    ),
    ("httpx2 client send", (("/httpx2/_client.py", "send"),)),
    (
        "SDK: response parsing (JSON to pydantic models)",
        (("/openai/_legacy_response.py", "parse"), ("/anthropic/_response.py", "parse")),
    ),
    (
        "agentlab adapter: conversions",
        (
            ("/agentlab/llm/providers/", "request_params"),
            ("/agentlab/llm/providers/", "from_openai_completion"),
            ("/agentlab/llm/providers/", "from_anthropic_message"),
        ),
    ),
)
# A stage nested in the one after it is subtracted from it (matching is inside serving, inside send).
NESTED = {
    "agentlab transport: serving (Replayer, CassetteLibrary)": "agentlab transport: vcrpy matching",
    "httpx2 client send": "agentlab transport: serving (Replayer, CassetteLibrary)",
}


def recorded_requests(directory: Path) -> list[tuple[str, list[ModelRequest]]]:
    """(episode id, its requests in order) for every cassette in ``directory``, parsed back from the wire."""
    episodes = []
    for path in sorted(directory.glob("*.yaml")):
        interactions, metadata = read_cassette(path)
        requests = []
        for it in interactions:
            body = it.request.json()
            headers = {k.lower(): v for k, v in it.request.headers}
            metadata_ = metadata_from_headers(headers)
            tier_of = {body["model"]: body["model"]}
            if it.request.path.endswith("/chat/completions"):
                requests.append(openai_format.parse_request(body, tier_of, metadata_))
            else:
                requests.append(anthropic_format.parse_request(body, tier_of, metadata_))
        episode = metadata.get("episode_id") or (requests[0].metadata.get("episode_id") if requests else path.stem)
        episodes.append((episode, requests))
    return episodes


def run_replay_bench(cassettes: str, provider: str, suite: str, calls: int) -> dict[str, Any]:
    from agentlab.llm.stack import sdk_model

    directory = cassette_dir(cassettes, provider, suite)
    if not directory.is_dir():
        raise InputError(str(directory), "--cassettes", "no such cassette directory (record one with --record)")
    loaded = time.perf_counter()
    episodes = recorded_requests(directory)
    per_pass = sum(len(r) for _, r in episodes)
    if not per_pass:
        raise InputError(str(directory), "", "no recorded requests")
    library = CassetteLibrary(directory, keep_loaded=True, latency=False)
    for episode, _ in episodes:
        library.replayer(episode)
    load_s = time.perf_counter() - loaded
    model = sdk_model(provider, library, max_retries=0, metadata_headers=True)  # type: ignore[arg-type]
    passes = max(1, -(-calls // per_pass))

    async def replay() -> tuple[int, float]:
        done = 0
        await model.complete(episodes[0][1][0])  # the SDK's one-off platform probe, outside the clock
        library.rewind()
        started = time.perf_counter()
        for _ in range(passes):
            for _, requests in episodes:
                for request in requests:
                    await model.complete(request)
                    done += 1
            library.rewind()
        elapsed = time.perf_counter() - started
        await model.client.close()
        return done, elapsed

    loop = VirtualTimeLoop(allow_blocking=True)
    try:
        done, elapsed = loop.run_until_complete(replay())
    finally:
        loop.close()
    return {
        "workload": "replay",
        "provider": provider,
        "cassettes": len(episodes),
        "calls": done,
        "calls_per_s": round(done / elapsed, 1),
        "ms_per_call": round(1000 * elapsed / done, 3),
        "load_seconds": round(load_s, 3),
        "wall_seconds": round(elapsed, 3),
    }


def layer_breakdown(profiler: cProfile.Profile) -> dict[str, float]:
    """Share (%) of the adapter's ``complete`` time per stage (:data:`STAGES`), from a profile."""
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]

    def cumulative(names: tuple[tuple[str, str], ...]) -> float:
        return sum(
            entry[3]
            for (filename, _, function), entry in stats.items()
            if any(fragment in filename and function == name for fragment, name in names)
        )

    total = cumulative((("/agentlab/llm/providers/", "complete"),)) or 1.0
    raw = {label: cumulative(names) for label, names in STAGES}
    for outer, inner in NESTED.items():
        raw[outer] -= raw[inner] if outer != "httpx2 client send" else raw[inner] + raw[NESTED[inner]]
    raw["SDK: everything else (retry loop, options, auth, headers)"] = total - sum(raw.values())
    return {label: round(100 * value / total, 1) for label, value in raw.items()}


def describe(breakdown: dict[str, float]) -> str:
    return "\n".join(f"{share:5.1f} %  {layer}" for layer, share in breakdown.items())


def main_replay(cassettes: str, provider: str, suite: str, calls: int, profile: bool) -> dict[str, Any]:
    if not profile:
        return run_replay_bench(cassettes, provider, suite, calls)
    profiler = cProfile.Profile()
    result = profiler.runcall(run_replay_bench, cassettes, provider, suite, calls)
    print("where a replayed model call's time goes (profiled, so every stage is slower than measured):")
    print(describe(layer_breakdown(profiler)))
    result["profile_layers_pct"] = layer_breakdown(profiler)
    return result
