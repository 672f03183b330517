"""Replay recorded provider traffic through the real SDKs: a cassette reader and an httpx2 transport."""

from agentlab.llm.replay.cassette import Interaction, RecordedRequest, RecordedResponse, load_cassette
from agentlab.llm.replay.replayer import (
    DEFAULT_BODY_KEYS,
    DEFAULT_MATCH_ON,
    Replayer,
    ReplayMismatch,
    body_digest,
    json_body_matcher,
    normalized_body,
)

__all__ = [
    "DEFAULT_BODY_KEYS",
    "DEFAULT_MATCH_ON",
    "Interaction",
    "RecordedRequest",
    "RecordedResponse",
    "ReplayMismatch",
    "Replayer",
    "body_digest",
    "json_body_matcher",
    "load_cassette",
    "normalized_body",
]
