"""Analysis: a run's trace as DataFrames, and the summary computed from it."""

from agentlab.analysis.frames import Run, episodes_frame, load_run, read_events
from agentlab.analysis.summary import pass_hat_k, summarize

__all__ = ["Run", "episodes_frame", "load_run", "pass_hat_k", "read_events", "summarize"]
