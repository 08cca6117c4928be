"""core.bench: ``distillab bench`` end to end on a tiny model (figures, not their values)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from core.bench import forward_flops
from core.bench.report import compute_ratios
from core.cli import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")
HEADLINE_RATIOS = ("eval_vs_pipeline", "eval_vs_evaluator", "distill_vs_naive",
                   "distill_vs_trainer")


@pytest.fixture(scope="module")
def bench_json(tmp_path_factory: pytest.TempPathFactory, sst2_dir: Path) -> dict:
    path = tmp_path_factory.mktemp("bench") / "bench.json"
    # Through the command line a user types (distillab bench), not a parser of its own.
    assert main(["bench", "--quick", "--json", str(path), "--model-size", "tiny",
                 "--device", "cpu", "--sst2-dir", str(sst2_dir)]) == 0
    return json.loads(path.read_text())


@pytest.mark.slow  # the quick bench (~15 s): CI runs it, pytest -q skips it
def test_bench_json_has_the_headline_ratios_and_positive_figures(bench_json: dict):
    # Each headline ratio is DistilLab's figure over the other contender's, from the same run.
    teacher_short = bench_json["eval"]["short"]["teacher"]
    assert bench_json["ratios"]["eval_vs_pipeline"] == pytest.approx(
        teacher_short["distillab"]["sent_per_s"] / teacher_short["pipeline"]["sent_per_s"])
    assert bench_json["ratios"]["distill_vs_naive"] == pytest.approx(
        bench_json["distill"]["distillab"]["samples_per_s"]
        / bench_json["distill"]["naive"]["samples_per_s"])
    assert compute_ratios(bench_json) == pytest.approx(bench_json["ratios"])
    for key in HEADLINE_RATIOS:
        assert bench_json["ratios"][key] > 0, key
    for kind in ("short", "long"):
        for role in ("teacher", "student"):
            figures = bench_json["eval"][kind][role]
            assert {"distillab", "pipeline", "evaluator", "naive"} <= set(figures)
            assert all(f["sent_per_s"] > 0 and f["repeats"] >= 1 for f in figures.values())
    distill = bench_json["distill"]
    for name in ("distillab", "distillab_teacher_every_step", "naive", "trainer"):
        assert distill[name]["samples_per_s"] > 0 and distill[name]["model_tflops_per_s"] > 0
    speedup = bench_json["speedup"]
    assert {"teacher", "student", "student_int8"} <= set(speedup)
    assert all(v > 0 for v in speedup["student_speedup"].values())


@pytest.mark.slow
def test_bench_contenders_predict_the_same_labels_on_cpu(bench_json: dict):
    # In fp32 on a CPU, padding and batching must not change a single label.
    for kind in ("short", "long"):
        for role in ("teacher", "student"):
            figures = bench_json["eval"][kind][role]
            assert figures["distillab"]["fp32_label_agreement_with_naive"] == 1.0
            assert figures["pipeline"]["label_agreement_with_naive"] == 1.0


@pytest.mark.slow
def test_bench_json_records_device_versions_settings_and_samples(bench_json: dict):
    assert bench_json["device"].startswith("cpu (")
    assert {"torch", "transformers", "evaluate", "datasets"} <= set(bench_json["versions"])
    assert bench_json["settings"]["quick"] is True
    assert bench_json["settings"]["model_size"] == "tiny"
    assert "SST-2 dev" in bench_json["sampled"]["short"]
    assert bench_json["models"]["student"]["layers"] == 2
    assert {t["ratio"] for t in bench_json["targets"]} == set(HEADLINE_RATIOS) - {
        "eval_vs_evaluator"}
    assert all(t["applies"] is False for t in bench_json["targets"])  # tiny: not the target
    assert {"distillab", "pipeline", "evaluator", "naive"} <= set(
        bench_json["timer_includes"]["eval"])


@pytest.mark.slow
def test_evaluate_shim_is_removed_after_the_bench(bench_json: dict):
    from evaluate.evaluator import base

    assert not hasattr(base.transformers, "TFPreTrainedModel")


def test_bench_rejects_an_unknown_section(capsys: pytest.CaptureFixture, sst2_dir: Path):
    assert main(["bench", "--quick", "--model-size", "tiny", "--device", "cpu",
                 "--sections", "eval,bogus", "--sst2-dir", str(sst2_dir)]) == 2
    assert "--sections" in capsys.readouterr().err


def test_forward_flops_counts_projections_attention_and_head():
    config = SimpleNamespace(hidden_size=4, intermediate_size=8, num_hidden_layers=1,
                             num_labels=2)
    # 2 tokens: 2*2*(4*16 + 2*4*8) = 512 in the layers, 4*2*2*4 = 64 in attention,
    # 2*16 + 2*4*2 = 48 in pooler and head.
    assert forward_flops(config, [2]) == 624
    assert forward_flops(config, [2, 2]) == 2 * 624


def test_cudnn_attention_contenders_get_their_own_ratios(monkeypatch):
    # On CUDA the bench times DistilLab again with cuDNN attention allowed; no CPU run has
    # those contenders, so the ratios are checked on figures written by hand.
    import os

    from core.bench.report import compute_ratios
    from core.bench.settings import with_cudnn_attention

    monkeypatch.delenv("DISTILLAB_CUDNN_ATTENTION", raising=False)
    assert with_cudnn_attention(lambda: os.environ["DISTILLAB_CUDNN_ATTENTION"]) == "1"
    assert "DISTILLAB_CUDNN_ATTENTION" not in os.environ
    result = {
        "eval": {"long": {"teacher": {"distillab": {"sent_per_s": 300.0},
                                      "distillab_cudnn_attention": {"sent_per_s": 200.0}}}},
        "distill": {"distillab": {"samples_per_s": 900.0},
                    "distillab_cudnn_attention": {"samples_per_s": 300.0}},
    }
    ratios = compute_ratios(result)
    assert ratios["eval_without_vs_with_cudnn_attention_teacher_long"] == pytest.approx(1.5)
    assert ratios["distill_without_vs_with_cudnn_attention"] == pytest.approx(3.0)


def test_eager_contenders_give_the_graphs_their_own_ratios(monkeypatch):
    # On CUDA the bench times DistilLab again without CUDA graphs (its eager path).
    import os

    from core.bench.report import compute_ratios
    from core.bench.settings import with_graph_stats, without_cuda_graphs
    from core.cuda_graphs import graphs_enabled

    monkeypatch.setenv("DISTILLAB_CUDA_GRAPHS", "1")
    assert without_cuda_graphs(lambda: graphs_enabled("cuda")) is False
    assert os.environ["DISTILLAB_CUDA_GRAPHS"] == "1"
    output, stats = with_graph_stats(lambda x: x + 1, 1)
    assert output == 2 and stats["captures"] == 0 and stats["failures"] == []
    result = {
        "eval": {"short": {"teacher": {"distillab": {"sent_per_s": 400.0},
                                       "distillab_eager": {"sent_per_s": 100.0}}}},
        "distill": {"distillab": {"samples_per_s": 600.0},
                    "distillab_eager": {"samples_per_s": 200.0}},
    }
    ratios = compute_ratios(result)
    assert ratios["eval_graphs_vs_eager_teacher_short"] == pytest.approx(4.0)
    assert ratios["distill_graphs_vs_eager"] == pytest.approx(3.0)


def test_eval_contenders_take_turns_and_a_broken_one_loses_only_itself():
    import torch

    from core.bench.evaluation import _time_interleaved
    from core.bench.settings import BenchSettings

    calls: list[str] = []

    def runner(name: str):
        def run(texts: list[str]) -> list[int]:
            calls.append(name)
            if name == "broken" and len(calls) > 3:  # fails in its first timed pass
                raise RuntimeError("out of memory")
            return [0] * len(texts)
        return run

    contenders = {n: ((lambda t: t), runner(n)) for n in ("a", "b", "broken")}
    settings = BenchSettings(max_repeats=3, min_time_s=10.0)
    figures: dict = {}
    _time_interleaved(contenders, ["w"], ["x", "y"], 16, torch.device("cpu"), settings,
                      figures, lambda name, figure: None)
    # One warm-up pass each, then rounds of a, b (broken dropped after its failure).
    assert calls == ["a", "b", "broken", "a", "b", "broken", "a", "b", "a", "b"]
    assert figures["a"]["repeats"] == figures["b"]["repeats"] == 3
    assert "out of memory" in figures["broken"]["error"]
