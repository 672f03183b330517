"""Replay and record provider traffic through the real SDKs: cassettes, an httpx2 transport, a library.

``Replayer`` serves (or records) one or more cassettes; ``CassetteLibrary`` keeps one cassette per
episode under ``DIR/<provider>/<suite>/``; ``write_cassette`` writes the one format agentlab records.
"""

from agentlab.llm.replay.cassette import (
    Interaction,
    RecordedRequest,
    RecordedResponse,
    load_cassette,
    read_cassette,
    read_metadata,
)
from agentlab.llm.replay.library import CassetteLibrary, cassette_dir, episode_file
from agentlab.llm.replay.replayer import (
    DEFAULT_BODY_KEYS,
    DEFAULT_MATCH_ON,
    MODES,
    Mode,
    Replayer,
    ReplayMismatch,
    body_digest,
    json_body_matcher,
    normalized_body,
)
from agentlab.llm.replay.writer import SENSITIVE_HEADERS, write_cassette

__all__ = [
    "DEFAULT_BODY_KEYS",
    "DEFAULT_MATCH_ON",
    "MODES",
    "SENSITIVE_HEADERS",
    "CassetteLibrary",
    "Interaction",
    "Mode",
    "RecordedRequest",
    "RecordedResponse",
    "ReplayMismatch",
    "Replayer",
    "body_digest",
    "cassette_dir",
    "episode_file",
    "json_body_matcher",
    "load_cassette",
    "normalized_body",
    "read_cassette",
    "read_metadata",
    "write_cassette",
]
