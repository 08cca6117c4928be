"""Static batch shapes and CUDA graphs (core.cuda_graphs): the shape rules everywhere, the
graphs themselves where CUDA is (`scripts/gpu_check.sh` runs those on a lent GPU)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from core import cuda_graphs
from core.batching import EncodedTexts, batches_by_tokens, collate, round_width
from core.cuda_graphs import graphs_enabled, row_bucket, width_cap, width_multiple

CUDA = torch.device("cuda")


def test_widths_round_up_to_the_multiple_but_never_below_the_row_or_past_the_cap():
    assert [round_width(n, 32) for n in (1, 13, 32, 33, 64, 65)] == [32, 32, 32, 64, 64, 96]
    assert round_width(13, 1) == 13
    assert round_width(500, 32, cap=510) == 510  # 512 would pass a 512-position model
    assert round_width(512, 32, cap=510) == 512  # the row itself is never cut
    assert width_multiple("cpu") == 1 and width_multiple("cuda") == cuda_graphs.WIDTH_MULTIPLE


def test_rows_pad_to_a_power_of_two_within_the_full_batch():
    assert [row_bucket(n, 512) for n in (1, 3, 4, 5, 100, 300, 512)] == [1, 4, 4, 8, 128, 512,
                                                                        512]
    assert row_bucket(300, 341) == 341  # never past the largest batch of that width


def test_collate_pads_to_a_static_shape_and_keeps_every_real_token():
    encoded = EncodedTexts([[101, 5, 6, 102], [101, 7, 102], [101, 8, 9, 10, 11, 102]])
    batch = collate(encoded, [0, 1], pad_token_id=0, width_multiple=8, rows=4)
    assert batch["input_ids"].shape == (4, 8)
    assert batch["input_ids"][0, :4].tolist() == [101, 5, 6, 102]
    assert batch["input_ids"][1, :3].tolist() == [101, 7, 102]
    assert batch["attention_mask"].sum(dim=1).tolist() == [4, 3, 1, 1]  # padding rows: one token
    plain = collate(encoded, [2, 0], pad_token_id=0)
    assert plain["input_ids"].shape == (2, 6)


def test_token_budget_counts_the_rounded_width():
    lengths = np.array([33] * 10 + [5] * 10)
    batches = batches_by_tokens(lengths, max_tokens=128, max_batch_size=64, width_multiple=32)
    assert [len(b) for b in batches][:5] == [2, 2, 2, 2, 2]  # 64 wide: 2 rows of 128 tokens
    assert sorted(np.concatenate(batches).tolist()) == list(range(20))


def test_graphs_are_opt_in_and_only_on_cuda(monkeypatch):
    monkeypatch.delenv("DISTILLAB_CUDA_GRAPHS", raising=False)
    assert not graphs_enabled("cuda")  # until a GPU run has measured them
    monkeypatch.setenv("DISTILLAB_CUDA_GRAPHS", "1")
    assert graphs_enabled("cuda") and not graphs_enabled("cpu")
    monkeypatch.setenv("DISTILLAB_CUDA_GRAPHS", "0")
    assert not graphs_enabled("cuda")


def test_a_ready_4d_mask_gives_the_same_logits_as_the_2d_one(tiny_bert_dir):
    # What model_attention_mask relies on for this transformers version (checked per model
    # on CUDA before use); also the width cap read from the model.
    from tests.conftest import seeded_model

    model = seeded_model(tiny_bert_dir)
    model.config._attn_implementation = "sdpa"
    assert cuda_graphs._probe_4d_mask(model, torch.device("cpu"))
    assert width_cap(model) == model.config.max_position_embeddings - 2


# On CUDA --------------------------------------------------------------------------------------


def _texts(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    words = ["good", "bad", "film", "plot", "actor", "scene", "long", "short", "story",
             "music", "dull", "great"]
    return [" ".join(rng.choice(words, size=int(rng.integers(1, 60)))) for _ in range(n)]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_graphed_inference_equals_eager_over_many_shapes(tiny_bert_dir, monkeypatch):
    from transformers import AutoTokenizer

    from core.evaluation import predict_proba
    from tests.conftest import seeded_model

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    model = seeded_model(tiny_bert_dir).to(CUDA).eval()
    texts = _texts(300, 0)
    monkeypatch.setenv("DISTILLAB_CUDA_GRAPHS", "0")
    eager = predict_proba(model, tokenizer, texts, max_length=64, device=CUDA,
                          batch_tokens=512, cache=False)
    monkeypatch.setenv("DISTILLAB_CUDA_GRAPHS", "1")
    cuda_graphs.STATS.reset()
    rng = np.random.default_rng(1)
    for _ in range(3):  # shapes recur in other orders: eager, captured, replayed
        order = rng.permutation(len(texts))
        graphed = predict_proba(model, tokenizer, [texts[i] for i in order], max_length=64,
                                device=CUDA, batch_tokens=512, cache=False)
        np.testing.assert_allclose(graphed, eager[order], atol=1e-2)
    stats = cuda_graphs.STATS
    assert stats.failures == [] and stats.captures > 0 and stats.replays > stats.captures


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("recipe", ["logits", "distilbert"])
def test_graphed_training_steps_equal_eager_ones(tiny_bert_dir, sentiment_data, monkeypatch,
                                                recipe):
    # Dropout off, so the graphed and the eager run draw nothing random and must agree.
    from core.specs import RECIPES, TrainConfig
    from core.students import extract_student
    from core.train import train
    from tests.conftest import TINY_TRAIN_CONFIG_ARGS, seeded_model, staged

    teacher = seeded_model(tiny_bert_dir)
    teacher.config.hidden_dropout_prob = teacher.config.attention_probs_dropout_prob = 0.0
    student = extract_student(teacher)
    for module in student.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    config = TrainConfig(**{**TINY_TRAIN_CONFIG_ARGS, "batch_size": 8})
    results = {}
    for graphs in ("0", "1"):
        monkeypatch.setenv("DISTILLAB_CUDA_GRAPHS", graphs)
        cuda_graphs.STATS.reset()
        model, events = copy.deepcopy(student), []
        train(model, sentiment_data, stage="student", recipe=RECIPES[recipe],
              config=staged(config, "student", 3, 5e-3), device=CUDA, seed=0,
              teacher=copy.deepcopy(teacher), on_event=events.append)
        results[graphs] = (model, [e["loss"] for e in events if e["type"] == "step"],
                           copy.deepcopy(cuda_graphs.STATS))
    (eager, eager_losses, _), (graphed, graphed_losses, stats) = results["0"], results["1"]
    assert stats.failures == [] and stats.captures > 0 and stats.replays > 0
    np.testing.assert_allclose(graphed_losses, eager_losses, rtol=5e-2, atol=5e-3)
    for (name, a), (_, b) in zip(eager.named_parameters(), graphed.named_parameters(),
                                 strict=True):
        assert torch.linalg.norm(a - b) <= 5e-2 * torch.linalg.norm(a) + 1e-4, name


def test_static_shapes_do_not_change_a_prediction_or_a_loss(tiny_bert_dir, monkeypatch):
    # What CUDA does by default (widths rounded to 32 tokens, padding rows), checked here on
    # the CPU against the exact shapes (the 4-D mask: test_a_ready_4d_mask_gives...).
    from transformers import AutoTokenizer

    import core.evaluation as evaluation
    import core.train as train_module
    from core.evaluation import predict_proba
    from tests.conftest import seeded_model

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    model = seeded_model(tiny_bert_dir).eval()
    texts = _texts(90, 3)
    exact = predict_proba(model, tokenizer, texts, max_length=64, batch_tokens=300,
                          dtype=torch.float32, cache=False)
    monkeypatch.setattr(evaluation, "width_multiple", lambda device: 32)
    monkeypatch.setattr(evaluation, "graphs_enabled", lambda device: False)
    real_collate = evaluation.collate

    def padded_rows(encoded, indices, pad_id, **kwargs):
        return real_collate(encoded, indices, pad_id, **{**kwargs, "rows": 2 * len(indices)})

    monkeypatch.setattr(evaluation, "collate", padded_rows)
    rounded = predict_proba(model, tokenizer, texts, max_length=64, batch_tokens=300,
                            dtype=torch.float32, cache=False)
    np.testing.assert_allclose(rounded, exact, atol=1e-5)
    assert train_module.width_multiple("cpu") == 1  # CPUs train on exact widths
