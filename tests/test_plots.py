"""app.plots: the validation chart shows what each kind of run validates on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.plots import validation_chart, validation_curve
from core.runs import create_run


def _run_with_history(tmp_path: Path, records: list[dict]):
    run = create_run({"name": "h"}, tmp_path)
    (run.path / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return run


@pytest.mark.parametrize("records, metrics, title, low_bound", [
    ([{"type": "epoch", "stage": "teacher", "epoch": 1, "val_accuracy": 0.9,
       "val_macro_f1": 0.88}], {"accuracy", "macro-F1"}, "accuracy", 0.0),
    # A regression (STS-B) validates on correlations: once an empty chart.
    ([{"type": "epoch", "stage": "teacher", "epoch": 1, "val_spearman": 0.74,
       "val_pearson": 0.70, "val_mse": 1.59, "val_loss": 1.59},
      {"type": "epoch", "stage": "student", "epoch": 1, "val_spearman": -0.2,
       "val_pearson": 0.1, "val_mse": 2.1, "val_loss": 2.1}],
     {"Spearman", "Pearson"}, "correlations", -1.0),
    # General distillation validates on its held-out loss (no labels): once an empty chart.
    ([{"type": "epoch", "stage": "general", "epoch": 1, "val_loss": 0.26, "val_score": -0.26},
      {"type": "epoch", "stage": "general", "epoch": 2, "val_loss": 0.21, "val_score": -0.21}],
     {"held-out loss"}, "loss", None),
])
def test_each_kind_of_run_gets_its_own_validation_figures(tmp_path, records, metrics, title,
                                                          low_bound):
    scores = validation_curve(_run_with_history(tmp_path, records))
    assert set(scores["metric"]) == metrics and len(scores) == len(records) * len(metrics)
    spec = json.loads(validation_chart(scores).plot)
    assert title in spec["title"]
    low, high = spec["encoding"]["y"]["scale"]["domain"]
    assert low <= scores["value"].min() and high >= scores["value"].max()
    if low_bound is not None:
        assert low >= low_bound
