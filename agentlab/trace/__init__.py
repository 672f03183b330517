"""The trace: typed events, their recorder, and loading a run back into pandas."""

from agentlab.trace.events import Event
from agentlab.trace.recorder import EpisodeTrace, Recorder

__all__ = ["EpisodeTrace", "Event", "Recorder"]
