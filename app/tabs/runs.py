"""Runs tab: the leaderboard, a run's details, downloads, export to the Hub, and deletion."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

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


def build_runs_tab(ready: Any, ctx: AppContext, tab: gr.Tab) -> None:
    """The Runs tab's layout and wiring (call inside ``tab``; ``ready`` is the page load)."""
    actions = ctx.actions
    errors = user_errors(public=ctx.public)
    token_hint = ("required: this public server never uses its own token" if ctx.public
                  else "empty: HF_TOKEN (a Space secret) or hf auth login")
    with gr.Row():
        gr.Markdown(BOARD_NOTE)
        refresh_button = gr.Button("↻ Refresh", scale=0, min_width=120)
    board = gr.Dataframe(pd.DataFrame(columns=[h for _, h, *_ in BOARD]), label="Leaderboard",
                         interactive=False, elem_id="leaderboard", max_height=420, wrap=True,
                         column_widths=[w for *_, w in BOARD], pinned_columns=BOARD_PINNED)
    runs_table = gr.Dataframe(label="Runs", interactive=False, max_height=260,
                              pinned_columns=1, elem_id="runs-list")
    gr.Markdown("### Run details")
    with gr.Row():
        run_picker = gr.Dropdown([], label="Run", scale=3, elem_id="runs-run")
        role_picker = gr.Dropdown(list(ROLES), value="student", label="Model", scale=1)
    details = gr.Markdown(elem_id="run-details")
    with gr.Row():
        results_button = gr.Button("↓ Results as CSV")
        zip_button = gr.Button("↓ Model as zip", elem_id="model-zip")
        retime_button = gr.Button("↻ Re-time on this machine", elem_id="retime")
        delete_button = gr.Button("Delete run", variant="stop")
    with gr.Accordion("Push the model to the Hugging Face Hub", open=False):
        gr.Markdown("Uploads the chosen model with a generated model card (teacher, data, "
                    "recipe, scores, speed, intended use and limitations). The zip above "
                    "holds the same folder.")
        with gr.Row():
            repo_id = gr.Textbox(label="Repository", placeholder="your-name/distilled-bbc",
                                 scale=2, elem_id="export-repo")
            token = gr.Textbox(label="Write token", type="password", scale=2,
                               placeholder=token_hint,
                               elem_id="export-token")
            private_repo = gr.Checkbox(True, label="Private repository", scale=1)
            push_button = gr.Button("Push to the Hub", scale=1, elem_id="export-push")
        pushed = gr.Markdown(elem_id="export-result")
    with gr.Row(visible=False) as confirm_row:
        confirm_md = gr.Markdown()
        confirm_button = gr.Button("Yes, delete it", variant="stop")
        keep_button = gr.Button("Keep it")
    downloads = gr.File(label="Downloads", file_count="multiple", interactive=False,
                        visible=False)
    with gr.Row():
        curves = gr.Plot(show_label=False, elem_id="run-curves")
        per_class = gr.Dataframe(label="Per-class scores", interactive=False,
                                 elem_id="per-class")
    # Full width: a column per label does not fit half a page (BBC News' "entertainment").
    confusion = gr.Dataframe(label="Confusion matrix (rows: true label, columns: predicted)",
                             interactive=False, pinned_columns=1, elem_id="confusion")
    with gr.Accordion("Spec", open=False):
        spec_json = gr.JSON(show_label=False)

    def refresh(current: str | None, request: gr.Request) -> tuple[Any, ...]:
        caller = ctx.caller(request)
        runs = actions.visible_runs(caller)
        choices = run_choices(runs)
        # Open on the newest finished run: a newer failed one has nothing to show.
        run_id = current if current in {r.id for r in runs} else newest_done(runs)
        return (leaderboard_table(ctx, caller), runs_list_table(ctx, caller),
                gr.Dropdown(choices=choices, value=run_id))

    @errors
    def show(run_id: str | None, role: str | None, request: gr.Request) -> tuple[Any, ...]:
        if not run_id:
            empty = pd.DataFrame()
            return "No runs yet.", None, None, empty, empty, gr.Dropdown()
        caller = ctx.caller(request)
        status = actions.status(run_id, caller)
        run = Run(actions.runs_dir / run_id)
        roles = scored_roles(run) or list(ROLES)
        role = role if role in roles else ("student" if "student" in roles else roles[0])
        text = (f"**{run.id}** · {status.get('state')} · models: {models_line(run)}  \n"
                f"{run.read_metrics().dataset or ''}")
        if not status.get("mine"):
            text += "  \nA shared example: read-only."
        if status.get("error"):
            text += f"  \n**Error:** {status['error']}"
        return (text, training_charts(run)[1], actions.spec(run_id, caller),
                confusion_table(run, role), per_class_table(run, role),
                gr.Dropdown(choices=roles, value=role))

    @errors
    def download_results(run_id: str | None, request: gr.Request) -> Any:
        actions.status(run_id or "", ctx.caller(request))  # a run the caller may read
        return gr.File(results_files(Run(actions.runs_dir / (run_id or ""))), visible=True)

    @errors
    def download_model(run_id: str | None, role: str | None, request: gr.Request) -> Any:
        if not run_id or not role:
            raise gr.Error("pick a run and a model")
        return gr.File([str(actions.zip_model(run_id, role, ctx.caller(request)))],
                       visible=True)

    @errors
    def push_model(run_id: str | None, role: str | None, repo: str, typed_token: str,
                   private: bool, request: gr.Request) -> str:
        if not run_id or not role:
            raise gr.Error("pick a run and a model")
        url = actions.export(run_id, role, repo or "", typed_token, bool(private),
                             ctx.caller(request))
        gr.Info(f"Pushed {run_id}/{role} to {url}")
        return f"Pushed **{role}** of `{run_id}` to [{url}]({url})."

    @errors
    def retime(run_id: str | None, request: gr.Request) -> tuple[Any, ...]:
        if not run_id:
            raise gr.Error("pick a run to re-time")
        timing = actions.time_run(run_id, ctx.caller(request))
        speedups = ", ".join(f"{role} {speedup_text(m)}" for role, m in
                             RunTiming.from_dict(timing).models.items() if role != "teacher")
        gr.Info(f"Re-timed {run_id} on {timing['device']}: {speedups}")
        return refresh(run_id, request)

    def ask_delete(run_id: str | None) -> tuple[Any, Any]:
        if not run_id:
            raise gr.Error("pick a run to delete")
        return gr.Row(visible=True), f"Delete run **{run_id}** and all its models?"

    @errors
    def confirm_delete(run_id: str | None, request: gr.Request) -> tuple[Any, ...]:
        actions.delete(run_id or "", ctx.caller(request))
        gr.Info(f"Deleted {run_id}")
        return (gr.Row(visible=False), *refresh(None, request))

    private = {"api_visibility": "private"}
    detail_outputs = [details, curves, spec_json, confusion, per_class, role_picker]
    for trigger in (ready.then, tab.select, refresh_button.click):
        trigger(refresh, run_picker, [board, runs_table, run_picker], concurrency_limit=None,
                **private).then(show, [run_picker, role_picker], detail_outputs, **private)
    gr.on([run_picker.input, role_picker.input], show, [run_picker, role_picker],
          detail_outputs, **private)
    results_button.click(download_results, run_picker, downloads, **private)
    zip_button.click(download_model, [run_picker, role_picker], downloads, **private)
    push_button.click(push_model, [run_picker, role_picker, repo_id, token, private_repo],
                      pushed, **private)
    retime_button.click(retime, run_picker, [board, runs_table, run_picker], **private)
    delete_button.click(ask_delete, run_picker, [confirm_row, confirm_md], **private)
    keep_button.click(lambda: gr.Row(visible=False), None, confirm_row, **private)
    confirm_button.click(confirm_delete, run_picker,
                         [confirm_row, board, runs_table, run_picker], **private).then(
        show, [run_picker, role_picker], detail_outputs, **private)
