"""The SDK path of a run: the agent's model calls through a real provider SDK and agentlab's transports.

``--llm sim`` calls the simulated model in process. Every other backend goes through the real
``openai`` or ``anthropic`` SDK, built here, layer by layer (top to bottom)::

    adapter       OpenAIChatModel / AnthropicMessagesModel (metadata_headers=True)
    SDK client    AsyncOpenAI / AsyncAnthropic: max_retries = --sdk-retries, back-off jitter seeded
    faults        FaultyTransport, if the fault plan targets providers (HTTP-layer faults)
    cassettes     CassetteLibrary: replay from, or record into, DIR/<provider>/<suite>/<episode>.yaml
    base          SimulatedEndpoint (sim-*) | LiveTransport (openai, anthropic) | none (replay)

Faults sit above the cassettes, so a recording holds the provider's behaviour and the fault plan
stays a separate, replayable input. The adapters always send the ``x-agentlab-*`` headers here —
the endpoint, the library and the fault transport all need the episode — and the live transport
strips them before a request leaves the process, so a real provider never sees them.

Determinism: the SDKs' own back-off jitter comes from the global ``random`` module; the clients
built here draw it instead from an RNG seeded by (run seed, episode), so a run whose SDK retries
without a ``retry-after`` still gives byte-identical traces. That overrides one private SDK method,
``_calculate_retry_timeout``, keeping the SDK's formula (0.5 s doubling to 8 s, minus up to 25 %)
and its handling of server-directed delays; a test pins the override to the installed SDKs.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import openai

from agentlab.errors import InputError, ModelError
from agentlab.faults.injector import FaultInjector
from agentlab.llm.backends import BACKENDS, PROVIDERS, BackendName, Provider, provider_of
from agentlab.llm.providers import AnthropicMessagesModel, OpenAIChatModel
from agentlab.llm.replay.library import CassetteLibrary, cassette_dir
from agentlab.llm.replay.replayer import Mode, ReplayMismatch
from agentlab.llm.tiers import TierTable
from agentlab.llm.types import ModelClient, ModelRequest, ModelResponse
from agentlab.llm.wire.endpoint import SimulatedEndpoint
from agentlab.llm.wire.headers import EPISODE_HEADER, METADATA_HEADERS

BASE_URLS: dict[str, str] = {"openai": "https://api.openai.com/v1", "anthropic": "https://api.anthropic.com"}
SIM_ENDPOINT = "agentlab-sim-endpoint"  # ``recorded_from`` of cassettes recorded from the simulated endpoint
OFFLINE_KEY = "agentlab-offline"  # the SDKs insist on a key; offline backends never check it


def sdk_provider(backend: str, replay_provider: str | None = None) -> Provider:
    """The provider (and so the SDK and wire format) an SDK backend uses; ValueError for any other backend."""
    entry = BACKENDS.get(backend)
    if entry is None or not entry.sdk:
        raise ValueError(f"{backend!r} is not an SDK backend")
    provider = provider_of(backend, replay_provider)
    if provider is None:
        raise ValueError(f"{backend} needs a provider: {' or '.join(PROVIDERS)}")
    return provider


# --- the SDK clients, with reproducible back-off --------------------------------------------------


class _SeededBackoff:
    """Mixin for an SDK client: the back-off jitter of its retries drawn from a seeded RNG per episode."""

    _agentlab_seed: int = 0
    _agentlab_max_retry_after: float = math.inf
    _agentlab_rngs: dict[str, random.Random]
    _agentlab_sdk_class: str = ""

    @property
    def user_agent(self) -> str:
        """The SDK's own user agent (it names the client class; ours must not show)."""
        return f"{self._agentlab_sdk_class}/Python {self._version}"  # type: ignore[attr-defined]

    def _agentlab_rng(self, options: Any) -> random.Random:
        headers = getattr(options, "headers", None)
        episode = headers.get(EPISODE_HEADER, "") if isinstance(headers, Mapping) else ""
        rng = self._agentlab_rngs.get(episode)
        if rng is None:
            rng = self._agentlab_rngs[episode] = random.Random(f"{self._agentlab_seed}|sdk-backoff|{episode}")
        return rng

    def _calculate_retry_timeout(self, remaining_retries: int, options: Any, response_headers: Any = None) -> float:
        retry_after = self._parse_retry_after_header(response_headers)  # type: ignore[attr-defined]
        if retry_after is not None and 0 < retry_after <= self._agentlab_max_retry_after:
            # The server said how long to wait: the SDK's own branch, which draws nothing.
            return super()._calculate_retry_timeout(remaining_retries, options, response_headers)  # type: ignore[misc]
        max_retries = options.get_max_retries(self.max_retries)  # type: ignore[attr-defined]
        retries_done = min(max_retries - remaining_retries, 1000)
        delay = min(0.5 * 2.0**retries_done, 8.0)  # the SDKs' INITIAL_RETRY_DELAY, MAX_RETRY_DELAY
        return delay * (1 - 0.25 * self._agentlab_rng(options).random())


