"""Data-parallel distillation: sharding, the single-process no-ops, and a real 2-process run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from core import distributed
from core.distributed import shard_batch, shared_run, state_dict_digest
from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("size", [1, 2, 5, 16, 17])
@pytest.mark.parametrize("world_size", [2, 3])
def test_shard_batch_deals_every_row_once_and_weights_give_the_global_mean(size, world_size):
    indices = np.arange(100, 100 + size)
    rng = np.random.default_rng(size)
    losses = rng.random(200)  # a per-row loss
    shares = [shard_batch(indices, rank, world_size) for rank in range(world_size)]
    dealt = np.concatenate([rows for rows, weight in shares if weight > 0])
    assert sorted(dealt.tolist()) == indices.tolist()
    # DDP averages over ranks: mean_r(weight_r * mean(loss of rank r's rows)) = global mean.
    averaged = np.mean([weight * losses[rows].mean() for rows, weight in shares])
    assert averaged == pytest.approx(losses[indices].mean())
    assert all(len(rows) >= 1 for rows, _ in shares)  # every rank joins every all-reduce


def test_one_process_runs_without_a_process_group(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    context = distributed.init_from_env()
    assert not context.enabled and context.is_main
    assert distributed.main_says(True) and not distributed.main_says(False)
    assert distributed.broadcast_from_main({"a": 1}) == {"a": 1}
    assert shard_batch(np.arange(5), 0, 1)[1] == 1.0
    assert shared_run(lambda: None) is None
    assert not torch.distributed.is_initialized()


@pytest.fixture(scope="module")
def headless_encoder(tmp_path_factory: pytest.TempPathFactory, minilm_path: str) -> str:
    """A tiny BERT encoder without a classification head (so the job fine-tunes it first)
    and without dropout (so one and two processes can match exactly)."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    path = tmp_path_factory.mktemp("tiny_encoder")
    torch.manual_seed(0)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=4,
                        num_attention_heads=2, intermediate_size=64,
                        max_position_embeddings=64, hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0)
    BertModel(config).save_pretrained(path)
    AutoTokenizer.from_pretrained(minilm_path).save_pretrained(path)
    return str(path)


@pytest.mark.slow
def test_two_process_distillation_matches_one_process(headless_encoder, sentiment_csv,
                                                      tmp_path, monkeypatch):
    """`accelerate launch` with 2 CPU processes (gloo) fine-tunes the teacher and distils the
    student: both ranks end each stage with the same weights, rank 0 alone writes a complete
    run, and the student is the one a single process trains."""
    from core.models import load_classifier
    from core.pipeline import run_job
    from core.runs import create_run, list_run_objects

    train_csv, dev_csv = sentiment_csv
    spec = {"teacher": headless_encoder,
            "dataset": {"name": train_csv, "validation": dev_csv},
            # logits recipe: every loss term is a mean over rows, so the shares' weighted
            # average is exactly the global batch's loss.
            "recipe": "logits", "baseline": False, "device": "cpu", "seed": 3,
            "train": {"preset": "quick", "epochs": 1, "teacher_epochs": 1, "batch_size": 16,
                      "max_length": 32, "learning_rate": 1e-3, "teacher_learning_rate": 1e-3}}
    spec_file = tmp_path / "job.json"
    spec_file.write_text(json.dumps(spec))
    runs_dir, weights_dir = tmp_path / "runs2", tmp_path / "weights"
    # fp32 on both sides: under bf16 autocast a rank's half batch (padded to its own longest
    # row) rounds differently from the whole batch, and the comparison is of the arithmetic.
    monkeypatch.setenv("DISTILLAB_CPU_BF16", "0")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1", "DISTILLAB_DEBUG_WEIGHTS_DIR": str(weights_dir),
           "PYTHONPATH": str(REPO), "CUDA_VISIBLE_DEVICES": ""}  # gloo on CPU everywhere
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu",
               "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
               "--dynamo_backend", "no", "--main_process_port", str(free_port()),
               "-m", "core", "--runs-dir", str(runs_dir), "run", "--spec", str(spec_file)]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    for stage in ("teacher", "student"):
        digests = [(weights_dir / f"{stage}.rank{r}.sha256").read_text() for r in (0, 1)]
        assert digests[0] == digests[1], f"{stage}: the ranks ended with different weights"

    runs = list_run_objects(runs_dir)
    assert len(runs) == 1, "the second rank made a run folder of its own"
    run = runs[0]
    assert run.status()["state"] == "done"
    assert {"teacher", "student"} <= set(run.models())
    assert {"teacher", "student"} <= set(run.metrics["models"])
    assert not (run.path / "checkpoint" / "student").exists()
    assert any(e.get("stage") == "teacher" for e in run.events(("step",)))  # fine-tuned
    assert any("data-parallel over 2 processes" in e.get("message", "")
               for e in run.events(("log",)))
    assert f"run id: {run.id}" in done.stdout and done.stdout.count("run id:") == 2
    saved = load_classifier(str(run.model_dir("student")))[0]
    student_digest = (weights_dir / "student.rank0.sha256").read_text().strip()
    assert state_dict_digest(saved) == student_digest, "the saved student is not rank 0's"

    one = create_run(spec, tmp_path / "runs1")
    run_job(one)
    single = load_classifier(str(one.model_dir("student")))[0].state_dict()
    for name, value in saved.state_dict().items():
        torch.testing.assert_close(value, single[name], atol=2e-5, rtol=1e-4,
                                   msg=f"{name}: two processes differ from one")
