"""Domains: the businesses the agent works in. One public type, :class:`Domain`, and how to load one.

``agentlab.domains.support`` (the Summit Outfitters shop) and ``agentlab.domains.travel`` (a travel desk)
are built in; a user's own domain is a :class:`Domain` value in their package or in a ``.py`` file next to
their suite (``agentlab init DIR`` writes one). A suite names its domain with ``domain:``.
"""

from agentlab.domains.base import Domain, available_domains, claim, default_wrong_call_args, load_domain

__all__ = ["Domain", "available_domains", "claim", "default_wrong_call_args", "load_domain"]
