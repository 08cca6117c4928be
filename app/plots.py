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
from core.runs import (
    ACCURACY,
    LATENCY_P50,
    MACRO_F1,
    METRIC_TITLES,
    PARAMS,
    SIZE_MB,
    SPEARMAN,
    THROUGHPUT,
    Run,
)

ROLE_COLORS = {"teacher": "#1f77b4", "student": "#ff7f0e", "baseline": "#2ca02c",
               "student_int8": "#9467bd"}
MAX_CURVE_POINTS = 400
# Gradio sizes Vega-Lite charts it did not build itself by their own width, not the page's;
# "fit" makes the width include axes and legend, so a chart fits a half-page column.
CHART_WIDTH = 560
CHART_HEIGHT = 260
FIT = {"type": "fit", "contains": "padding"}
PARAMS_M = "params_m"  # parameters in millions, for charts and tables
CHARTS = {
    # key: (x column, x title, Pareto flag, x on a log scale, the table's short header)
    "latency": (LATENCY_P50, "latency p50, batch 1 (ms)", "pareto_latency", True, "p50 ms"),
    "size_mb": (SIZE_MB, "size on disk (MB)", "pareto_size", False, "MB"),
    "params": (PARAMS_M, "parameters (millions)", "pareto_params", False, "params M"),
    "throughput": (THROUGHPUT, "throughput (texts/s)", "pareto_throughput", True, "texts/s"),
}
# Trade-off tables under half-page charts (about 590 px at 1280): role, the plotted metric,
# accuracy and the frontier flag in fixed widths, the run id (wrapping) in the rest.
TRADEOFF_DIGITS = {"latency": 2, "size_mb": 1, "params": 2, "throughput": 1}
TRADEOFF_WIDTHS = {"role": "132px", "metric": "88px", ACCURACY: "92px", SPEARMAN: "92px",
                   "score": "92px", "frontier": "92px",
                   "run": "30%", "device": "30%"}
SCORE_PAD = 0.01  # the validation chart's y axis spans at least ±this around the scores
METRIC_NAMES = {"val_accuracy": "accuracy", "val_macro_f1": "macro-F1"}
# What a stage's validation records, by kind of run: (history keys -> names, chart title,
# y axis title, the range the values live in; None: unbounded, such as a loss).
VALIDATION_VIEWS = (
    (METRIC_NAMES, "Validation accuracy and macro-F1 per epoch", "score", (0.0, 1.0)),
    ({"val_spearman": "Spearman", "val_pearson": "Pearson"},
     "Validation correlations per epoch (regression)", "correlation", (-1.0, 1.0)),
    ({"val_loss": "held-out loss"}, "Held-out distillation loss per epoch (lower is better)",
     "loss", None),
)


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
    """Validation figures after each epoch: one row per stage, metric and epoch
    (``series`` is ``"<stage> <metric>"``). A classification run's accuracy and macro-F1, a
    regression's Spearman and Pearson correlations, a general distillation's held-out loss:
    the first of :data:`VALIDATION_VIEWS` its history holds."""
    history = run.history()
    records = history.to_dict(orient="records") if len(history) else []
    names = next((view[0] for view in VALIDATION_VIEWS
                  if any(r.get(k) is not None for r in records for k in view[0])), {})
    rows = []
    for record in records:
        for key, metric in names.items():
            if record.get(key) is not None:
                stage = str(record.get("stage"))
                rows.append({"epoch": int(record["epoch"]), "value": float(record[key]),
                             "stage": stage, "metric": metric, "series": f"{stage} {metric}"})
    return pd.DataFrame(rows, columns=["epoch", "value", "stage", "metric", "series"])


