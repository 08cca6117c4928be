"""Honest latency and throughput numbers for a text classifier.

Every figure is measured after warm-up, with ``time.perf_counter``, the garbage collector
paused, and, on CUDA, a ``torch.cuda.synchronize`` on both sides of the timed region
(kernels run asynchronously; a timer stopped without a sync measures the launch, not the
work). Two views of each number:

* end-to-end: what a caller waits for, from raw text to a predicted label on the host
  (tokenisation included, uncached), through DistilLab's own prediction path;
* model-only: the forward pass alone, inputs already on the device.

Latency is reported as the median (p50) and p95 of many batch-1 calls; throughput as the
median of ``throughput_repeats`` timed passes over the same texts.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from core.batching import collate, encode_uncached
from core.devices import (
    default_batch_tokens,
    describe_device,
    inference_dtype,
    precision_name,
    prefer_sdpa,
)
from core.evaluation import inference_session, predict_proba
from core.inference import end_to_end_one, one_batch, pad_id_of

logger = logging.getLogger(__name__)

TIMER_INCLUDES = {
    "latency_ms": "batch 1, end-to-end: tokenise one text, copy to device, forward, softmax, "
                  "argmax copied to host",
    "model_latency_ms": "batch 1, forward pass only; inputs already on the device",
    "throughput_per_s": "end-to-end over throughput_texts texts: tokenise (uncached), "
                        "length-sorted batches of at most throughput_batch rows and "
                        "throughput_batch_tokens padded tokens, copy, forward, softmax, "
                        "probabilities copied to host; median of throughput_repeats passes",
    "model_throughput_per_s": "forward passes only over length-sorted batches of "
                              "throughput_batch rows, pre-tokenised, padded to each batch's "
                              "longest row, already on the device; median of "
                              "throughput_repeats passes",
}


def percentile_ms(samples_s: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100, linear interpolation) of durations, in milliseconds.

    Args:
        samples_s: durations in seconds.
        q: the percentile, e.g. 50 or 95.
    Returns:
        The percentile in milliseconds.
    """
    if len(samples_s) == 0:
        raise ValueError("no timing samples")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be in [0, 100], got {q}")
    return float(np.percentile(np.asarray(samples_s, dtype=np.float64), q) * 1000.0)


def sync(device: torch.device | str) -> None:
    """Wait for the device's queued work (a no-op on CPU)."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector: a collection inside a timed call is noise.

    Only the young generations are collected first: a full collection of a process that
    holds gradio or a test suite takes ~0.4 s, and this runs once per model, round and text
    shown in Compare; timing's entry point collects fully once (core.timing.time_models).
    """
    enabled = gc.isenabled()
    gc.collect(1)
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def measure_speed(model: Any, tokenizer: Any, texts: Sequence[str], *, max_length: int,
                  device: torch.device | str, dtype: torch.dtype | None = None,
                  latency_samples: int = 30, warmup: int = 3, large_batch: int = 64,
                  throughput_texts: int = 256, batch_tokens: int | None = None,
                  throughput_repeats: int = 3, latency: bool = True) -> dict[str, Any]:
    """Latency at batch 1 and throughput at large batch, end-to-end and model-only.

    Args:
        model: a sequence classifier returning ``.logits``; moved to ``device`` if elsewhere.
        tokenizer: its tokenizer.
        texts: sample texts; latency cycles through them from the start, throughput uses
            ``throughput_texts`` of them (evenly spaced, or cycled when there are fewer).
        max_length: truncation length in tokens.
        device: where to run.
        dtype: compute precision; default ``inference_dtype(device, model)``.
        latency_samples: timed batch-1 calls (each view).
        warmup: untimed batch-1 calls before the latency timers (each view).
        large_batch: rows per batch for throughput (the most rows per end-to-end batch).
        throughput_texts: texts per throughput measurement.
        batch_tokens: padded-token budget of an end-to-end throughput batch; default
            ``default_batch_tokens(device)``.
        throughput_repeats: timed passes per throughput view; the median is reported.
        latency: time batch-1 latency too (False: throughput only, without the four
            ``latency`` keys; ``core.timing`` times latency itself, models interleaved).
    Returns:
        ``latency_ms_p50``, ``latency_ms_p95``, ``model_latency_ms_p50``,
        ``model_latency_ms_p95``, ``throughput_per_s``, ``model_throughput_per_s``,
        ``device``, ``precision``, ``attention``, ``threads``, ``latency_batch``,
        ``throughput_batch``, ``throughput_batch_tokens``, ``throughput_repeats``,
        ``max_length``, ``mean_tokens`` (of the throughput texts), ``peak_memory_mb`` (CUDA
        only, else None) and ``timer_includes``.
    """
    if not texts:
        raise ValueError("measure_speed needs at least one text")
    if (latency_samples < 1 or throughput_texts < 1 or large_batch < 1 or warmup < 0
            or throughput_repeats < 1):
        raise ValueError("latency_samples, throughput_texts, large_batch and "
                         "throughput_repeats must be >= 1, warmup >= 0")
    device = torch.device(device)
    dtype = inference_dtype(device, model) if dtype is None else dtype
    batch_tokens = default_batch_tokens(device) if batch_tokens is None else batch_tokens
    pad_id = pad_id_of(tokenizer)
    attention = prefer_sdpa(model)

    latency_texts = [texts[i % len(texts)] for i in range(warmup + latency_samples)]
    bulk_texts = _spread(texts, throughput_texts)
    result: dict[str, Any] = {}
    with inference_session(model, device, dtype), gc_paused():
        if latency:
            _warm_shapes(model, tokenizer, latency_texts, max_length, device, pad_id)
            samples = _time_latency(model, tokenizer, latency_texts, max_length, device,
                                    warmup, pad_id)
            model_samples = _time_model_latency(model, tokenizer, latency_texts, max_length,
                                                device, warmup, pad_id)
            result.update(latency_ms_p50=percentile_ms(samples, 50),
                          latency_ms_p95=percentile_ms(samples, 95),
                          model_latency_ms_p50=percentile_ms(model_samples, 50),
                          model_latency_ms_p95=percentile_ms(model_samples, 95))
        model_throughput, mean_tokens, peak_mb = _time_model_throughput(
            model, tokenizer, bulk_texts, max_length, device, large_batch, pad_id,
            throughput_repeats)
    with gc_paused():
        throughput = _time_throughput(model, tokenizer, bulk_texts, max_length, device, dtype,
                                      large_batch, batch_tokens, throughput_repeats)
    result.update({
        "throughput_per_s": throughput,
        "model_throughput_per_s": model_throughput,
        "device": describe_device(device),
        "precision": precision_name(dtype),
        "attention": attention,
        "threads": torch.get_num_threads(),
        "latency_batch": 1,
        "throughput_batch": large_batch,
        "throughput_batch_tokens": batch_tokens,
        "throughput_repeats": throughput_repeats,
        "max_length": max_length,
        "mean_tokens": mean_tokens,
        "peak_memory_mb": peak_mb,
        "timer_includes": dict(TIMER_INCLUDES),
    })
    logger.info("speed on %s (%s): latency p50 %s ms, throughput %.1f/s end-to-end, "
                "%.1f/s model-only", result["device"], result["precision"],
                result.get("latency_ms_p50", "-"), throughput, model_throughput)
    return result


