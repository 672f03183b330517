"""Notebook-only helpers built on ipywidgets (the ``notebooks`` extra): a person's approvals and a run viewer.

Kept apart from :mod:`agentlab.analysis` so that the analysis (and ``agentlab report``) never imports IPython or
ipywidgets; the HTML these widgets show is built there (:mod:`agentlab.analysis.episode`).
"""