def score_domain(values: pd.Series, pad: float = SCORE_PAD,
                 bounds: tuple[float, float] | None = (0.0, 1.0)) -> list[float]:
    """A readable y range: the values' range widened by ``pad`` (or a tenth of the range, if
    larger) on each side, clamped to ``bounds`` (scores: [0, 1]; None: not clamped)."""
    low, high = float(values.min()), float(values.max())
    margin = max(pad, (high - low) / 10)
    low, high = low - margin, high + margin
    return [max(bounds[0], low), min(bounds[1], high)] if bounds else [low, high]


def role_scale(roles: list[str]) -> dict[str, Any]:
    """A colour scale giving each role its usual colour (others grey), roles in order."""
    present = set(roles)
    ordered = [r for r in ROLE_COLORS if r in present] + sorted(present - set(ROLE_COLORS))
    return {"domain": ordered, "range": [ROLE_COLORS.get(r, "#7f7f7f") for r in ordered]}


def validation_chart(scores: pd.DataFrame) -> PlotData:
    """Validation scores per epoch: colour is the stage, dash and point shape the metric.

    Each epoch is a band with the six series side by side in it (``xOffset``), so values
    that nearly coincide (one epoch, all stages within 0.001) stay apart; the y axis spans
    at least ±``SCORE_PAD`` around them, within the metric's range ([0, 1] for scores,
    [-1, 1] for correlations; a loss is not clamped).

    Args:
        scores: rows of :func:`validation_curve`.
    Returns:
        Vega-Lite, ready for ``gr.Plot``.
    """
    present = set(scores["metric"])
    names, title, y_title, bounds = next(
        (view for view in VALIDATION_VIEWS if present <= set(view[0].values())),
        VALIDATION_VIEWS[0])
    metric = {"field": "metric", "type": "nominal", "title": "metric",
              "scale": {"domain": list(names.values())}}
    stages = role_scale(scores["stage"].tolist())
    series = [f"{stage} {name}" for stage in stages["domain"] for name in names.values()]
    spec = {
        "width": CHART_WIDTH, "height": CHART_HEIGHT, "autosize": FIT,
        "title": title,
        "data": {"values": to_records(scores)},
        "config": {"legend": {"orient": "bottom", "direction": "horizontal"}},
        "mark": {"type": "line", "point": {"size": 70, "filled": True}, "tooltip": True},
        "encoding": {
            "x": {"field": "epoch", "type": "ordinal", "title": "epoch",
                  "axis": {"labelAngle": 0}},
            "xOffset": {"field": "series", "type": "nominal", "scale": {"domain": series}},
            "y": {"field": "value", "type": "quantitative", "title": y_title,
                  "scale": {"domain": score_domain(scores["value"], bounds=bounds),
                            "zero": False,
                            "nice": False},
                  "axis": {"format": ".3~f"}},
            "color": {"field": "stage", "type": "nominal", "title": "stage", "scale": stages},
            "strokeDash": metric,
            "shape": metric,
            "tooltip": [{"field": "stage", "type": "nominal"},
                        {"field": "metric", "type": "nominal"},
                        {"field": "epoch", "type": "ordinal"},
                        {"field": "value", "type": "quantitative", "format": ".4f"}],
        },
    }
    return PlotData(type="altair", plot=json.dumps(spec))


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
            validation_chart(scores) if len(scores) else None)


def tradeoff_points(table: pd.DataFrame) -> pd.DataFrame:
    """The trade-off table with the columns the charts plot (parameters in millions; the
    quality ``score`` and its ``metric``, accuracy where a table has no score)."""
    points = table.copy()
    points[PARAMS_M] = points[PARAMS] / 1e6
    if "score" not in points.columns:
        points["score"] = points[ACCURACY]
    if "metric" not in points.columns:
        points["metric"] = ACCURACY
    points["metric"] = points["metric"].fillna(ACCURACY)
    for column, fallback in (("dataset", "?"), ("dataset_key", "?")):
        if column not in points.columns:
            points[column] = fallback
    return points


