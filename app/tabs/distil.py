"""Distil tab: choose teacher, data, student and recipe; launch, watch, cancel, resume,
see the results card, edit and relaunch.

Every component is registered by name (:class:`app.components.Components`): the form's
fields by ``forms.build_spec``'s names (``distil_form``), the progress panel by the names
:func:`~app.tabs.distil_watch.watch` fills (``distil_watch``). Callbacks read and write
components by name, so no list of inputs or outputs is matched by position.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import gradio as gr

from app import forms
from app.components import Components
from app.context import AppContext
from app.helpers import parse_int_list, user_errors
from app.progress import form_values
from app.settings import check_training_allowed
from app.tabs.distil_form import build_form, wire_form_helpers
from app.tabs.distil_watch import Watcher, build_progress_panel
from core.access import check_model_ref
from core.specs import BUNDLED_TEACHER, JobSpec

PRIVATE = {"api_visibility": "private"}
# After a launch, bring Progress into view unless the launch was refused.
SCROLL_TO_PROGRESS = (
    "() => { const e = document.querySelector('#action-error');"
    " if (!e || !e.innerText.trim()) document.querySelector('#progress-heading')"
    "?.scrollIntoView({behavior: 'smooth', block: 'start'}); }")
SCROLL_TO_FORM = "() => document.querySelector('#setup')?.scrollIntoView({behavior: 'smooth'})"


def build_distil_tab(ready: Any, ctx: AppContext) -> None:
    """The Distil tab's layout and wiring (call inside a ``gr.Tab``; ``ready`` is the page
    load)."""
    gr.Markdown("Distil a smaller, faster student from a teacher. One click runs the bundled "
                "default: **all-MiniLM-L6-v2** fine-tuned on **BBC News** (5 topics), then a "
                "3-layer student distilled from it, plus a no-teacher baseline (2-5 min on a "
                "2-core CPU).")
    top = Components()
    top["default_button"] = gr.Button("Launch the default job", variant="primary", size="lg",
                                      elem_id="launch-default")
    fields, parts = build_form(ctx)
    # A refused launch says why here, where it happened, and stays until the next action.
    top["action_error"] = gr.Markdown(elem_id="action-error")
    controls, shown = build_progress_panel()
    top["acted_on"] = gr.State()
    ui = top.merged(fields, parts, controls, shown)
    watcher = Watcher(ui, shown, ctx)
    wire_form_helpers(ui, ctx)
    _wire_actions(ui, fields, watcher, ctx)
    watcher.wire(ready)


def _in_panel(action: Any, errors: Any) -> Any:
    """``action`` returning (run id or None, error text): a refused action says why in the
    panel under the form, where it stays until the next action (and in a toast)."""
    @functools.wraps(action)  # Gradio reads the signature (gr.Request) through this
    def run(*args: Any) -> tuple[str | None, str]:
        try:
            return errors(action)(*args), ""
        except gr.Error as error:
            gr.Warning(error.message)
            return None, f"**Not done:** {error.message}"
    return run


def _wire_actions(ui: Components, fields: Components, watcher: Watcher,
                  ctx: AppContext) -> None:
    """Launch (default or the form), Cancel, Resume and Edit and relaunch; the progress
    panel updates only when the action went through."""
    actions, runs_dir = ctx.actions, ctx.runs_dir
    errors = user_errors(public=ctx.public)

    def launch_default(request: gr.Request) -> str:
        check_training_allowed(os.environ)
        run_id = actions.submit(JobSpec(), ctx.caller(request))
        gr.Info(f"Queued the default job as {run_id}")
        return run_id

    def launch(values: dict[Any, Any], request: gr.Request) -> str:
        check_training_allowed(os.environ)
        caller = ctx.caller(request)
        form = fields.read(values)
        form["student_layers"] = parse_int_list(form["student_layers"], "custom layers")
        for key in ("max_train_examples", "max_eval_examples"):
            form[key] = int(form[key]) if form[key] else None
        # The teacher is checked before the form reads its config (the layer presets).
        check_model_ref((form["teacher"] or "").strip() or BUNDLED_TEACHER, caller, runs_dir,
                        "teacher")
        run_id = actions.submit(forms.build_spec(form, runs_dir), caller)
        gr.Info(f"Queued {run_id}")
        return run_id

    def launched(run_id: str | None, request: gr.Request) -> dict[Any, Any]:
        # After a launch the form folds away and Progress comes into view (SCROLL_TO_PROGRESS).
        if not run_id:
            return {ui["setup"]: gr.update(), **watcher.watched_if(None, request)}
        return {ui["setup"]: gr.Accordion(open=False), **watcher.watched(run_id, request)}

    acted = [ui["acted_on"], ui["action_error"]]
    for button, action, inputs in ((ui["default_button"], launch_default, None),
                                   (ui["launch_button"], launch, fields.inputs())):
        # One job per click: the button is disabled until the submission is answered.
        button.click(lambda: gr.Button(interactive=False), None, button, queue=False,
                     **PRIVATE).then(
            _in_panel(action, errors), inputs, acted, **PRIVATE).then(
            lambda: gr.Button(interactive=True), None, button, queue=False, **PRIVATE).then(
            launched, ui["acted_on"], [ui["setup"], *watcher.after], **PRIVATE).then(
            None, js=SCROLL_TO_PROGRESS)
    _wire_run_actions(ui, fields, watcher, ctx)


def _wire_run_actions(ui: Components, fields: Components, watcher: Watcher,
                      ctx: AppContext) -> None:
    """Cancel and Resume act on the watched run; Edit and relaunch puts its spec in the form."""
    actions, runs_dir = ctx.actions, ctx.runs_dir
    errors = user_errors(public=ctx.public)

    def cancel(run_id: str | None, request: gr.Request) -> str:
        if not run_id:
            raise gr.Error("pick a run to cancel")
        state = actions.cancel(run_id, ctx.caller(request))
        gr.Info({"running": f"{run_id}: stopping at its next step (it keeps a checkpoint)",
                 "cancelled": f"{run_id}: cancelled before it started",
                 "interrupted": f"{run_id}: its worker had stopped; marked interrupted"}.get(
                     state, f"{run_id}: {state}"))
        return run_id

    def resume(run_id: str | None, request: gr.Request) -> str:
        if not run_id:
            raise gr.Error("pick a run to resume")
        check_training_allowed(os.environ)
        actions.resume(run_id, ctx.caller(request))
        gr.Info(f"{run_id} queued to resume from its checkpoint")
        return run_id

    def teacher_depth(teacher: str) -> int | None:
        """The teacher's layer count when its config is readable here (else None: the
        form shows the run's layers as custom)."""
        from core.actions import teacher_depth

        try:
            return teacher_depth(teacher, runs_dir)
        except Exception:  # a Hub teacher offline, a deleted run: custom layers it is
            return None

    @errors
    def edit(run_id: str | None, request: gr.Request) -> dict[Any, Any]:
        if not run_id:
            raise gr.Error("pick a run to edit")
        spec = actions.spec(run_id, ctx.caller(request))
        values = form_values(spec, teacher_depth(spec.get("teacher") or BUNDLED_TEACHER))
        return {**fields.write({name: value for name, value in values.items()
                                if value is not None}),
                **ui.write({"setup": gr.Accordion(open=True), "action_error": (
                    f"Settings of `{run_id}` are in the form: fix what failed, then "
                    "**Launch with these settings**.")})}

    picker, acted = ui["run_picker"], [ui["acted_on"], ui["action_error"]]
    for button, action in ((ui["cancel_button"], cancel), (ui["resume_button"], resume)):
        button.click(_in_panel(action, errors), picker, acted, **PRIVATE).then(
            watcher.watched_if, ui["acted_on"], watcher.after, **PRIVATE)
    ui["edit_button"].click(edit, picker, [*fields.pick(), *ui.pick("setup", "action_error")],
                            **PRIVATE).then(None, js=SCROLL_TO_FORM)
