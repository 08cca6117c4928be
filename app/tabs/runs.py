"""Runs tab: the leaderboard, a run's details, downloads, export to the Hub, and deletion."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from app.components import Components
from app.context import AppContext
from app.helpers import round_table, run_choices, user_errors
from app.plots import PARAMS_M, training_charts
from app.results import speedup_text
from core.access import Caller
from core.runs import (
    ACCURACY,
    DEVICE,
    LATENCY_P50,
    MACRO_F1,
    PARAMS,
    ROLES,
    SIZE_MB,
    SPEEDUP,
    SPEEDUP_SPREAD,
    THROUGHPUT,
    Run,
    RunState,
    RunTiming,
)

# The leaderboard as shown: (source column, header, digits, width), key columns first; the
# run id, long and the same on a run's rows, comes last. Short headers and fixed widths fit
# 1280 px; the device (e.g. "cpu (AMD EPYC 7B13, 2 threads)") and the run id take shares of
# the table's width ("auto" would size them to their unwrapped text) and wrap.
BOARD = [("role", "role", None, "136px"), (ACCURACY, "accuracy", 4, "92px"),
         (MACRO_F1, "macro-F1", 4, "92px"), (SPEEDUP, "speed-up", 2, "92px"),
         ("accuracy_retained", "retained", 3, "92px"), (LATENCY_P50, "p50 ms", 2, "80px"),
         (THROUGHPUT, "texts/s", 1, "88px"), (SIZE_MB, "MB", 1, "64px"),
         (PARAMS_M, "params M", 2, "96px"), (DEVICE, "device", None, "14%"),
         ("run_id", "run", None, "16%")]
BOARD_PINNED = 2  # role and accuracy stay in view when the table scrolls sideways
BOARD_NOTE = ("Every scored model across runs, best accuracy first (with regression runs "
              "among them the column is **score**: accuracy, or Spearman for a regression); "
              "click a header to sort. "
              "**speed-up**: the run's teacher's p50 latency ÷ this model's (± the spread "
              "across rounds once re-timed); **retained**: "
              "accuracy ÷ the teacher's; **p50 ms**: latency at batch 1, end to end (p95 in "
              "the results CSV); **texts/s**: throughput at large batch; **MB**: size on disk.")
# The runs list: (source column, header); per-role accuracies follow the state.
RUN_COLUMNS = [("name", "name"), ("state", "state")]
RUN_TAIL = [("dataset", "data"), ("recipe", "recipe"), ("teacher", "teacher model"),
            ("stage", "stage"), ("mine", "yours"), ("run_id", "run")]


def leaderboard_table(ctx: AppContext, caller: Caller) -> pd.DataFrame:
    """The caller's leaderboard as shown: key columns first, short headers, rounded,
    parameters in millions, best accuracy first."""
    board = ctx.actions.leaderboard(caller)
    board[PARAMS_M] = pd.to_numeric(board[PARAMS], errors="coerce") / 1e6
    # With a regression among the runs the quality column is each task's main metric
    # (accuracy, or Spearman), headed "score"; otherwise it stays "accuracy".
    mixed = (board["task"] == "regression").any() if len(board) else False
    if mixed:
        board[ACCURACY] = board["score"]
        board["accuracy_retained"] = board["score_retained"]
    board = round_table(board, {source: d for source, _, d, _ in BOARD if d is not None})
    # A re-timed run's speed-up carries its spread across rounds (distillab time).
    spread = pd.to_numeric(board.get(SPEEDUP_SPREAD), errors="coerce")
    board[SPEEDUP] = [
        "" if pd.isna(value) else f"{value:.2f} ±{extra:.2f}" if pd.notna(extra) else
        f"{value:.2f}" for value, extra in zip(board[SPEEDUP], spread, strict=True)]
    board = board.sort_values(ACCURACY, ascending=False, kind="stable", na_position="last")
    board = board.reset_index(drop=True)
    headers = [("score" if mixed and s == ACCURACY else h) for s, h, *_ in BOARD]
    return board[[s for s, *_ in BOARD]].set_axis(headers, axis=1)


def runs_list_table(ctx: AppContext, caller: Caller) -> pd.DataFrame:
    """One row per run the caller sees, newest first: name, state, each role's accuracy
    (rounded like the leaderboard's), then the rest; the run id last."""
    runs = ctx.actions.runs_table(caller)
    accuracies = [c for role in ROLES for c in runs.columns if c == f"{role}_{ACCURACY}"]
    columns = (RUN_COLUMNS + [(c, c.removesuffix(f"_{ACCURACY}").removeprefix("student_") + " acc")
                              for c in accuracies] + RUN_TAIL)
    runs = round_table(runs, dict.fromkeys(accuracies, 4)).iloc[::-1]
    if "mine" in runs.columns and runs["mine"].all():
        runs = runs.drop(columns="mine")  # the caller may change every run: nothing to say
    columns = [(source, header) for source, header in columns if source in runs.columns]
    runs = runs.reset_index(drop=True)
    return runs[[s for s, _ in columns]].set_axis([h for _, h in columns], axis=1)


def newest_done(runs: list[Run]) -> str | None:
    """The newest finished run of ``runs`` (oldest first), else the newest run, else None."""
    for run in reversed(runs):
        if run.status().get("state") == RunState.DONE:
            return run.id
    return runs[-1].id if runs else None


def scored_roles(run: Run) -> list[str]:
    """The run's models with a saved folder or scores (``student_int8`` has scores and int8
    weights but no loadable folder), in the usual role order."""
    present = set(run.models()) | set(run.read_metrics().models)
    return [role for role in ROLES if role in present]


def models_line(run: Run) -> str:
    """The run's models for the details, saying what each int8 one is."""
    saved = run.models()
    names = [role if role in saved else f"{role} (int8 weights: scored here, not loadable "
             "in Compare)" for role in scored_roles(run)]
    return ", ".join(names) or "none yet"


def confusion_table(run: Run, role: str | None) -> pd.DataFrame:
    """A model's confusion matrix: rows are true labels, columns predicted labels."""
    metrics = run.read_metrics()
    names = metrics.label_names or []
    matrix = metrics.model(role or "").confusion_matrix
    if not matrix or not names:
        return pd.DataFrame({"": ["no scores yet"]})
    table = pd.DataFrame(matrix, columns=list(names))
    table.insert(0, "true ↓ predicted →", names)
    return table


def per_class_table(run: Run, role: str | None) -> pd.DataFrame:
    per_class = run.read_metrics().model(role or "").per_class or {}
    rows = [{"label": name, **scores} for name, scores in per_class.items()]
    return round_table(pd.DataFrame(rows), {"precision": 4, "recall": 4, "f1": 4})


def results_files(run: Run) -> list[str]:
    """The run's per-model results and per-example predictions as CSV files to download."""
    folder = Path(tempfile.mkdtemp(prefix="distillab-results-"))
    models = run.read_metrics().models
    if not models:
        raise ValueError(f"run {run.id} has no results yet ({run.status().get('state')})")
    rows = [{"run_id": run.id, "role": role, **m.scalars()} for role, m in models.items()]
    results = folder / f"{run.id}-results.csv"
    pd.DataFrame(rows).to_csv(results, index=False)
    files = [str(results)]
    predictions = run.predictions()
    if len(predictions):
        path = folder / f"{run.id}-predictions.csv"
        predictions.drop(columns=[c for c in predictions.columns if c.endswith("_probs")]
                         ).to_csv(path, index=False)
        files.append(str(path))
    return files


PRIVATE = {"api_visibility": "private"}


class RunsController:
    """The Runs tab's callbacks, testable without a browser.

    Each method takes its inputs' values and the request (whose caller it acts as) and
    returns plain values: tables, text, and ``gr.update`` dicts where a component changes
    more than its value. Errors are raised as they come (``ValueError``s from ``core``,
    ``gr.Error`` for a missing choice); the tab wraps the methods in :func:`user_errors`.
    """

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.actions = ctx.actions

    def refresh(self, current: str | None, request: gr.Request) -> tuple[Any, ...]:
        """The leaderboard, the runs list and the run picker (kept on ``current`` while it
        is still visible, else on the newest finished run: a newer failed one has nothing
        to show)."""
        caller = self.ctx.caller(request)
        runs = self.actions.visible_runs(caller)
        run_id = current if current in {r.id for r in runs} else newest_done(runs)
        return (leaderboard_table(self.ctx, caller), runs_list_table(self.ctx, caller),
                gr.update(choices=run_choices(runs), value=run_id))

    def show(self, run_id: str | None, role: str | None, request: gr.Request
             ) -> tuple[Any, ...]:
        """A run's details: summary text, training curves, spec, the model's confusion
        matrix and per-class scores, and the model picker (its scored roles)."""
        if not run_id:
            empty = pd.DataFrame()
            return "No runs yet.", None, None, empty, empty, gr.update()
        caller = self.ctx.caller(request)
        status = self.actions.status(run_id, caller)
        run = Run(self.actions.runs_dir / run_id)
        roles = scored_roles(run) or list(ROLES)
        role = role if role in roles else ("student" if "student" in roles else roles[0])
        text = (f"**{run.id}** · {status.get('state')} · models: {models_line(run)}  \n"
                f"{run.read_metrics().dataset or ''}")
        if not status.get("mine"):
            text += "  \nA shared example: read-only."
        if status.get("error"):
            text += f"  \n**Error:** {status['error']}"
        return (text, training_charts(run)[1], self.actions.spec(run_id, caller),
                confusion_table(run, role), per_class_table(run, role),
                gr.update(choices=roles, value=role))

    def download_results(self, run_id: str | None, request: gr.Request) -> dict[str, Any]:
        """The run's results and predictions as CSV files, shown in Downloads."""
        self.actions.status(run_id or "", self.ctx.caller(request))  # a run the caller reads
        return gr.update(value=results_files(Run(self.actions.runs_dir / (run_id or ""))),
                         visible=True)

    def download_model(self, run_id: str | None, role: str | None, request: gr.Request
                       ) -> dict[str, Any]:
        """A zip of the chosen model with its model card, shown in Downloads."""
        if not run_id or not role:
            raise gr.Error("pick a run and a model")
        zipped = self.actions.zip_model(run_id, role, self.ctx.caller(request))
        return gr.update(value=[str(zipped)], visible=True)

    def push_model(self, run_id: str | None, role: str | None, repo: str, typed_token: str,
                   private: bool, request: gr.Request) -> str:
        """Push the chosen model to the Hub; says where it went."""
        if not run_id or not role:
            raise gr.Error("pick a run and a model")
        url = self.actions.export(run_id, role, repo or "", typed_token, bool(private),
                                  self.ctx.caller(request))
        gr.Info(f"Pushed {run_id}/{role} to {url}")
        return f"Pushed **{role}** of `{run_id}` to [{url}]({url})."

    def retime(self, run_id: str | None, request: gr.Request) -> tuple[Any, ...]:
        """Re-time the run's models on this machine (the timing is appended to the run);
        returns :meth:`refresh`'s values, the leaderboard showing the new speed-ups."""
        if not run_id:
            raise gr.Error("pick a run to re-time")
        timing = self.actions.time_run(run_id, self.ctx.caller(request))
        speedups = ", ".join(f"{role} {speedup_text(m)}" for role, m in
                             RunTiming.from_dict(timing).models.items() if role != "teacher")
        gr.Info(f"Re-timed {run_id} on {timing['device']}: {speedups}")
        return self.refresh(run_id, request)

    def ask_delete(self, run_id: str | None) -> tuple[dict[str, Any], str]:
        """Show the confirmation row with its question."""
        if not run_id:
            raise gr.Error("pick a run to delete")
        return gr.update(visible=True), f"Delete run **{run_id}** and all its models?"

    def keep(self) -> dict[str, Any]:
        """Hide the confirmation row: the run stays."""
        return gr.update(visible=False)

    def confirm_delete(self, run_id: str | None, request: gr.Request) -> tuple[Any, ...]:
        """Delete the run; hides the confirmation row, then :meth:`refresh`'s values."""
        self.actions.delete(run_id or "", self.ctx.caller(request))
        gr.Info(f"Deleted {run_id}")
        return (gr.update(visible=False), *self.refresh(None, request))


def build_runs_tab(ready: Any, ctx: AppContext, tab: gr.Tab) -> None:
    """The Runs tab's layout and wiring (call inside ``tab``; ``ready`` is the page load)."""
    ui = Components()
    _build_lists(ui)
    _build_details(ui, ctx)
    _wire(ui, RunsController(ctx), user_errors(public=ctx.public), ready, tab)


def _build_lists(ui: Components) -> None:
    """The leaderboard and the runs list, with the refresh button."""
    with gr.Row():
        gr.Markdown(BOARD_NOTE)
        ui["refresh_button"] = gr.Button("↻ Refresh", scale=0, min_width=120)
    ui["board"] = gr.Dataframe(
        pd.DataFrame(columns=[h for _, h, *_ in BOARD]), label="Leaderboard",
        interactive=False, elem_id="leaderboard", max_height=420, wrap=True,
        column_widths=[w for *_, w in BOARD], pinned_columns=BOARD_PINNED)
    ui["runs_table"] = gr.Dataframe(label="Runs", interactive=False, max_height=260,
                                    pinned_columns=1, elem_id="runs-list")


def _build_details(ui: Components, ctx: AppContext) -> None:
    """A run's details: pickers, action buttons, the Hub push, the delete confirmation,
    downloads, curves and score tables."""
    gr.Markdown("### Run details")
    with gr.Row():
        ui["run_picker"] = gr.Dropdown([], label="Run", scale=3, elem_id="runs-run")
        ui["role_picker"] = gr.Dropdown(list(ROLES), value="student", label="Model", scale=1)
    ui["details"] = gr.Markdown(elem_id="run-details")
    with gr.Row():
        ui["results_button"] = gr.Button("↓ Results as CSV")
        ui["zip_button"] = gr.Button("↓ Model as zip", elem_id="model-zip")
        ui["retime_button"] = gr.Button("↻ Re-time on this machine", elem_id="retime")
        ui["delete_button"] = gr.Button("Delete run", variant="stop")
    _build_push(ui, ctx)
    with gr.Row(visible=False) as ui["confirm_row"]:
        ui["confirm_md"] = gr.Markdown()
        ui["confirm_button"] = gr.Button("Yes, delete it", variant="stop")
        ui["keep_button"] = gr.Button("Keep it")
    ui["downloads"] = gr.File(label="Downloads", file_count="multiple", interactive=False,
                              visible=False)
    with gr.Row():
        ui["curves"] = gr.Plot(show_label=False, elem_id="run-curves")
        ui["per_class"] = gr.Dataframe(label="Per-class scores", interactive=False,
                                       elem_id="per-class")
    # Full width: a column per label does not fit half a page (BBC News' "entertainment").
    ui["confusion"] = gr.Dataframe(
        label="Confusion matrix (rows: true label, columns: predicted)", interactive=False,
        pinned_columns=1, elem_id="confusion")
    with gr.Accordion("Spec", open=False):
        ui["spec_json"] = gr.JSON(show_label=False)


def _build_push(ui: Components, ctx: AppContext) -> None:
    """The accordion that pushes the chosen model to the Hub."""
    token_hint = ("required: this public server never uses its own token" if ctx.public
                  else "empty: HF_TOKEN (a Space secret) or hf auth login")
    with gr.Accordion("Push the model to the Hugging Face Hub", open=False):
        gr.Markdown("Uploads the chosen model with a generated model card (teacher, data, "
                    "recipe, scores, speed, intended use and limitations). The zip above "
                    "holds the same folder.")
        with gr.Row():
            ui["repo_id"] = gr.Textbox(label="Repository", placeholder="your-name/distilled-bbc",
                                       scale=2, elem_id="export-repo")
            ui["token"] = gr.Textbox(label="Write token", type="password", scale=2,
                                     placeholder=token_hint, elem_id="export-token")
            ui["private_repo"] = gr.Checkbox(True, label="Private repository", scale=1)
            ui["push_button"] = gr.Button("Push to the Hub", scale=1, elem_id="export-push")
        ui["pushed"] = gr.Markdown(elem_id="export-result")


def _wire(ui: Components, ctl: RunsController, errors: Any, ready: Any, tab: gr.Tab) -> None:
    """Connect the tab's events to the controller's methods (all private to the API)."""
    lists = ui.pick("board", "runs_table", "run_picker")
    pickers = ui.pick("run_picker", "role_picker")
    details = ui.pick("details", "curves", "spec_json", "confusion", "per_class",
                      "role_picker")
    show, picker = errors(ctl.show), ui["run_picker"]
    for trigger in (ready.then, tab.select, ui["refresh_button"].click):
        trigger(ctl.refresh, picker, lists, concurrency_limit=None, **PRIVATE).then(
            show, pickers, details, **PRIVATE)
    gr.on([picker.input, ui["role_picker"].input], show, pickers, details, **PRIVATE)
    ui["results_button"].click(errors(ctl.download_results), picker, ui["downloads"],
                               **PRIVATE)
    ui["zip_button"].click(errors(ctl.download_model), pickers, ui["downloads"], **PRIVATE)
    ui["push_button"].click(
        errors(ctl.push_model), [*pickers, *ui.pick("repo_id", "token", "private_repo")],
        ui["pushed"], **PRIVATE)
    ui["retime_button"].click(errors(ctl.retime), picker, lists, **PRIVATE)
    ui["delete_button"].click(ctl.ask_delete, picker, ui.pick("confirm_row", "confirm_md"),
                              **PRIVATE)
    ui["keep_button"].click(ctl.keep, None, ui["confirm_row"], **PRIVATE)
    ui["confirm_button"].click(errors(ctl.confirm_delete), picker,
                               [ui["confirm_row"], *lists], **PRIVATE).then(
        show, pickers, details, **PRIVATE)
