"""agentlab: prove that an LLM agent survives production, before 3 AM does.

The package is laid out by architecture:

* :mod:`agentlab.agent` — the production agent, wiring the eight components of
  :mod:`agentlab.components` in one request flow (admit → execute → respond);
* :mod:`agentlab.tools` and :mod:`agentlab.world` — tools and the simulated world they act on;
* :mod:`agentlab.llm` — the model interface, tier profiles and the simulated model;
* :mod:`agentlab.scenarios` — scenario suites;
* :mod:`agentlab.sim` — virtual time, seeded randomness and the suite runner;
* :mod:`agentlab.trace` and :mod:`agentlab.analysis` — events, and the DataFrames and summaries computed from them.

Data flows one way: scenario → agent → events → DataFrame → charts/report.
"""

__version__ = "0.1.0"
