"""core.quantize: the dynamic int8 student agrees with fp32, is smaller, and is scored."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from core.quantize import (
    INT8_MARKER_FILE,
    INT8_PRECISION,
    INT8_WEIGHTS_FILE,
    int8_supported,
    quantize_dynamic_int8,
    read_marker,
    serialized_size_bytes,
)

pytestmark = [pytest.mark.skipif(not int8_supported(), reason="no quantised CPU engine"),
              pytest.mark.usefixtures("one_torch_thread")]


@pytest.fixture(scope="module")
def trained_tiny(tiny_bert_dir: str):
    """The tiny BERT trained by ``core.train.train`` on synthetic reviews until it is right.

    A random head leaves most examples within rounding distance of a tie, so its int8 and
    fp32 predictions would differ by coin flips. (MiniLM with a probe fitted on its pooled
    features is no better: the untrained pooler's outputs hardly vary between texts, and
    the probe turns that into near-ties.) A trained model has real margins, as a student
    scored by a run has.
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from core.specs import RECIPES, StageSettings, TrainConfig
    from core.train import TrainData, train
    from tests.conftest import make_sentiment_rows

    def split(n: int, seed: int) -> tuple[list[str], np.ndarray]:
        rows = make_sentiment_rows(n, seed)
        return [t for t, _ in rows], np.array([int(label == "positive") for _, label in rows])

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir)
    (texts, labels), (val_texts, val_labels) = split(240, 0), split(120, 1)
    data = TrainData(tokenizer, texts, labels, val_texts, val_labels, ["negative", "positive"])
    config = TrainConfig(student=StageSettings(4, 3e-3), batch_size=8, max_length=32)
    result = train(model, data, stage="student", recipe=RECIPES["baseline"], config=config,
                   device=torch.device("cpu"), seed=0)
    assert result.best_accuracy >= 0.9  # it learnt the task, so its margins are real
    return model.eval(), tokenizer, val_texts


def test_int8_predictions_agree_with_fp32_on_a_trained_model(trained_tiny):
    from core.evaluation import predict_proba
    from core.scores import agreement

    model, tokenizer, texts = trained_tiny
    quantized = quantize_dynamic_int8(model)
    full = predict_proba(model, tokenizer, texts, max_length=32)
    low = predict_proba(quantized, tokenizer, texts, max_length=32)
    # Per-channel int8 weights move the probabilities by about 1e-3 here; only a near-tie
    # could flip, and a trained model has few.
    assert agreement(full.argmax(1), low.argmax(1)) >= 0.9
    np.testing.assert_allclose(low.sum(axis=1), 1.0, atol=1e-5)


def test_quantised_student_is_smaller_and_the_original_is_left_alone(minilm_path: str):
    from transformers import AutoModelForSequenceClassification

    from core.students import extract_student

    teacher = AutoModelForSequenceClassification.from_pretrained(minilm_path, num_labels=2)
    student = extract_student(teacher).eval()
    before = {k: v.clone() for k, v in student.state_dict().items()}
    quantized = quantize_dynamic_int8(student)
    query = quantized.bert.encoder.layer[0].attention.self.query
    assert type(query).__module__.startswith("torch.ao.nn.quantized.dynamic")
    assert query.weight().dtype == torch.qint8
    assert type(student.bert.encoder.layer[0].attention.self.query) is torch.nn.Linear
    for key, value in student.state_dict().items():
        assert torch.equal(value, before[key]), key
    # The Linear weights shrink 4x; the fp32 word embeddings (11.7M of the 3-layer
    # student's 17.4M parameters) do not, so the whole state dict shrinks by about a quarter.
    assert serialized_size_bytes(quantized) < 0.8 * serialized_size_bytes(student)
    assert quantized.config.num_labels == student.config.num_labels


def test_score_run_adds_the_int8_student_on_cpu(tmp_path, tiny_bert_dir: str,
                                                 monkeypatch: pytest.MonkeyPatch):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from core import scoring
    from core.runs import create_run
    from core.scoring import INT8_ROLE, score_run
    from tests.conftest import make_sentiment_rows

    monkeypatch.setattr(scoring, "SPEED_TEXTS", 16)  # timing is not what this test checks
    run = create_run({"name": "int8"}, tmp_path)
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir)
    for role in ("teacher", "student"):
        model.save_pretrained(run.model_dir(role))
        tokenizer.save_pretrained(run.model_dir(role))
    rows = make_sentiment_rows(24)

    class Data:
        validation_texts = [text for text, _ in rows]
        validation_labels = [int(label == "positive") for _, label in rows]
        label_names = ["negative", "positive"]
        train_texts: list[str] = []
        transfer_texts: list[str] = []
        description = "synthetic"

    metrics = score_run(run, Data(), max_length=32, device="cpu")
    assert run.models() == ["teacher", "student"]  # the int8 folder is no from_pretrained one
    int8, student = metrics["models"][INT8_ROLE], metrics["models"]["student"]
    assert int8["precision"] == INT8_PRECISION and int8["quantized_from"] == "student"
    assert int8["params"] == student["params"]
    assert 0 < int8["size_mb"] < student["size_mb"]
    assert int8["latency_ms_p50"] > 0 and int8["throughput_per_s"] > 0
    assert 0 <= int8["agreement_with_teacher"] <= 1
    folder = run.model_dir(INT8_ROLE)
    assert (folder / INT8_WEIGHTS_FILE).stat().st_size / 1e6 == pytest.approx(int8["size_mb"])
    assert read_marker(folder)["source_role"] == "student"
    assert (folder / INT8_MARKER_FILE).exists() and not (folder / "config.json").exists()
    table = pd.read_parquet(run.path / "predictions.parquet")
    assert f"{INT8_ROLE}_pred" in table.columns and len(table) == len(rows)
