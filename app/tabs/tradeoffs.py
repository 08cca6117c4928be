"""Trade-offs tab: accuracy (or a regression's Spearman) against latency, size and
throughput, with the Pareto frontier, one dataset at a time."""

from __future__ import annotations

from typing import Any

import gradio as gr

from app.context import AppContext
from app.helpers import user_errors
from app.plots import (
    CHARTS,
    dataset_choices,
    tradeoff_chart,
    tradeoff_points,
    tradeoff_table,
    tradeoff_widths,
)

CHART_TITLES = {
    "latency": "Score vs latency (batch 1, end to end)",
    "size_mb": "Score vs size on disk",
    "params": "Score vs parameters",
    "throughput": "Throughput vs score",
}


def build_tradeoffs_tab(ready: Any, ctx: AppContext, tab: gr.Tab) -> None:
    """The Trade-offs tab's layout and wiring (call inside ``tab``; ``ready`` is the page
    load)."""
    with gr.Row():
        gr.Markdown("One point per scored model of the chosen dataset, coloured by role; the "
                    "score is the task's main metric (accuracy; Spearman for a regression). "
                    "Diamonds and the dashed line are the Pareto frontier (no other model on "
                    "the same data scores at least as well and is at least as fast or small). "
                    "Hover a point for its numbers. Compare timings only between models "
                    "timed on the same device.")
        dataset = gr.Dropdown([], label="Dataset", elem_id="tradeoffs-dataset", scale=0,
                              min_width=320, info="a frontier never crosses datasets")
        refresh_button = gr.Button("↻ Refresh", scale=0, min_width=120)
    summary = gr.Markdown(elem_id="tradeoffs-summary")
    outputs: list[Any] = []
    keys = list(CHARTS)
    for pair in (keys[:2], keys[2:]):
        with gr.Row():
            for key in pair:
                with gr.Column():
                    gr.Markdown(f"#### {CHART_TITLES[key]}")
                    outputs.append(gr.Plot(show_label=False, elem_id=f"plot-{key}"))
                    outputs.append(gr.Dataframe(interactive=False, max_height=320, wrap=True,
                                                pinned_columns=1, elem_id=f"table-{key}"))

    @user_errors(public=ctx.public)
    def refresh(chosen: str | None, request: gr.Request) -> list[Any]:
        every = tradeoff_points(ctx.actions.tradeoffs(ctx.caller(request)))
        choices = dataset_choices(every)
        keys = [key for _, key in choices]
        chosen = chosen if chosen in keys else (keys[0] if keys else None)
        points = every[every["dataset_key"] == chosen] if chosen else every
        devices = sorted(points["device"].dropna().unique())
        models, runs = len(points), points["run_id"].nunique()
        note = (f"{models} model{'s' * (models != 1)} from {runs} run{'s' * (runs != 1)}; "
                f"timed on {', '.join(devices) or '–'}." if models else
                "No scored models yet: launch a job in **Distil**.")
        if len(keys) > 1:
            note += f" {len(keys)} datasets: pick one above."
        values: list[Any] = [gr.Dropdown(choices=choices, value=chosen), note]
        for key in CHARTS:
            table = tradeoff_table(points, key)
            values += [tradeoff_chart(points, key),
                       gr.Dataframe(table, column_widths=tradeoff_widths(table))]
        return values

    for trigger in (ready.then, tab.select, refresh_button.click, dataset.input):
        trigger(refresh, dataset, [dataset, summary, *outputs], concurrency_limit=None,
                api_visibility="private")