def dataset_choices(points: pd.DataFrame) -> list[tuple[str, str]]:
    """``(label, dataset_key)`` per dataset the points were scored on, newest run first;
    the label names the data, its metric and how many models."""
    if not len(points):
        return []
    groups = points.groupby("dataset_key", sort=False)
    newest = groups["run_id"].max().sort_values(ascending=False)
    choices = []
    for key in newest.index:
        group = groups.get_group(key)
        metric = METRIC_TITLES.get(str(group["metric"].iloc[0]), str(group["metric"].iloc[0]))
        count = len(group)
        choices.append((f"{group['dataset'].iloc[0]} · {metric} · {count} "
                        f"model{'s' * (count != 1)}", str(key)))
    return choices


def metric_title(points: pd.DataFrame) -> str:
    """The quality metric of the points, for axis titles and headers."""
    metrics = points["metric"].dropna().unique() if len(points) else []
    return str(metrics[0]) if len(metrics) == 1 else "score"


def tradeoff_chart(points: pd.DataFrame, key: str) -> PlotData:
    """Accuracy against one axis: points coloured by role, the Pareto frontier as a line.

    Args:
        points: rows of :func:`tradeoff_points`.
        key: a key of ``CHARTS``.
    Returns:
        Vega-Lite, ready for ``gr.Plot``.
    """
    column, title, flag, log_x, _ = CHARTS[key]
    metric = metric_title(points)
    values = to_records(points[["model", "role", "run_id", "score", MACRO_F1, column,
                                "device", flag]].dropna(subset=["score", column]))
    x = {"field": column, "type": "quantitative", "title": title,
         "scale": {"type": "log"} if log_x else {"zero": False}}
    y = {"field": "score", "type": "quantitative",
         "title": f"validation {METRIC_TITLES.get(metric, metric)}",
         "scale": {"zero": False}, "axis": {"format": ".3f"}}
    roles = role_scale([v["role"] for v in values])
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
                           "scale": roles},
                 "shape": {"field": flag, "type": "nominal", "title": "Pareto frontier",
                           "scale": {"domain": [True, False],
                                     "range": ["diamond", "circle"]}},
                 "tooltip": [{"field": "model", "type": "nominal"},
                             {"field": "score", "type": "quantitative", "format": ".4f",
                              "title": metric},
                             {"field": column, "type": "quantitative", "title": title,
                              "format": ",.3~f"},
                             {"field": "device", "type": "nominal"},
                             {"field": flag, "type": "nominal", "title": "on frontier"}]}},
        ],
    }
    return PlotData(type="altair", plot=json.dumps(spec))


def tradeoff_table(points: pd.DataFrame, key: str) -> pd.DataFrame:
    """The rows one chart plots, frontier first, for the table under it.

    Columns: ``role``, the plotted metric (its short header), the quality metric
    (``accuracy``, or ``spearman`` for a regression), ``frontier``
    (yes/no), then ``run`` only when the models come from more than one run, and ``device``
    only when a run's models were timed on more than one device (otherwise the run says
    which; the tab's summary names the runs and devices).
    """
    column, _, flag, _, header = CHARTS[key]
    metric = metric_title(points)
    table = pd.DataFrame({"role": points["role"],
                          header: points[column].round(TRADEOFF_DIGITS[key]),
                          metric: points["score"].round(4),
                          "frontier": points[flag].astype(bool)})
    if points["run_id"].nunique() > 1:
        table["run"] = points["run_id"]
    if points.groupby("run_id")["device"].nunique(dropna=False).max() > 1:
        table["device"] = points["device"]
    table = table.sort_values(["frontier", metric], ascending=[False, False],
                              kind="stable").reset_index(drop=True)
    table["frontier"] = table["frontier"].map({True: "yes", False: "no"})
    return table


def tradeoff_widths(table: pd.DataFrame) -> list[str]:
    """Column widths for a :func:`tradeoff_table` (the metric's column by its position)."""
    return [TRADEOFF_WIDTHS.get(name, TRADEOFF_WIDTHS["metric"]) for name in table.columns]
