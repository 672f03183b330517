"""A run viewer for notebooks that needs no server: pick an episode, read its request, answer, tool calls, model
calls, faults, breaker transitions and timeline on simulated time (:mod:`agentlab.analysis.episode`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ipywidgets as widgets
from IPython.display import HTML

from agentlab.analysis.episode import episode_html, episode_view
from agentlab.analysis.frames import Run, load_run

STYLE = (
    "<style>.episode-view table{border-collapse:collapse;font-size:12px}"
    ".episode-view th,.episode-view td{padding:2px 6px;border-bottom:1px solid #eee;text-align:left}"
    ".episode-view .muted{color:#667}</style>"
)


def show_episode(run: Run | str | Path, episode_id: str) -> HTML:
    """One episode as HTML (``display`` it, or leave it as a cell's last line)."""
    run = run if isinstance(run, Run) else load_run(run)
    return HTML(STYLE + episode_html(episode_view(run, episode_id)))


class RunViewer:
    """A Dropdown of the run's episodes (failures first, marked ✗) over the chosen episode's HTML.

    The HTML is an ``ipywidgets.HTML`` value, so the viewer works in JupyterLab, and :meth:`select` changes the
    episode from code (as picking it from the list does)."""

    def __init__(self, run: Run | str | Path, episode_id: str | None = None) -> None:
        self.run = run if isinstance(run, Run) else load_run(run)
        eps = self.run.episodes.sort_values(["success", "episode_id"], kind="stable")
        options = [(f"{'✓' if ok else '✗'} {ep}", ep) for ep, ok in zip(eps["episode_id"], eps["success"], strict=True)]
        self.dropdown = widgets.Dropdown(options=options, description="episode", layout={"width": "32em"})
        self.html = widgets.HTML()
        self.dropdown.observe(lambda change: self._show(change["new"]), names="value")
        if episode_id is not None:
            self.dropdown.value = episode_id
        self._show(self.dropdown.value)
        self.widget = widgets.VBox([self.dropdown, self.html])

    def _show(self, episode_id: str | None) -> None:
        self.html.value = "" if episode_id is None else STYLE + episode_html(episode_view(self.run, episode_id))

    def select(self, episode_id: str) -> None:
        self.dropdown.value = episode_id

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)
