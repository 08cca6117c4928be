"""CPU inference in single-threaded streams: same answers, same order, threads restored."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from core import cpu_streams
from core.cpu_streams import map_in_streams, stream_count
from core.evaluation import predict_proba

TEXTS = [f"{word} " * n for n, word in enumerate(
    ["fine", "a long and winding story", "bad", "the acting is fine but the script is not",
     "no", "a film", "great great", "two brothers and a farm"] * 3, start=1)]


def test_map_in_streams_keeps_the_order_and_each_streams_thread_state() -> None:
    seen: list[tuple[bool, bool, torch.dtype, int, str]] = []
    lock = threading.Lock()

    def fn(item: int) -> int:
        with lock:
            seen.append((torch.is_inference_mode_enabled(), torch.is_autocast_enabled("cpu"),
                         torch.get_autocast_dtype("cpu"), torch.get_num_threads(),
                         threading.current_thread().name))
        return item * item

    before = torch.get_num_threads()
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert map_in_streams(fn, list(range(40)), streams=2) == [i * i for i in range(40)]
    assert torch.get_num_threads() == before
    assert {s[:4] for s in seen} == {(True, True, torch.bfloat16, max(1, before // 2))}
    assert all(s[4].startswith("distillab-cpu-stream-") for s in seen)


def test_map_in_streams_raises_a_streams_error_and_restores_the_threads() -> None:
    before = torch.get_num_threads()

    def fn(item: int) -> int:
        if item == 5:
            raise ValueError("batch 5 is bad")
        return item

    with pytest.raises(ValueError, match="batch 5 is bad"):
        map_in_streams(fn, list(range(20)), streams=3)
    assert torch.get_num_threads() == before and fresh_thread_count() == before


def fresh_thread_count() -> int:
    seen = []
    thread = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
    thread.start()
    thread.join()
    return seen[0]


def test_overlapping_callers_leave_every_threads_count_as_it_was() -> None:
    before = torch.get_num_threads()
    inside, release = threading.Event(), threading.Event()

    def slow(item: int) -> int:
        inside.set()
        release.wait(10)
        return item

    other = threading.Thread(target=map_in_streams, args=(slow, [1, 2], 2))
    other.start()
    assert inside.wait(10)
    map_in_streams(lambda i: i, [1, 2, 3], 2)  # starts and ends while the other runs
    assert torch.get_num_threads() == before
    release.set()
    other.join()
    assert torch.get_num_threads() == before
    assert fresh_thread_count() == before  # threads started later too


def test_stream_count_follows_the_threads_and_the_override(monkeypatch) -> None:
    monkeypatch.delenv("DISTILLAB_CPU_STREAMS", raising=False)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 16)
    assert stream_count(100) == cpu_streams.MAX_STREAMS
    assert stream_count(3) == 3 and stream_count(1) == 1
    monkeypatch.setenv("DISTILLAB_CPU_STREAMS", "1")
    assert stream_count(100) == 1
    monkeypatch.setenv("DISTILLAB_CPU_STREAMS", "4")
    assert stream_count(100) == 4


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_predictions_in_streams_equal_one_stream(tiny_bert_dir: str, monkeypatch,
                                                 dtype: torch.dtype) -> None:
    """Every batch runs in one thread start to end: streams change nothing but the speed."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    kwargs = {"max_length": 32, "batch_tokens": 48, "cache": False, "dtype": dtype}
    monkeypatch.setenv("DISTILLAB_CPU_STREAMS", "1")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        alone = predict_proba(model, tokenizer, TEXTS, **kwargs)
        monkeypatch.setenv("DISTILLAB_CPU_STREAMS", "3")
        streamed = predict_proba(model, tokenizer, TEXTS, **kwargs)
    finally:
        torch.set_num_threads(before)
    assert streamed.shape == (len(TEXTS), 2)
    np.testing.assert_array_equal(streamed, alone)
