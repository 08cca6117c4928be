"""Trade-offs per dataset: a Pareto frontier never crosses datasets, and a regression's
points are scored by its main metric (Spearman)."""

from __future__ import annotations

import pandas as pd

from core.compare import tradeoffs
from core.runs import create_run, leaderboard


def fabricate(runs_dir, dataset: str, key: str, task: str, scores: dict[str, tuple]) -> str:
    run = create_run({"name": dataset, "teacher": "bundled:minilm"}, runs_dir)
    metric = "spearman" if task == "regression" else "accuracy"
    models = {role: {metric: score, "task": task, "latency_ms_p50": ms, "size_mb": mb,
                     "params": mb * 1e5, "throughput_per_s": 1000 / ms, "device": "cpu"}
              for role, (score, ms, mb) in scores.items()}
    run.write_metrics({"models": models, "dataset": f"{dataset}: 100 train / 20 validation",
                       "validation_fingerprint": key, "task": task})
    run.set_status("done", stage="done")
    return run.id


def test_frontiers_are_drawn_within_each_dataset(tmp_path):
    runs_dir = tmp_path / "runs"
    bbc = fabricate(runs_dir, "BBC News (bundled)", "k1", "classification",
                    {"teacher": (0.96, 10.0, 90.0), "student": (0.95, 5.0, 70.0)})
    sst = fabricate(runs_dir, "train.tsv + dev.tsv", "k2", "classification",
                    {"teacher": (0.55, 12.0, 90.0), "student": (0.54, 2.0, 70.0)})
    sts = fabricate(runs_dir, "stsb train.tsv + dev.tsv", "k3", "regression",
                    {"teacher": (0.85, 11.0, 90.0), "student": (0.80, 6.0, 70.0)})
    table = tradeoffs(runs_dir).set_index("model")
    # One frontier through all three datasets would drop SST-2's teacher and the STS-B
    # models (BBC's teacher is "better" and faster); per dataset every model here is on it.
    assert table["pareto_latency"].all(), table[["score", "latency_ms_p50", "pareto_latency"]]
    assert table.loc[f"run:{sts}/teacher", "score"] == 0.85
    assert table.loc[f"run:{sts}/teacher", "metric"] == "spearman"
    assert set(table["dataset_key"]) == {"k1", "k2", "k3"}
    # A slower, worse model on BBC News is off its frontier.
    fabricate(runs_dir, "BBC News (bundled)", "k1", "classification",
              {"baseline": (0.90, 6.0, 70.0)})
    table = tradeoffs(runs_dir)
    assert not table.loc[table["role"] == "baseline", "pareto_latency"].item()
    board = leaderboard(runs_dir).set_index("model")
    assert board.loc[f"run:{sts}/student", "score_retained"] == 0.80 / 0.85
    assert board.loc[f"run:{bbc}/student", "dataset"] == "BBC News (bundled)"
    assert sst in set(board["run_id"])


def test_the_tab_offers_one_dataset_at_a_time_with_its_metric(tmp_path):
    from app.plots import dataset_choices, tradeoff_chart, tradeoff_points, tradeoff_table

    runs_dir = tmp_path / "runs"
    fabricate(runs_dir, "BBC News (bundled)", "k1", "classification",
              {"teacher": (0.96, 10.0, 90.0)})
    fabricate(runs_dir, "stsb", "k3", "regression",
              {"teacher": (0.85, 11.0, 90.0), "student": (0.80, 6.0, 70.0)})
    points = tradeoff_points(tradeoffs(runs_dir))
    choices = dataset_choices(points)
    assert [key for _, key in choices] == ["k3", "k1"]  # the newest run's data first
    assert choices[0][0] == "stsb · Spearman correlation · 2 models"
    sts = points[points["dataset_key"] == "k3"]
    table = tradeoff_table(sts, "latency")
    assert list(table.columns) == ["role", "p50 ms", "spearman", "frontier"]
    assert '"title": "validation Spearman correlation"' in tradeoff_chart(sts, "latency").plot
    assert isinstance(table, pd.DataFrame)
