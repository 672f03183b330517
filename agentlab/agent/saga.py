"""The saga: when a request ends unfinished, undo the side effects it already applied.

A request that changed the world (an order cancelled, a refund issued) and then failed would leave
the user with half a job done. The Recovery Handler's ``rollback`` switch makes
:class:`~agentlab.agent.system.AgentSystem` call :func:`rollback` then: each applied side effect is
compensated, newest first, with its tool's registered rollback function; one without a rollback, or
whose compensation fails, is reported (never raised), and the user is told which is which.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentlab.tools.context import ToolContext
from agentlab.trace.events import RolledBack

if TYPE_CHECKING:
    from agentlab.agent.episode import Episode


async def rollback(episode: Episode, reason: str) -> str:
    """Saga compensation: undo the episode's side effects in reverse order; return a sentence for the user."""
    undone, kept = [], []
    for spec, args, result, call_id in reversed(episode.applied):
        if spec.rollback is None:
            episode.trace.emit(
                RolledBack(
                    call_id=call_id,
                    tool=spec.name,
                    compensated=False,
                    reason="no rollback registered: it cannot be undone",
                )
            )
            kept.append(spec.name)
            continue
        ctx = ToolContext(
            world=episode.env,
            call_id=call_id,
            user_id=episode.user.id,
            episode_id=episode.trace.episode_id,
            trace=episode.trace,
        )
        try:
            await spec.rollback(ctx, args, result)
        except Exception as exc:  # a failed compensation is reported, never raised
            episode.trace.emit(
                RolledBack(
                    call_id=call_id,
                    tool=spec.name,
                    compensated=False,
                    reason=f"compensation failed: {type(exc).__name__}: {exc}",
                )
            )
            kept.append(spec.name)
            continue
        episode.trace.emit(RolledBack(call_id=call_id, tool=spec.name, compensated=True, reason=reason))
        undone.append(spec.name)
    parts = []
    if undone:
        parts.append(f"I rolled back what I had done ({', '.join(undone)})")
    if kept:
        parts.append(f"these could not be undone: {', '.join(kept)}")
    return "; ".join(parts) + "." if parts else ""
