"""Human approval for risky actions: a queue, an approver, and a deadline on the loop's clock.

The Permissions Gate sends an ASK decision here. In simulation a :class:`SimulatedApprover`
answers with a configured policy after a delay (approve, deny, or never — then the deadline
expires); interactively an :class:`InteractiveApprover` asks a person. Every request and decision
is an event, and the gate audits the outcome.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from agentlab.trace.events import ApprovalDecided, ApprovalRequested

Outcome = Literal["approved", "rejected", "expired"]


@dataclass(frozen=True, slots=True)
class ApprovalRequest:
    user_id: str
    tool: str
    args: dict[str, Any]
    reason: str
    call_id: str = ""
    episode_id: str = ""  # which request it belongs to: a decision table (components/decisions.py) is keyed by it


class Approver(Protocol):
    async def decide(self, request: ApprovalRequest) -> bool | None:
        """True to approve, False to reject, None for no answer (the deadline will expire)."""
        ...


class SimulatedApprover:
    """Answers every request the same way after ``delay_s`` of simulated time."""

    def __init__(self, policy: Literal["approve", "deny", "never"] = "approve", delay_s: float = 30.0) -> None:
        self.policy = policy
        self.delay_s = delay_s

    async def decide(self, request: ApprovalRequest) -> bool | None:
        if self.policy == "never":
            await asyncio.Event().wait()  # no answer; the queue's deadline cancels this wait
        await asyncio.sleep(self.delay_s)
        return self.policy == "approve"


class InteractiveApprover:
    """Asks a person on the terminal (for live runs; it blocks a worker thread, not the loop)."""

    async def decide(self, request: ApprovalRequest) -> bool | None:
        prompt = f"Approve {request.tool}({request.args}) for {request.user_id}? {request.reason} [y/N] "
        answer = await asyncio.get_running_loop().run_in_executor(None, input, prompt)
        return answer.strip().lower() in ("y", "yes")


class ApprovalQueue:
    def __init__(self, approver: Approver | None = None, *, deadline_s: float = 300.0) -> None:
        self.approver = approver or SimulatedApprover()
        self.deadline_s = deadline_s

    async def submit(self, request: ApprovalRequest, trace: Any) -> Outcome:
        trace.emit(
            ApprovalRequested(
                tool=request.tool,
                call_id=request.call_id,
                reason=request.reason,
                deadline_s=self.deadline_s,
                user_id=request.user_id,
                args=request.args,
            )
        )
        try:
            async with asyncio.timeout(self.deadline_s):
                answer = await self.approver.decide(request)
        except TimeoutError:
            answer = None
        outcome: Outcome = "expired" if answer is None else ("approved" if answer else "rejected")
        trace.emit(ApprovalDecided(tool=request.tool, call_id=request.call_id, outcome=outcome))
        return outcome
