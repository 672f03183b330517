"""One cassette per episode: the layout agentlab runs record into and replay from.

A run's cassettes live in ``DIR/<provider>/<suite>/<episode>.yaml`` — e.g.
``cassettes/openai/support/refund-cond-001_0.yaml`` for episode ``refund-cond-001#0`` (the episode
id with every character outside ``[A-Za-z0-9._-]`` turned into ``_``). Why per episode rather than
per scenario or per run: an episode is the unit a run is made of, so ``--only``, ``--resume`` and
more epochs each need exactly the files they touch; a miss names one small file; and two episodes
of one scenario (different epochs, different draws) never compete for the same recordings.

:class:`CassetteLibrary` is the httpx2 transport that implements the layout: it reads the episode
from the ``x-agentlab-episode`` request header, opens that episode's :class:`Replayer` on first use
(replaying, recording, or both — its ``mode``), and :meth:`end_episode` saves a recording (atomically)
and lets the episode's cassette go, so memory stays flat over long runs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx2

from agentlab.llm.replay.replayer import DEFAULT_BODY_KEYS, Mode, Replayer, ReplayMismatch
from agentlab.llm.wire.headers import EPISODE_HEADER

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
# A run's requests all come from agentlab's own adapters, so ``stream`` is compared too: replaying
# with --stream against cassettes recorded without it is a clear miss, not an undecodable body.
RUN_BODY_KEYS = (*DEFAULT_BODY_KEYS, "stream")


def episode_file(episode_id: str) -> str:
    """The cassette file name of an episode: ``lookup-001#0`` → ``lookup-001_0.yaml``."""
    return _UNSAFE.sub("_", episode_id) + ".yaml"


def cassette_dir(root: str | Path, provider: str, suite: str) -> Path:
    """``root/<provider>/<suite>``: where one provider's cassettes of one suite live."""
    return Path(root) / provider / suite


class CassetteLibrary(httpx2.AsyncBaseTransport):
    """Per-episode cassettes under ``directory``, served (and/or recorded) as one transport.

    ``mode`` is the :class:`Replayer` mode for every episode; ``inner`` is where recording modes
    send what they record; ``metadata`` is written into every recorded cassette (the episode id is
    added). ``keep_loaded=True`` keeps replayed cassettes in memory after their episode, for
    :meth:`rewind` (the benchmark replays the same cassettes many times without re-reading them).
    ``latency`` (on by default): replayed responses take the server time they recorded, on the
    loop's clock, so a replayed run has the recorded run's timeline.
    """

    def __init__(
        self,
        directory: str | Path,
        *,
        mode: Mode = "replay",
        inner: httpx2.AsyncBaseTransport | None = None,
        metadata: Mapping[str, Any] | None = None,
        keep_loaded: bool = False,
        latency: bool = True,
    ) -> None:
        if mode != "replay" and inner is None:
            raise ValueError(f"mode {mode!r} records, so it needs an inner transport to record from")
        self.directory = Path(directory)
        self.mode: Mode = mode
        self.inner = inner
        self.metadata = dict(metadata or {})
        self.keep_loaded = keep_loaded
        self.latency = latency
        self._open: dict[str, Replayer] = {}

    def path_for(self, episode_id: str) -> Path:
        return self.directory / episode_file(episode_id)

    def replayer(self, episode_id: str) -> Replayer:
        """The episode's Replayer, opened on first use."""
        replayer = self._open.get(episode_id)
        if replayer is None:
            path = self.path_for(episode_id)
            if self.mode == "replay" and not path.is_file():
                raise ReplayMismatch(f"no cassette for episode {episode_id}: {path} does not exist")
            replayer = Replayer(
                [path],
                body_keys=RUN_BODY_KEYS,
                mode=self.mode,
                inner=self.inner,
                metadata={**self.metadata, "episode_id": episode_id} if self.mode != "replay" else None,
                latency=self.latency,
            )
            self._open[episode_id] = replayer
        return replayer

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        episode_id = request.headers.get(EPISODE_HEADER)
        if not episode_id:
            raise ReplayMismatch(
                f"{request.method} {request.url.path}: no {EPISODE_HEADER} header, so no episode cassette to use "
                "(the provider adapter needs metadata_headers=True)"
            )
        return await self.replayer(episode_id).handle_async_request(request)

    def end_episode(self, episode_id: str) -> Path | None:
        """The episode is over: save what it recorded (atomically) and close its cassette."""
        replayer = self._open.get(episode_id) if self.keep_loaded else self._open.pop(episode_id, None)
        if replayer is None:
            return None
        if self.mode == "replay":
            return None
        return replayer.save()

    def rewind(self) -> None:
        """Make every loaded cassette playable again from the start (``keep_loaded=True``)."""
        for replayer in self._open.values():
            replayer.rewind()

    def close(self) -> None:
        """End every episode still open (saving its recording)."""
        for episode_id in list(self._open):
            self.end_episode(episode_id)
            self._open.pop(episode_id, None)