class SeededAsyncOpenAI(_SeededBackoff, openai.AsyncOpenAI):
    """``openai.AsyncOpenAI`` whose back-off jitter is reproducible (see the module docstring)."""

    _agentlab_max_retry_after = 120.0  # openai's MAX_RETRY_AFTER_DELAY: beyond it the SDK jitters
    _agentlab_sdk_class = "AsyncOpenAI"

    def __init__(self, *, jitter_seed: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._agentlab_seed, self._agentlab_rngs = jitter_seed, {}


class SeededAsyncAnthropic(_SeededBackoff, anthropic.AsyncAnthropic):
    """``anthropic.AsyncAnthropic`` whose back-off jitter is reproducible (see the module docstring)."""

    _agentlab_sdk_class = "AsyncAnthropic"

    def __init__(self, *, jitter_seed: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._agentlab_seed, self._agentlab_rngs = jitter_seed, {}

    def _should_retry_exception(self, err: BaseException) -> tuple[bool, Any]:
        # The SDK wraps any transport exception as a connection error and retries it. A replay miss is not a
        # flaky connection: the run has left its recording, and asking the cassettes again cannot help.
        if _replay_miss(err) is not None:
            return False, None
        return super()._should_retry_exception(err)  # type: ignore[misc]


def sdk_model(
    provider: Provider,
    transport: httpx2.AsyncBaseTransport,
    *,
    max_retries: int = 2,
    stream: bool = False,
    metadata_headers: bool = False,
    api_key: str = OFFLINE_KEY,
    base_url: str | None = None,
    jitter_seed: int = 0,
) -> OpenAIChatModel | AnthropicMessagesModel:
    """A provider adapter over the real SDK, talking to ``transport``.

    ``metadata_headers`` is off by default, as on the adapters: turn it on only over agentlab's own
    transports (simulated endpoint, cassettes, HTTP faults) or :class:`LiveTransport`, which strips
    the headers before the network.
    """
    http = httpx2.AsyncClient(transport=transport)
    url = base_url or BASE_URLS[provider]
    if provider == "openai":
        client = SeededAsyncOpenAI(
            api_key=api_key, base_url=url, http_client=http, max_retries=max_retries, jitter_seed=jitter_seed
        )
        return OpenAIChatModel(client, stream=stream, metadata_headers=metadata_headers)
    aclient = SeededAsyncAnthropic(
        api_key=api_key, base_url=url, http_client=http, max_retries=max_retries, jitter_seed=jitter_seed
    )
    return AnthropicMessagesModel(aclient, stream=stream, metadata_headers=metadata_headers)


# --- transports ------------------------------------------------------------------------------------


class LiveTransport(httpx2.AsyncBaseTransport):
    """The network (``httpx2.AsyncHTTPTransport``), minus agentlab's own ``x-agentlab-*`` headers."""

    def __init__(self, inner: httpx2.AsyncBaseTransport | None = None) -> None:
        self.inner = inner or httpx2.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        for header in METADATA_HEADERS.values():
            if header in request.headers:
                del request.headers[header]
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


class SurfaceReplayMismatch:
    """A ModelClient wrapper: a replay miss (or a broken cassette) ends the run instead of passing for a
    provider error.

    The anthropic SDK wraps any transport exception as a connection error (:class:`SeededAsyncAnthropic`
    at least stops it retrying a miss), which the agent would then treat as a flaky provider and route
    around. A cassette that does not match means the run diverged from the recording: that must stop
    the run, with the miss's message.
    """

    def __init__(self, inner: ModelClient) -> None:
        self.inner = inner

    async def complete(self, request: ModelRequest) -> ModelResponse:
        try:
            return await self.inner.complete(request)
        except ModelError as err:
            miss = _replay_miss(err)
            if miss is not None:
                raise miss from None
            raise


def _replay_miss(err: BaseException) -> ReplayMismatch | InputError | None:
    """The ReplayMismatch behind ``err``, if a replay miss is what it wraps — or the InputError, if the
    cassette it would have been served from is broken (a truncated body): either ends the run."""
    seen: set[int] = set()
    cause: BaseException | None = err
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, (ReplayMismatch, InputError)):
            return cause
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return None


@dataclass
class SdkStack:
    """The model client of an SDK-backed run and the transports under it."""

    model: ModelClient
    adapter: OpenAIChatModel | AnthropicMessagesModel
    provider: Provider
    library: CassetteLibrary | None = None

    def end_episode(self, episode_id: str) -> None:
        """The episode is over: save its recording, release its cassette and its back-off RNG."""
        if self.library is not None:
            self.library.end_episode(episode_id)
        getattr(self.adapter.client, "_agentlab_rngs", {}).pop(episode_id, None)

    async def aclose(self, *, save: bool = True) -> None:
        """Close the SDK client; with ``save``, end (and save) every episode still open."""
        if self.library is not None and save:
            self.library.close()
        await self.adapter.client.close()


def build_sdk_stack(
    backend: BackendName,
    *,
    tiers: TierTable,
    suite: str,
    sim_model: ModelClient | None = None,
    replay_provider: Provider | None = None,
    cassettes: str | Path | None = None,
    record: str | Path | None = None,
    record_mode: Mode = "record",
    sdk_retries: int = 2,
    stream: bool = False,
    injector: FaultInjector | None = None,
    trace_for: Callable[[str], Any] | None = None,
    seed: int = 0,
    api_key: str | None = None,
) -> SdkStack:
    """Assemble the layers for ``backend`` (see the module docstring)."""
    provider = sdk_provider(backend, replay_provider)
    kind = BACKENDS[backend].kind
    base: httpx2.AsyncBaseTransport | None
    if kind == "endpoint":
        if sim_model is None:
            raise ValueError(f"{backend} needs the simulated model to serve")
        base = SimulatedEndpoint(sim_model, tiers)
        recorded_from = SIM_ENDPOINT
    elif kind == "cassettes":
        base, recorded_from = None, ""
    else:
        base, recorded_from = LiveTransport(), "live"
    library: CassetteLibrary | None = None
    transport: httpx2.AsyncBaseTransport | None = base
    if kind == "cassettes":
        if cassettes is None:
            raise ValueError("replay needs a cassettes directory")
        library = CassetteLibrary(cassette_dir(cassettes, provider, suite), mode="replay")
        transport = library
    elif record is not None:
        metadata = {
            "recorded_from": recorded_from,
            "recorded_by": "agentlab",
            "provider": provider,
            "base_url": BASE_URLS[provider],
            "suite": suite,
            "format": "stock vcrpy YAML v1; one cassette per episode; credentials stripped",
        }
        directory = cassette_dir(record, provider, suite)
        library = CassetteLibrary(directory, mode=record_mode, inner=base, metadata=metadata)
        transport = library
    assert transport is not None
    if injector is not None and injector.has_provider_faults:
        from agentlab.faults.http import FaultyTransport

        if trace_for is None:
            raise ValueError("provider faults need trace_for to reach the episode's trace")
        transport = FaultyTransport(transport, injector, provider, trace_for)
    adapter = sdk_model(
        provider,
        transport,
        max_retries=sdk_retries,
        stream=stream,
        metadata_headers=True,  # every base below strips or serves them; none forwards them to a provider
        api_key=api_key or OFFLINE_KEY,
        jitter_seed=seed,
    )
    model: ModelClient = SurfaceReplayMismatch(adapter) if kind == "cassettes" else adapter
    return SdkStack(model=model, adapter=adapter, provider=provider, library=library)
