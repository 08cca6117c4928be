"""core.speed timers and the core.devices facts they report (device, precision, threads)."""

from __future__ import annotations

import math
import os
import re

import pytest
import torch

from core.devices import (
    configure_cpu_threads,
    cpu_has_native_bf16,
    describe_device,
    inference_dtype,
    is_int8_quantized,
    precision_name,
    resolve_device,
)
from core.speed import gc_paused, measure_speed, percentile_ms

TEXTS = [
    "short one",
    "a somewhat longer sentence about the quarterly results of a company",
    "the match ended in a draw after extra time " * 10,
]

TIMED_FIELDS = ("latency_ms_p50", "latency_ms_p95", "model_latency_ms_p50",
                "model_latency_ms_p95", "throughput_per_s", "model_throughput_per_s")


@pytest.fixture(scope="module")
def tiny_model(tiny_bert_dir: str):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir)
    return model, AutoTokenizer.from_pretrained(tiny_bert_dir)


def test_percentile_ms_on_known_values():
    samples = [i / 1000 for i in range(1, 11)]  # 1 ms .. 10 ms
    assert percentile_ms(samples, 50) == pytest.approx(5.5)
    assert percentile_ms(samples, 95) == pytest.approx(9.55)
    assert percentile_ms(samples, 0) == pytest.approx(1.0)
    assert percentile_ms(samples, 100) == pytest.approx(10.0)
    assert percentile_ms([0.002], 95) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="no timing samples"):
        percentile_ms([], 50)


def test_measure_speed_reports_positive_timings_and_the_setup(tiny_model):
    model, tokenizer = tiny_model
    result = measure_speed(model, tokenizer, TEXTS, max_length=32, device="cpu",
                           latency_samples=6, warmup=1, large_batch=4, throughput_texts=10)
    for name in TIMED_FIELDS:
        assert math.isfinite(result[name]) and result[name] > 0, name
    assert result["latency_ms_p95"] >= result["latency_ms_p50"]
    assert result["model_latency_ms_p95"] >= result["model_latency_ms_p50"]
    assert result["device"].startswith("cpu (")
    assert result["precision"] == precision_name(inference_dtype("cpu", model))
    assert result["attention"] == "sdpa"
    assert result["threads"] == torch.get_num_threads()
    assert result["latency_batch"] == 1
    assert result["throughput_batch"] == 4
    assert result["max_length"] == 32
    lengths = [len(ids) for ids in tokenizer(TEXTS, truncation=True, max_length=32)["input_ids"]]
    assert min(lengths) <= result["mean_tokens"] <= max(lengths)
    assert result["peak_memory_mb"] is None
    assert set(result["timer_includes"]) == {"latency_ms", "model_latency_ms",
                                             "throughput_per_s", "model_throughput_per_s"}


def test_measure_speed_records_a_requested_precision_and_keeps_the_model_mode(tiny_model):
    model, tokenizer = tiny_model
    model.train()
    try:
        result = measure_speed(model, tokenizer, TEXTS, max_length=16, device="cpu",
                               dtype=torch.bfloat16, latency_samples=2, warmup=0,
                               large_batch=2, throughput_texts=3)
        assert model.training
    finally:
        model.eval()
    assert result["precision"] == "bf16"
    assert result["throughput_per_s"] > 0


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised without CUDA")
def test_resolve_device_cuda_without_cuda_raises_a_clear_error():
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_device("cuda")
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_device("cuda:1")


def test_resolve_device_names():
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else (
        "mps" if torch.backends.mps.is_available() else "cpu")
    assert resolve_device("auto").type == expected
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        resolve_device("tpu")


def test_describe_device_and_precision_on_cpu(monkeypatch: pytest.MonkeyPatch):
    assert re.fullmatch(r"cpu \(.+, \d+ threads\)", describe_device("cpu"))
    native = cpu_has_native_bf16()
    assert inference_dtype("cpu") == (torch.bfloat16 if native else torch.float32)
    monkeypatch.setenv("DISTILLAB_CPU_BF16", "0")
    assert not cpu_has_native_bf16() and inference_dtype("cpu") == torch.float32
    monkeypatch.setenv("DISTILLAB_CPU_BF16", "1")
    assert inference_dtype("cpu") == torch.bfloat16
    assert precision_name(torch.float32) == "fp32"
    assert precision_name(torch.bfloat16) == "bf16"


def test_int8_models_get_fp32_inputs_by_default(tiny_model):
    from core.quantize import int8_supported, quantize_dynamic_int8

    model, _ = tiny_model
    if not int8_supported():
        pytest.skip("no quantised CPU engine")
    assert inference_dtype("cpu", quantize_dynamic_int8(model)) == torch.float32
    assert not is_int8_quantized(model)


def test_configure_cpu_threads_stays_within_the_available_cpus(
        monkeypatch: pytest.MonkeyPatch):
    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    available = len(os.sched_getaffinity(0))
    try:
        torch.set_num_threads(available * 4)  # as torch counts a container's host cores
        configure_cpu_threads()
        assert torch.get_num_threads() == available
        monkeypatch.setenv("OMP_NUM_THREADS", str(available * 4))  # an explicit choice stays
        torch.set_num_threads(available * 4)
        configure_cpu_threads()
        assert torch.get_num_threads() == available * 4
    finally:
        torch.set_num_threads(before)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_measure_speed_on_cuda_reports_the_gpu_and_bf16(tiny_bert_dir: str):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    result = measure_speed(model, tokenizer, TEXTS, max_length=32, device="cuda",
                           latency_samples=10, warmup=2, large_batch=8, throughput_texts=32)
    assert re.fullmatch(r"cuda:\d+ \(.+\)", result["device"])
    assert result["precision"] == "bf16"
    for name in TIMED_FIELDS:
        assert math.isfinite(result[name]) and result[name] > 0, name
    assert result["latency_ms_p95"] >= result["latency_ms_p50"]
    assert result["peak_memory_mb"] > 0


def test_gc_paused_stops_the_collector_and_only_sweeps_the_young_generations(monkeypatch):
    # A full collection of a process holding gradio took ~0.4 s, paid per model, round and
    # Compare text: the pause collects generations 0-1 and leaves the old one alone.
    import gc

    generations = []
    monkeypatch.setattr(gc, "collect", lambda generation=2: generations.append(generation))
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled() and generations == [1]
