"""The one training loop: learning, teacher-logit cache, cancel and resume."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification

from core.batching import encode_texts
from core.losses import IGNORE_LABEL
from core.optim import make_optimizer
from core.specs import RECIPES, TrainConfig
from core.train import Cancelled, TrainData, compute_teacher_logits, train
from tests.conftest import TINY_TRAIN_CONFIG_ARGS, seeded_model, staged

CONFIG = TrainConfig(**TINY_TRAIN_CONFIG_ARGS)


@pytest.fixture()
def data(sentiment_data: TrainData) -> TrainData:
    return sentiment_data


@pytest.mark.parametrize("cpu_bf16", ["0", "1"])  # fp32, and bf16 autocast as on AVX512-BF16
def test_fine_tuning_learns_a_separable_task(tiny_bert_dir, data, monkeypatch, cpu_bf16):
    monkeypatch.setenv("DISTILLAB_CPU_BF16", cpu_bf16)
    model = seeded_model(tiny_bert_dir)
    events = []
    result = train(model, data, stage="teacher", recipe=RECIPES["baseline"],
                   config=staged(CONFIG, "teacher", 8, 5e-3), device=torch.device("cpu"),
                   seed=0, on_event=events.append)
    assert result.best_accuracy >= 0.9
    assert [e["epoch"] for e in events if e["type"] == "epoch"] == list(range(1, 9))
    assert any(e["type"] == "step" and e["total_steps"] > 0 for e in events)


def test_cached_teacher_logits_equal_fresh_ones(tiny_bert_dir, data, monkeypatch):
    monkeypatch.setenv("DISTILLAB_CPU_BF16", "0")  # compare like with like: fp32 both sides
    teacher = seeded_model(tiny_bert_dir).eval()
    encoded = encode_texts(data.tokenizer, data.texts, CONFIG.max_length)
    cached = compute_teacher_logits(teacher, encoded, data.tokenizer.pad_token_id,
                                    torch.device("cpu"), batch_tokens=200)
    with torch.no_grad():
        fresh = teacher(**data.tokenizer(list(data.texts), padding="max_length", truncation=True,
                                         max_length=CONFIG.max_length,
                                         return_tensors="pt")).logits
    torch.testing.assert_close(cached, fresh, atol=1e-5, rtol=1e-4)


def test_distillation_uses_transfer_rows_without_labels(tiny_bert_dir, data):
    teacher = seeded_model(tiny_bert_dir, seed=1)
    student = seeded_model(tiny_bert_dir, seed=2)
    labels = data.labels.copy()
    labels[::2] = IGNORE_LABEL  # half the rows are unlabelled transfer texts
    partly_labelled = TrainData(data.tokenizer, data.texts, labels, data.validation_texts,
                                data.validation_labels, data.label_names)
    unlabelled = TrainData(data.tokenizer, data.texts, np.full_like(labels, IGNORE_LABEL),
                           data.validation_texts, data.validation_labels, data.label_names)

    def gap_to_teacher(model: torch.nn.Module) -> float:
        """KL(teacher || model) on the validation texts."""
        batch = data.tokenizer(data.validation_texts, padding=True, truncation=True,
                               max_length=CONFIG.max_length, return_tensors="pt")
        with torch.no_grad():
            target = torch.log_softmax(teacher.eval()(**batch).logits, -1)
            ours = torch.log_softmax(model.eval()(**batch).logits, -1)
        return float(torch.sum(target.exp() * (target - ours), -1).mean())

    result = train(student, partly_labelled, stage="student", recipe=RECIPES["distilbert"],
                   config=staged(CONFIG, "student", 1, 1e-3), device=torch.device("cpu"),
                   seed=0, teacher=teacher)
    assert np.isfinite(result.history[0]["train_loss"])
    # With no labels at all, only the teacher's soft targets and hidden states can teach:
    # the student must move towards the teacher.
    only_transfer = seeded_model(tiny_bert_dir, seed=2)
    torch.manual_seed(5)  # a head of its own: the tiny folder's saved head is the teacher's
    only_transfer.classifier.reset_parameters()
    before = gap_to_teacher(only_transfer)
    assert before > 1e-4
    train(only_transfer, unlabelled, stage="student", recipe=RECIPES["distilbert"],
          config=staged(CONFIG, "student", 2, 1e-3), device=torch.device("cpu"), seed=0,
          teacher=teacher)
    assert gap_to_teacher(only_transfer) < 0.5 * before


def test_distillation_without_a_teacher_is_refused(tiny_bert_dir, data):
    with pytest.raises(ValueError, match="needs a teacher"):
        train(seeded_model(tiny_bert_dir), data, stage="student", recipe=RECIPES["logits"],
              config=staged(CONFIG, "student", 1, 1e-3), device=torch.device("cpu"), seed=0)


def test_cancel_then_resume_ends_like_an_uninterrupted_run(tiny_bert_dir, data, tmp_path):
    teacher = seeded_model(tiny_bert_dir, seed=1).eval()
    common = dict(stage="student", recipe=RECIPES["distilbert"],
                  config=staged(CONFIG, "student", 2, 1e-3), device=torch.device("cpu"), seed=7,
                  teacher=teacher)

    uninterrupted = seeded_model(tiny_bert_dir, seed=3)
    full = train(uninterrupted, data, checkpoint_dir=tmp_path / "full", **common)

    polls = {"n": 0}

    def cancel_mid_second_epoch() -> bool:
        polls["n"] += 1
        return polls["n"] == 15  # 10 batches per epoch: this is inside epoch 2

    interrupted = seeded_model(tiny_bert_dir, seed=3)
    with pytest.raises(Cancelled):
        train(interrupted, data, checkpoint_dir=tmp_path / "cut",
              should_cancel=cancel_mid_second_epoch, **common)
    assert (tmp_path / "cut" / "state.pt").exists()

    resumed_model = seeded_model(tiny_bert_dir, seed=99)  # weights come from the checkpoint
    events = []
    resumed = train(resumed_model, data, checkpoint_dir=tmp_path / "cut",
                    on_event=events.append, **common)
    assert events[0]["type"] == "resumed" and events[0]["epoch"] == 1
    assert resumed.best_epoch == full.best_epoch
    assert resumed.best_accuracy == full.best_accuracy
    for (name, a), b in zip(uninterrupted.state_dict().items(),
                            resumed_model.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, msg=f"{name} differs after resume")


def test_eval_batch_tokens_reaches_validation_and_the_teacher_logits(tiny_bert_dir, data,
                                                                     monkeypatch):
    import dataclasses

    from core import evaluation

    budgets = []
    for name in ("predict_proba", "predict_logits_encoded"):
        real = getattr(evaluation, name)

        def spy(*args, _real=real, **kwargs):
            budgets.append(kwargs.get("batch_tokens"))
            return _real(*args, **kwargs)

        monkeypatch.setattr(evaluation, name, spy)
    config = dataclasses.replace(CONFIG, eval_batch_tokens=96)
    teacher = seeded_model(tiny_bert_dir, seed=1)
    train(seeded_model(tiny_bert_dir), data, stage="student", recipe=RECIPES["logits"],
          config=staged(config, "student", 1, 5e-3), device=torch.device("cpu"), seed=0,
          teacher=teacher)
    assert budgets and set(budgets) == {96}  # the teacher's logits, then each validation


def test_a_negative_eval_batch_tokens_is_refused():
    from core.specs import SpecError

    with pytest.raises(SpecError, match="eval_batch_tokens"):
        TrainConfig(eval_batch_tokens=-1)


@pytest.mark.skipif(not any(shutil.which(c) for c in ("g++", "c++", "clang++")),
                    reason="torch.compile on a CPU needs a C++ compiler")
@pytest.mark.slow
def test_compiled_training_matches_eager_training(tiny_bert_dir, data, monkeypatch):
    # --compile wraps the student's forward in torch.compile (~30 s of compilation here).
    # Inductor draws dropout masks from its own generator unless told to fall back to eager's;
    # with different masks the two runs train on different noise and only roughly agree.
    import dataclasses

    import torch._inductor.config as inductor_config

    monkeypatch.setattr(inductor_config, "fallback_random", True)
    # Each graph's kernels and wrapper in one C++ module, compiled once (the same kernels as
    # the default Python wrapper calls, one compiler run instead of ~26: 37 s -> 31 s cold).
    monkeypatch.setattr(inductor_config, "cpp_wrapper", True)
    # One compilation with symbolic sequence lengths instead of a static one that the
    # batches' second length then recompiles (half the test's time on a cold cache).
    monkeypatch.setattr(torch._dynamo.config, "assume_static_by_default", False)
    monkeypatch.setenv("DISTILLAB_CPU_BF16", "0")  # compilation, not precision, is under test
    losses = {}
    for compiled in (False, True):
        config = dataclasses.replace(CONFIG, compile=compiled)
        torch.manual_seed(0)  # one layer of the tiny BERT: compilation time grows with depth
        model = AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir,
                                                                   num_hidden_layers=1)
        result = train(model, data, stage="student",
                       recipe=RECIPES["baseline"], config=staged(config, "student", 2, 5e-3),
                       device=torch.device("cpu"), seed=0)
        losses[compiled] = [row["train_loss"] for row in result.history]
    assert losses[True] == pytest.approx(losses[False], abs=2e-4)



def test_the_cpu_optimizer_is_fused_and_matches_the_per_tensor_adamw(tiny_bert_dir):
    fused_model, plain_model = seeded_model(tiny_bert_dir), seeded_model(tiny_bert_dir)
    fused = make_optimizer(fused_model, 1e-2, 0.01, torch.device("cpu"))
    assert all(group["fused"] for group in fused.param_groups)
    # The same groups (decay / no decay) over the twin model, with the per-tensor kernel.
    names = {id(p): n for n, p in fused_model.named_parameters()}
    twins = dict(plain_model.named_parameters())
    plain = torch.optim.AdamW([{**group, "fused": None, "params": [twins[names[id(p)]]
                                                                   for p in group["params"]]}
                               for group in fused.param_groups])
    generator = torch.Generator().manual_seed(0)
    for _ in range(3):
        for name, param in fused_model.named_parameters():
            param.grad = torch.randn(param.shape, generator=generator)
            twins[name].grad = param.grad.clone()
        fused.step()
        plain.step()
    for name, param in fused_model.named_parameters():
        torch.testing.assert_close(param, twins[name], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize(("cpu_bf16", "expected"), [("1", torch.bfloat16), ("0", torch.float32)])
def test_training_steps_autocast_to_bf16_where_the_cpu_allows(tiny_bert_dir, monkeypatch,
                                                              cpu_bf16, expected):
    from core.devices import forward_context, training_dtype

    monkeypatch.setenv("DISTILLAB_CPU_BF16", cpu_bf16)
    model = seeded_model(tiny_bert_dir)
    batch = {"input_ids": torch.tensor([[101, 2023, 102]]),
             "attention_mask": torch.ones(1, 3, dtype=torch.long)}
    cpu = torch.device("cpu")
    with forward_context(cpu, training_dtype(cpu)):
        logits = model(**batch).logits
    assert logits.dtype == expected
    assert next(model.parameters()).dtype == torch.float32  # master weights stay fp32


def test_a_checkpoint_restores_the_whole_train_state(tmp_path):
    from core.checkpoints import TrainState, load_checkpoint, save_checkpoint

    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5 ** step)
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    scheduler.step()
    state = TrainState(epoch=2, batch=7, history=[{"epoch": 1, "val_loss": 0.5}],
                       best_score=0.81, best_epoch=1, epoch_loss_sum=3.5, epoch_rows=14)
    save_checkpoint(tmp_path / "state.pt", model, optimizer, scheduler, state)
    torch.rand(5)  # moves the RNG on: loading must put it back
    fresh = torch.nn.Linear(3, 2)
    fresh_optimizer = torch.optim.AdamW(fresh.parameters(), lr=0.1)
    fresh_scheduler = torch.optim.lr_scheduler.LambdaLR(fresh_optimizer, lambda step: 1.0)
    restored = load_checkpoint(tmp_path / "state.pt", fresh, fresh_optimizer, fresh_scheduler)
    assert restored == state
    assert torch.equal(fresh.weight, model.weight)
    assert fresh_scheduler.last_epoch == 1 and fresh_optimizer.state_dict()["state"]
