"""The model backends (``--llm``) and providers, in one table that every other spelling is derived from.

``RunOptions.llm``, the choices and help of ``agentlab run --llm`` and ``agentlab serve --llm``, the checks of
:mod:`agentlab.runs.backends`, the SDK stack (:mod:`agentlab.llm.stack`), provider faults and the OTel provider name
all read :data:`BACKENDS` (tests/test_backends_table.py checks they agree). It lives in the model-vocabulary layer,
with no imports from agentlab, so the SDK stack and the OTel export below the run orchestration can read it too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

Provider = Literal["openai", "anthropic"]
PROVIDERS: tuple[Provider, ...] = get_args(Provider)

# How a backend reaches a model:
#   in-process  the simulated model, called directly (no SDK, no HTTP);
#   endpoint    the provider's real SDK against the simulated endpoint (an httpx transport, no network);
#   cassettes   the real SDK of --provider against recorded cassettes;
#   live        the real SDK against the provider's API (an API key, real network I/O on a real-time loop).
Kind = Literal["in-process", "endpoint", "cassettes", "live"]


@dataclass(frozen=True)
class Backend:
    """One value of ``--llm``."""

    name: str
    kind: Kind
    provider: Provider | None  # whose SDK and wire format (None: in process; replay: the run's --provider)
    served: bool  # whether ``agentlab serve`` offers it (cassettes are per recorded episode, not per request)
    description: str  # the CLI's help for this value

    @property
    def sdk(self) -> bool:
        """Calls go through a provider SDK and its HTTP transport (faults can hit the HTTP layer, --stream works)."""
        return self.kind != "in-process"

    @property
    def live(self) -> bool:
        return self.kind == "live"

    @property
    def makes_requests(self) -> bool:
        """The SDK sends HTTP requests that ``--record`` can record (not in process, not replayed)."""
        return self.kind in ("endpoint", "live")

    @property
    def api_key_env(self) -> str | None:
        """The environment variable holding a live provider's key."""
        return f"{self.provider.upper()}_API_KEY" if self.live and self.provider else None


_TABLE = (
    Backend("sim", "in-process", None, True, "the simulated model in process (default; no SDK, no HTTP)"),
    Backend("sim-openai", "endpoint", "openai", True, "the real openai SDK against the simulated endpoint"),
    Backend("sim-anthropic", "endpoint", "anthropic", True, "the real anthropic SDK against the simulated endpoint"),
    Backend("replay", "cassettes", None, False, "the real SDK of --provider against recorded cassettes (--cassettes)"),
    Backend("openai", "live", "openai", True, "the live OpenAI API (OPENAI_API_KEY, --model)"),
    Backend("anthropic", "live", "anthropic", True, "the live Anthropic API (ANTHROPIC_API_KEY, --model)"),
)
BACKENDS: dict[str, Backend] = {b.name: b for b in _TABLE}

# The names as a type, for annotations and pydantic. A Literal cannot be built from the table for a type checker,
# so it is spelled once more here, and the import fails if the two ever differ.
BackendName = Literal["sim", "sim-openai", "sim-anthropic", "replay", "openai", "anthropic"]
if get_args(BackendName) != tuple(BACKENDS):
    raise AssertionError(f"BackendName {get_args(BackendName)} does not list BACKENDS {tuple(BACKENDS)}")

NAMES: tuple[str, ...] = tuple(BACKENDS)
LIVE: tuple[str, ...] = tuple(b.name for b in _TABLE if b.live)
SERVED: tuple[str, ...] = tuple(b.name for b in _TABLE if b.served)
RECORDING: tuple[str, ...] = tuple(b.name for b in _TABLE if b.makes_requests)
API_KEY_ENV: dict[str, str] = {b.name: b.api_key_env for b in _TABLE if b.api_key_env}


def provider_of(backend: str, replay_provider: str | None = None) -> Provider | None:
    """The provider (so the SDK and wire format) ``backend`` uses: None in process; ``replay_provider`` for
    cassettes (None if it names no provider)."""
    entry = BACKENDS[backend]
    if entry.kind == "cassettes":
        return replay_provider if replay_provider in PROVIDERS else None  # type: ignore[return-value]
    return entry.provider


def help_text(names: tuple[str, ...] = NAMES) -> str:
    """``--llm``'s help: each backend and what it is."""
    return "model backend: " + "; ".join(f"{name}: {BACKENDS[name].description}" for name in names)
