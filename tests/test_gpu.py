"""The engine's CUDA path: training in bf16 with fused AdamW, cached teacher logits, a whole
job. Skipped without CUDA (CI has none); `scripts/gpu_check.sh` runs them on a lent GPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.batching import collate, encode_texts
from core.specs import RECIPES, TrainConfig
from core.train import TrainData, compute_teacher_logits, train
from tests.conftest import TINY_TRAIN_CONFIG_ARGS, make_sentiment_rows, seeded_model, staged

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]
CUDA = torch.device("cuda")
CONFIG = TrainConfig(**TINY_TRAIN_CONFIG_ARGS)


@pytest.fixture()
def data(sentiment_data: TrainData) -> TrainData:
    return sentiment_data


def test_fine_tuning_then_distillation_learn_on_cuda(tiny_bert_dir, data):
    teacher = seeded_model(tiny_bert_dir)
    fitted = train(teacher, data, stage="teacher", recipe=RECIPES["baseline"],
                   config=staged(CONFIG, "teacher", 8, 5e-3), device=CUDA, seed=0)
    assert fitted.best_accuracy >= 0.9
    for recipe in ("logits", "distilbert"):  # cached logits, then the teacher every step
        from core.students import extract_student

        student = extract_student(teacher.float().cpu())
        events = []
        result = train(student, data, stage="student", recipe=RECIPES[recipe],
                       config=staged(CONFIG, "student", 6, 5e-3), device=CUDA, seed=0,
                       teacher=_copy_on_cpu(teacher), on_event=events.append)
        losses = [e["loss"] for e in events if e["type"] == "step"]
        assert all(np.isfinite(losses)), recipe
        assert result.best_accuracy >= 0.85, recipe
        assert next(student.parameters()).device.type == CUDA.type


def _copy_on_cpu(model: torch.nn.Module) -> torch.nn.Module:
    import copy

    return copy.deepcopy(model).float().cpu()


def test_cached_teacher_logits_on_cuda_equal_fresh_bf16_ones(tiny_bert_dir, data):
    teacher = seeded_model(tiny_bert_dir).to(CUDA, dtype=torch.bfloat16).eval()
    encoded = encode_texts(data.tokenizer, data.texts, CONFIG.max_length)
    pad = data.tokenizer.pad_token_id
    cached = compute_teacher_logits(teacher, encoded, pad, CUDA, batch_tokens=200)
    # The same rows one at a time, unpadded: batching by tokens must not change a logit.
    fresh = []
    with torch.inference_mode():
        for i in range(len(data.texts)):
            batch = collate(encoded, np.array([i]), pad, False)
            batch = {k: v.to(CUDA) for k, v in batch.items()}
            fresh.append(teacher(**batch).logits.float())
    torch.testing.assert_close(cached.float(), torch.cat(fresh), atol=2e-2, rtol=2e-2)


def test_a_whole_job_runs_on_cuda(tiny_bert_dir, tmp_path):
    from core.pipeline import run_job
    from core.runs import create_run
    from core.specs import JobSpec

    paths = []
    for name, n, seed in (("train.csv", 160, 0), ("dev.csv", 48, 1)):
        lines = ["text,label"] + [f"{t},{y}" for t, y in make_sentiment_rows(n, seed)]
        (tmp_path / name).write_text("\n".join(lines) + "\n")
        paths.append(str(tmp_path / name))
    spec = JobSpec.from_dict({
        "teacher": tiny_bert_dir, "dataset": {"name": paths[0], "validation": paths[1]},
        "student": {"kind": "extract", "layers": [0, 2]}, "recipe": "distilbert",
        "train": {"epochs": 2, "teacher_epochs": 2, "batch_size": 16, "learning_rate": 5e-3,
                  "teacher_learning_rate": 5e-3, "max_length": 32},
        "seed": 3, "name": "cuda", "device": "cuda"})
    metrics = run_job(create_run(spec.to_dict(), tmp_path / "runs"))["models"]
    assert "student_int8" not in metrics  # dynamic int8 is a CPU model
    for role in ("teacher", "student", "baseline"):
        assert metrics[role]["device"].startswith("cuda"), metrics[role]
        assert metrics[role]["precision"] == "bf16"
        assert 0.0 <= metrics[role]["accuracy"] <= 1.0, role  # 2 epochs: learning is not the point
        assert metrics[role]["latency_ms_p50"] > 0


def test_training_and_inference_run_the_memory_efficient_attention_kernel():
    # cuDNN attention builds a graph per new batch shape (see core.devices.attention_backends);
    # DistilLab's bf16 forwards and backwards must not reach it, with a padding mask or not.
    from transformers import BertConfig, BertForSequenceClassification

    from core.devices import forward_context, training_dtype
    from core.evaluation import inference_session

    config = BertConfig(hidden_size=128, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=256, num_labels=2, attn_implementation="sdpa")
    model = BertForSequenceClassification(config).to(CUDA)
    ids = torch.randint(1000, 2000, (8, 40), device=CUDA)
    mask = torch.ones_like(ids)
    mask[:4, 30:] = 0
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        with forward_context(CUDA, training_dtype(CUDA)):
            loss = model(input_ids=ids, attention_mask=mask).logits.float().sum()
        loss.backward()
        with inference_session(model, CUDA):
            model(input_ids=ids, attention_mask=mask)
        torch.cuda.synchronize()
    ops = {event.name for event in prof.events()}
    assert not any("cudnn_attention" in op for op in ops), sorted(ops)
    assert "aten::_scaled_dot_product_efficient_attention" in ops, sorted(ops)
