"""The production agent, laid out in the order a request flows through it.

* :mod:`.system` — :class:`AgentSystem`: the eight components wired into admit → execute → respond;
  the one object a caller constructs.
* :mod:`.episode` — :class:`Episode`: one request in flight (conversation, budget, tier, results)
  and the surface its planner drives (:class:`~agentlab.components.planner.PlannerView`).
* :mod:`.model_calls` — a planner's model call: tier choice, budget downgrade, fallback tiers,
  waiting out open breakers, and each tier call's pricing and trace.
* :mod:`.steps` — a planner's tool step: route, validate, ground, authorize, execute (idempotency,
  sandbox), degrade to a fallback tool, score, and hand the result back to the conversation.
* :mod:`.guarded` — the one guarded attempt both of them make: breaker, rate limit, deadline,
  retries, and the latency bookkeeping around them.
* :mod:`.saga` — undoing an unfinished request's side effects.

The names re-exported here are the package's public surface; import them from ``agentlab.agent``. (The
helper :func:`.guarded.guarded` is not among them: ``agentlab.agent.guarded`` stays the module.)
"""

from agentlab.agent.episode import Episode
from agentlab.agent.saga import rollback
from agentlab.agent.steps import MODEL_MISTAKES, idempotency_key
from agentlab.agent.system import DISCLOSURE, SYSTEM_PROMPT, AgentSystem

__all__ = [
    "DISCLOSURE",
    "MODEL_MISTAKES",
    "SYSTEM_PROMPT",
    "AgentSystem",
    "Episode",
    "idempotency_key",
    "rollback",
]
