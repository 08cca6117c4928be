"""Plot data for the app: training curves as DataFrames, trade-off charts as Vega-Lite.

Gradio's native ``ScatterPlot`` draws one mark per chart, so it cannot overlay the Pareto
frontier line on the points. ``gr.Plot`` renders any Vega-Lite spec it is handed as
``PlotData(type="altair")`` (the same renderer Altair charts use, with tooltips), so the
trade-off charts are written as small Vega-Lite specs and need no plotting library.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
from gradio.components.plot import PlotData

from app.helpers import to_records
from core.runs import Run

ROLE_COLORS = {"teacher": "#1f77b4", "student": "#ff7f0e", "baseline": "#2ca02c",
               "student_int8": "#9467bd"}
MAX_CURVE_POINTS = 400
# Gradio sizes Vega-Lite charts it did not build itself by their own width, not the page's;
# "fit" makes the width include axes and legend, so a chart fits a half-page column.
CHART_WIDTH = 560
CHART_HEIGHT = 260
FIT = {"type": "fit", "contains": "padding"}
CHARTS = {
    # key: (x column, x title, Pareto flag, x on a log scale)
    "latency": ("latency_ms_p50", "latency p50, batch 1 (ms)", "pareto_latency", True),
    "size_mb": ("size_mb", "size on disk (MB)", "pareto_size", False),
    "params": ("params_m", "parameters (millions)", "pareto_params", False),
    "throughput": ("throughput_per_s", "throughput (texts/s)", "pareto_throughput", True),
}


def loss_curve(run: Run) -> pd.DataFrame:
    """Training loss per logged step, one series per stage (thinned to a few hundred points)."""
    steps = [e for e in run.events(("step",)) if e.get("loss") is not None]
    table = pd.DataFrame([{"step": int(e["step"]), "loss": float(e["loss"]),
                           "stage": str(e.get("stage", ""))} for e in steps],
                         columns=["step", "loss", "stage"])
    if len(table) > MAX_CURVE_POINTS:
        stride = -(-len(table) // MAX_CURVE_POINTS)
        table = table.iloc[::stride]
    return table.reset_index(drop=True)


def validation_curve(run: Run) -> pd.DataFrame:
    """Validation accuracy and macro-F1 after each epoch, one series per stage and metric."""
    history = run.history()
    rows = []
    for record in history.to_dict(orient="records") if len(history) else []:
        for metric in ("val_accuracy", "val_macro_f1"):
            if record.get(metric) is not None:
                rows.append({"epoch": int(record["epoch"]), "value": float(record[metric]),
                             "series": f"{record.get('stage')} {metric[4:]}"})
    return pd.DataFrame(rows, columns=["epoch", "value", "series"])


def line_chart(table: pd.DataFrame, x: str, y: str, color: str, x_title: str, y_title: str,
               title: str, points: bool = False) -> PlotData:
    """A line per ``color`` value (points marked when ``points``), with tooltips.

    Args:
        table: the rows to draw.
        x, y, color: column names.
        x_title, y_title, title: axis and chart titles.
        points: mark every point (for short curves such as one value per epoch).
    Returns:
        Vega-Lite, ready for ``gr.Plot``.
    """
    spec = {
        "width": CHART_WIDTH, "height": CHART_HEIGHT, "autosize": FIT, "title": title,
        "data": {"values": to_records(table)},
        "mark": {"type": "line", "point": points, "tooltip": True},
        "encoding": {
            "x": {"field": x, "type": "quantitative", "title": x_title,
                  "axis": {"tickMinStep": 1, "format": "d"}},
            "y": {"field": y, "type": "quantitative", "title": y_title,
                  "scale": {"zero": False}},
            "color": {"field": color, "type": "nominal", "title": None,
                      "legend": {"orient": "bottom"}},
        },
    }
    return PlotData(type="altair", plot=json.dumps(spec))


def training_charts(run: Run) -> tuple[PlotData | None, PlotData | None]:
    """The loss per step and the validation scores per epoch (None until there are any)."""
    loss, scores = loss_curve(run), validation_curve(run)
    return (line_chart(loss, "step", "loss", "stage", "step", "loss", "Training loss")
            if len(loss) else None,
            line_chart(scores, "epoch", "value", "series", "epoch", "score",
                       "Validation accuracy and macro-F1 per epoch", points=True)
            if len(scores) else None)


def tradeoff_points(table: pd.DataFrame) -> pd.DataFrame:
    """The trade-off table with the columns the charts plot (parameters in millions)."""
    points = table.copy()
    points["params_m"] = points["params"] / 1e6
    return points


def tradeoff_chart(points: pd.DataFrame, key: str) -> PlotData:
    """Accuracy against one axis: points coloured by role, the Pareto frontier as a line.

    Args:
        points: rows of :func:`tradeoff_points`.
        key: a key of ``CHARTS``.
    Returns:
        Vega-Lite, ready for ``gr.Plot``.
    """
    column, title, flag, log_x = CHARTS[key]
    values = to_records(points[["model", "role", "run_id", "accuracy", "macro_f1", column,
                                "device", flag]].dropna(subset=["accuracy", column]))
    x = {"field": column, "type": "quantitative", "title": title,
         "scale": {"type": "log"} if log_x else {"zero": False}}
    y = {"field": "accuracy", "type": "quantitative", "title": "validation accuracy",
         "scale": {"zero": False}, "axis": {"format": ".3f"}}
    roles = sorted({v["role"] for v in values}, key=lambda r: (r not in ROLE_COLORS, r))
    spec: dict[str, Any] = {
        "width": CHART_WIDTH, "height": CHART_HEIGHT, "autosize": FIT,
        "data": {"values": values},
        "config": {"legend": {"orient": "bottom", "direction": "horizontal"}},
        "layer": [
            {"transform": [{"filter": f"datum['{flag}']"}],
             "mark": {"type": "line", "color": "#888888", "strokeDash": [5, 3],
                      "interpolate": "linear"},
             "encoding": {"x": x, "y": y, "order": {"field": column, "type": "quantitative"}}},
            {"mark": {"type": "point", "filled": True, "size": 110, "opacity": 0.9},
             "encoding": {
                 "x": x, "y": y,
                 "color": {"field": "role", "type": "nominal", "title": "role",
                           "scale": {"domain": roles,
                                     "range": [ROLE_COLORS.get(r, "#7f7f7f") for r in roles]}},
                 "shape": {"field": flag, "type": "nominal", "title": "Pareto frontier",
                           "scale": {"domain": [True, False],
                                     "range": ["diamond", "circle"]}},
                 "tooltip": [{"field": "model", "type": "nominal"},
                             {"field": "accuracy", "type": "quantitative", "format": ".4f"},
                             {"field": "macro_f1", "type": "quantitative", "format": ".4f"},
                             {"field": column, "type": "quantitative", "title": title,
                              "format": ",.3~f"},
                             {"field": "device", "type": "nominal"},
                             {"field": flag, "type": "nominal", "title": "on frontier"}]}},
        ],
    }
    return PlotData(type="altair", plot=json.dumps(spec))


def tradeoff_table(points: pd.DataFrame, key: str) -> pd.DataFrame:
    """The rows one chart plots, frontier first, for the table under it.

    Columns that say the same on every row are left out (the tab's summary names the run
    count and the devices): ``model`` when every model is a role of one run, ``device``
    when all were timed on one device.
    """
    column, _, flag, _ = CHARTS[key]
    one_run = (points["run_id"].nunique() == 1
               and points["model"].astype(str).str.startswith("run:").all())
    columns = ["role"] if one_run else ["model", "role"]
    columns += ["accuracy", "macro_f1", column, flag]
    if points["device"].nunique(dropna=False) > 1:
        columns.append("device")
    table = points[columns].copy()
    table = table.rename(columns={flag: "on_frontier"})
    table[["accuracy", "macro_f1"]] = table[["accuracy", "macro_f1"]].round(4)
    table[column] = table[column].round(3)
    return table.sort_values(["on_frontier", "accuracy"], ascending=[False, False],
                             kind="stable").reset_index(drop=True)
