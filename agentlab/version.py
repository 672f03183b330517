"""The package version, on its own at the bottom of the layers.

Run ids, run.json, sweep results, the report and OTel resources all record it; they import it from here rather
than from the ``agentlab`` package, whose ``__init__`` is the top-level façade (it reaches up to the sweeps).
"""

__version__ = "0.1.0"