def _spread(texts: Sequence[str], count: int) -> list[str]:
    """``count`` texts: evenly spaced over ``texts``, or cycled when there are fewer."""
    if len(texts) >= count:
        picks = np.linspace(0, len(texts) - 1, count).round().astype(int)
        return [texts[i] for i in picks]
    return [texts[i % len(texts)] for i in range(count)]


def _warm_shapes(model: Any, tokenizer: Any, texts: list[str], max_length: int,
                 device: torch.device, pad_id: int) -> None:
    """Run each distinct timed text once, untimed.

    The first call at each input shape builds kernels (oneDNN bf16 primitives on CPU, cuBLAS
    heuristics on GPU): measured here, a batch-1 forward of MiniLM took 490-850 ms on that
    first call and 7 ms after. A few warm-up calls at other lengths do not cover it, so
    every shape the timers will see is seen once before they start.
    """
    for text in dict.fromkeys(texts):
        model(**one_batch(tokenizer, text, max_length, device, pad_id))
    sync(device)


def _time_latency(model: Any, tokenizer: Any, texts: list[str], max_length: int,
                  device: torch.device, warmup: int, pad_id: int) -> list[float]:
    samples = []
    sync(device)
    for i, text in enumerate(texts):
        # The copy of the label to the host waits for the device: no sync needed.
        elapsed = end_to_end_one(model, tokenizer, text, max_length, device, pad_id)[1]
        if i >= warmup:
            samples.append(elapsed)
    return samples


def _time_model_latency(model: Any, tokenizer: Any, texts: list[str], max_length: int,
                        device: torch.device, warmup: int, pad_id: int) -> list[float]:
    inputs = [one_batch(tokenizer, text, max_length, device, pad_id) for text in texts]
    samples = []
    sync(device)
    for i, batch in enumerate(inputs):
        start = time.perf_counter()
        model(**batch)
        sync(device)
        elapsed = time.perf_counter() - start
        if i >= warmup:
            samples.append(elapsed)
    return samples


def _time_model_throughput(model: Any, tokenizer: Any, texts: list[str], max_length: int,
                           device: torch.device, large_batch: int, pad_id: int, repeats: int
                           ) -> tuple[float, float, float | None]:
    encoded = encode_uncached(tokenizer, texts, max_length)
    lengths = encoded.lengths
    order = np.argsort(-lengths, kind="stable")
    batches = [
        {k: v.to(device) for k, v in collate(encoded, order[i:i + large_batch], pad_id).items()}
        for i in range(0, len(order), large_batch)
    ]
    # One untimed pass over every batch: the first call at each shape builds kernels
    # (cuBLAS heuristics on GPU, oneDNN bf16 primitives on CPU) and grows the allocator.
    for batch in batches:
        model(**batch)
    peak_mb = None
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    rates = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        for batch in batches:
            model(**batch)
        sync(device)
        rates.append(len(texts) / (time.perf_counter() - start))
    if device.type == "cuda":
        peak_mb = torch.cuda.max_memory_allocated(device) / 2**20
    return float(np.median(rates)), float(lengths.mean()), peak_mb


def _time_throughput(model: Any, tokenizer: Any, texts: list[str], max_length: int,
                     device: torch.device, dtype: torch.dtype, large_batch: int,
                     batch_tokens: int, repeats: int) -> float:
    rates = []
    for repeat in range(repeats + 1):  # the first pass is untimed: it builds per-shape kernels
        sync(device)
        start = time.perf_counter()
        # cache=False: every pass tokenises from scratch, as serving new texts would.
        probabilities = predict_proba(model, tokenizer, texts, max_length=max_length,
                                      device=device, batch_tokens=batch_tokens,
                                      max_batch_size=large_batch, dtype=dtype, cache=False)
        probabilities.argmax(axis=1)
        if repeat:
            rates.append(len(texts) / (time.perf_counter() - start))  # ends with a host copy
    return float(np.median(rates))
