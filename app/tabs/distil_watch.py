"""The Distil tab's progress panel: which run is watched, and what it shows of it (status,
progress, charts, log, spec, the results card, Resume / Edit and relaunch), by name."""

from __future__ import annotations

from typing import Any

import gradio as gr

from app.components import Components
from app.context import AppContext
from app.helpers import TERMINAL_STATES, latest_run_id, model_choices, run_choices
from app.plots import training_charts
from app.progress import progress_html, resume_helps, status_markdown
from app.results import results_card
from core.access import Caller
from core.runs import Run
from core.specs import BUNDLED_TEACHER

POLL_S = 2.0
PRIVATE = {"api_visibility": "private"}


def watch(run_id: str | None, ctx: AppContext, caller: Caller) -> dict[str, Any]:
    """Everything the watch panel shows about one run, by component name, read from its
    folder: status, progress, charts, log, spec, the results card, which of Resume / Edit
    and relaunch apply, and whether the timer polls."""
    shown = {"status": "", "progress": "", "loss_plot": None, "val_plot": None, "log": "",
             "spec": None, "results": "", "resume_button": gr.Button(visible=False),
             "edit_button": gr.Button(visible=False), "timer": gr.Timer(active=False)}
    if not run_id:
        return {**shown, "status": "No run yet: **launch the default job** above, or set up "
                                   "your own."}
    try:
        status = ctx.actions.status(run_id, caller)
        spec = ctx.actions.spec(run_id, caller)
    except ValueError as error:
        return {**shown, "status": f"**Error:** {error}"}
    run = Run(ctx.runs_dir / run_id)
    state = status.get("state")
    logs = "\n".join(status.get("log_tail", []))
    if state == "failed" and status.get("error"):
        logs += f"\nerror: {status['error']}"
    card = (results_card(run.metrics, run.predictions(), (run.timings() or [None])[-1])
            if state == "done" else "")
    mine = bool(status.get("mine"))
    loss_plot, val_plot = training_charts(run)
    return {"status": status_markdown(run_id, status), "progress": progress_html(status, spec),
            "loss_plot": loss_plot, "val_plot": val_plot, "log": logs.strip(), "spec": spec,
            "results": card, "resume_button": gr.Button(visible=mine and resume_helps(status)),
            "edit_button": gr.Button(
                visible=state == "failed" and not resume_helps(status)),
            "timer": gr.Timer(active=state not in TERMINAL_STATES)}


def build_progress_panel() -> tuple[Components, Components]:
    """The progress panel's layout (call inside a ``gr.Tab``).

    Returns:
        ``(controls, shown)``: the run picker and buttons by name, and the components
        :func:`watch` fills, by the names it returns.
    """
    controls, shown = Components(), Components()
    gr.Markdown("### Progress", elem_id="progress-heading")
    with gr.Row():
        controls["run_picker"] = gr.Dropdown(
            [], label="Run", scale=4, elem_id="watch-run",
            info="the run folder is the truth: any browser sees the same")
        controls["refresh_button"] = gr.Button("↻ Refresh", scale=1)
        controls["cancel_button"] = gr.Button("■ Cancel", variant="stop", scale=1,
                                              elem_id="cancel")
        shown["resume_button"] = gr.Button("▶ Resume", scale=1, elem_id="resume",
                                           visible=False)
        shown["edit_button"] = gr.Button("✎ Edit and relaunch", scale=1,
                                         elem_id="edit-relaunch", visible=False)
    shown["status"] = gr.Markdown(elem_id="run-status")
    shown["progress"] = gr.HTML(elem_id="run-progress")
    shown["results"] = gr.Markdown(elem_id="results-card")
    with gr.Row():
        shown["loss_plot"] = gr.Plot(show_label=False, elem_id="loss-plot")
        shown["val_plot"] = gr.Plot(show_label=False, elem_id="validation-plot")
    shown["log"] = gr.Textbox(label="Log", lines=6, max_lines=12, interactive=False,
                              elem_id="run-log")
    with gr.Accordion("Spec of this run", open=False):
        shown["spec"] = gr.JSON()
    shown["timer"] = gr.Timer(POLL_S, active=False)
    return controls, shown


class Watcher:
    """The panel's callbacks: each returns updates keyed by component (``ui``: every
    component of the tab by name; ``shown``: those :func:`watch` fills)."""

    def __init__(self, ui: Components, shown: Components, ctx: AppContext) -> None:
        self.ui, self.shown, self.ctx = ui, shown, ctx
        # What follows an action: the run picker and the whole panel.
        self.after = [ui["run_picker"], *shown.pick()]

    def on_watch(self, run_id: str | None, request: gr.Request) -> dict[Any, Any]:
        """The panel for ``run_id``."""
        return self.shown.write(watch(run_id, self.ctx, self.ctx.caller(request)))

    def watched(self, run_id: str, request: gr.Request) -> dict[Any, Any]:
        """The picker on ``run_id`` (its choices refreshed) and the panel for it."""
        runs = self.ctx.actions.visible_runs(self.ctx.caller(request))
        return {self.ui["run_picker"]: gr.Dropdown(choices=run_choices(runs), value=run_id),
                **self.on_watch(run_id, request)}

    def watched_if(self, run_id: str | None, request: gr.Request) -> dict[Any, Any]:
        """:meth:`watched` when an action gave a run; else nothing changes."""
        if not run_id:
            return {component: gr.update() for component in self.after}
        return self.watched(run_id, request)

    def refresh(self, teacher: str | None, current: str | None, request: gr.Request
                ) -> dict[Any, Any]:
        """The teacher choices, the run choices (keeping the watched run) and the panel."""
        runs = self.ctx.actions.visible_runs(self.ctx.caller(request))
        choices = run_choices(runs)
        known = {value for _, value in choices}
        run_id = current if current in known else latest_run_id(runs)
        teachers = [BUNDLED_TEACHER] + model_choices(runs)
        return {**self.ui.write({
            "teacher": gr.Dropdown(choices=teachers, value=teacher or BUNDLED_TEACHER),
            "run_picker": gr.Dropdown(choices=choices, value=run_id)}),
            **self.on_watch(run_id, request)}

    def wire(self, ready: Any) -> None:
        """Picking a run, the poll timer, Refresh and the page load update the panel."""
        picker, outputs = self.ui["run_picker"], self.shown.pick()
        picker.input(self.on_watch, picker, outputs, **PRIVATE)
        self.shown["timer"].tick(self.on_watch, picker, outputs, show_progress="hidden",
                                 concurrency_limit=None, **PRIVATE)
        refreshed = [self.ui["teacher"], picker, *outputs]
        self.ui["refresh_button"].click(self.refresh, [self.ui["teacher"], picker], refreshed,
                                        **PRIVATE)
        ready.then(self.refresh, [self.ui["teacher"], picker], refreshed, **PRIVATE)
