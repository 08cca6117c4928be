"""``distillab bench``'s run: models, texts, sections in order."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.bench.distill import bench_distill, bench_distill_128x128, measure_matmul_peak
from core.bench.evaluation import bench_eval
from core.bench.report import (
    check_targets,
    compute_ratios,
    cpu_count,
    describe_model,
    load_average,
    versions,
)
from core.bench.settings import (
    DISTILL_INCLUDES,
    EVAL_INCLUDES,
    LABEL_NAMES,
    BenchSettings,
)
from core.devices import (
    configure_cpu_threads,
    describe_device,
    inference_dtype,
    precision_name,
)


def run_bench(settings: BenchSettings,
              on_section: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run the sections of ``settings``; returns every figure, ratio, setting and version.

    Args:
        settings: what to run and how big.
        on_section: called with the results so far after each section (the CLI writes the
            JSON each time, so a run cut short by a time limit keeps what it measured).
    Returns:
        ``device``, ``versions``, ``models``, ``settings``, ``sampled``, ``eval``,
        ``distill``, ``speedup``, ``ratios``, ``targets``, ``timer_includes``, ``elapsed_s``.
    """
    started = time.perf_counter()
    device = torch.device(settings.device)
    if device.type == "cpu":
        configure_cpu_threads()
    torch.manual_seed(0)
    teacher, student, tokenizer = build_models(settings.model_size)
    texts = load_bench_texts(settings)
    result: dict[str, Any] = {
        "device": describe_device(device), "versions": versions(),
        "distillab_inference_precision": precision_name(inference_dtype(device)),
        "models": {role: describe_model(m) for role, m in
                   (("teacher", teacher), ("student", student))},
        "settings": asdict(settings),
        "sampled": texts["sampled"], "eval": {}, "distill": {}, "speedup": {},
        "timer_includes": {"eval": EVAL_INCLUDES, "distill": DISTILL_INCLUDES},
        # Other processes on the same cores change every CPU figure: say how busy it was.
        "load_average": {"start": load_average()}, "cpus": cpu_count(),
        "threads": torch.get_num_threads(),
        "environment": {k: os.environ[k] for k in (
            "OMP_NUM_THREADS", "OMP_WAIT_POLICY", "MKL_NUM_THREADS", "TOKENIZERS_PARALLELISM",
            "DISTILLAB_CPU_BF16", "DISTILLAB_CUDNN_ATTENTION", "DISTILLAB_CUDA_GRAPHS",
            "TORCH_CUDNN_SDPA_DEPRIORITIZED",
            "CUDA_MODULE_LOADING", "PYTORCH_CUDA_ALLOC_CONF")
            if k in os.environ},
    }

    def finish_section() -> None:
        result["load_average"]["end"] = load_average()
        result["ratios"] = compute_ratios(result)
        result["targets"] = check_targets(result, device, settings.model_size)
        result["elapsed_s"] = time.perf_counter() - started
        if on_section is not None:
            on_section(result)

    print(f"[bench {time.perf_counter() - started:5.0f} s] models built, texts loaded",
          file=sys.stderr, flush=True)

    def measured(section: str) -> Callable[[str, dict[str, Any]], None]:
        """After each contender: one progress line, and the JSON rewritten, so a run cut
        short by a time limit keeps every figure measured so far."""
        def on_figure(name: str, figure: dict[str, Any]) -> None:
            value = next((f"{figure[k]:,.1f} {k}" for k in ("sent_per_s", "samples_per_s")
                          if k in figure), figure.get("error", "done"))
            print(f"[bench {time.perf_counter() - started:5.0f} s] {section} {name}: {value}",
                  file=sys.stderr, flush=True)
            finish_section()
        return on_figure

    if "eval" in settings.sections:
        for kind in ("short", "long"):
            max_length = settings.short_max_length if kind == "short" else settings.long_max_length
            result["eval"][kind] = {}
            for role, model in (("teacher", teacher), ("student", student)):
                result["eval"][kind][role] = {}
                bench_eval(model, tokenizer, texts[kind], texts[f"{kind}_labels"], max_length,
                           device, settings, figures=result["eval"][kind][role],
                           on_figure=measured(f"eval {kind} {role}"))
        finish_section()
    # Speed-up before distillation: on a GPU the last step (torch.compile) is the slowest.
    if "speedup" in settings.sections:
        result["speedup"] = bench_speedup(teacher, student, tokenizer, texts["short"], device,
                                          settings)
        finish_section()
    if "distill" in settings.sections:
        bench_distill(teacher, student, tokenizer, texts, device, settings,
                      figures=result["distill"], on_figure=measured("distill"))
        finish_section()
    if "mfu" in settings.sections and device.type == "cuda":
        # Last: torch.compile is the slowest step of a GPU run.
        distill = result["distill"]
        peak = distill.setdefault("matmul_peak_tflops", measure_matmul_peak(device))
        mfu = distill["distillab_128x128"] = {}
        for name, figure in bench_distill_128x128(teacher, student, tokenizer, texts["bbc"],
                                                  device, settings, peak):
            mfu[name] = figure
            finish_section()  # each figure is written as soon as it is measured
    return result


# models and data ---------------------------------------------------------------------------

def build_models(model_size: str) -> tuple[Any, Any, Any]:
    """Teacher, DistilBERT-style student (every other layer) and tokenizer, random heads.

    ``minilm``: the bundled all-MiniLM-L6-v2 (6 x 384) and a 3-layer student. ``bert-base``:
    a BERT-base-shaped config (12 x 768, random weights) and a 6-layer student, with
    MiniLM's tokenizer (same vocabulary size), so nothing comes from the Hub. ``tiny``:
    4 x 32, for tests.
    """
    from transformers import BertConfig, BertForSequenceClassification

    from core.models import load_classifier, load_tokenizer
    from core.students import extract_student

    if model_size == "minilm":
        teacher, tokenizer, _ = load_classifier("bundled:minilm", LABEL_NAMES)
    else:
        tokenizer = load_tokenizer("bundled:minilm")
        shape = ({"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
                  "intermediate_size": 3072} if model_size == "bert-base" else
                 {"hidden_size": 32, "num_hidden_layers": 4, "num_attention_heads": 2,
                  "intermediate_size": 64})
        config = BertConfig(vocab_size=len(tokenizer), max_position_embeddings=512,
                            num_labels=2, id2label=dict(enumerate(LABEL_NAMES)),
                            label2id={n: i for i, n in enumerate(LABEL_NAMES)}, **shape)
        teacher = BertForSequenceClassification(config)
    teacher.eval()
    return teacher, extract_student(teacher).eval(), tokenizer


def load_bench_texts(settings: BenchSettings) -> dict[str, Any]:
    """SST-2 dev (short), BBC News (long) and SST-2 train rows (distillation), subsampled
    with a fixed seed; ``sampled`` says how many of how many."""
    from core.data import load_data
    from core.specs import DatasetSpec

    folder = Path(settings.sst2_dir)
    if not (folder / "train.tsv").exists() or not (folder / "dev.tsv").exists():
        raise FileNotFoundError(f"SST-2 not found: {folder}/train.tsv and dev.tsv "
                                "(pass --sst2-dir)")
    sst2 = load_data(DatasetSpec(name=str(folder / "train.tsv"),
                                 validation=str(folder / "dev.tsv")))
    bbc = load_data(DatasetSpec(name="bbc_news"))
    rng = np.random.default_rng(0)

    def sample(values: list[Any], labels: list[int], n: int) -> tuple[list[Any], list[int]]:
        picks = np.sort(rng.choice(len(values), size=min(n, len(values)), replace=False))
        return [values[i] for i in picks], [int(labels[i]) for i in picks]

    short, short_labels = sample(sst2.validation_texts, sst2.validation_labels,
                                 settings.short_texts)
    bbc_texts = bbc.validation_texts + bbc.train_texts
    # Labels are not scored (random heads); the evaluator needs ids within the 2-class head.
    long, long_labels = sample(bbc_texts, [0] * len(bbc_texts), settings.long_texts)
    train, train_labels = sample(sst2.train_texts, sst2.train_labels,
                                 settings.distill_rows + 2 * settings.distill_batch)
    warm = settings.distill_batch * 2
    return {
        "short": short, "short_labels": short_labels, "long": long, "long_labels": long_labels,
        "train": train[warm:], "train_labels": train_labels[warm:],
        "warm_train": train[:warm], "warm_train_labels": train_labels[:warm],
        "validation": sst2.validation_texts[:32], "validation_labels":
            sst2.validation_labels[:32], "bbc": bbc_texts,
        "sampled": {
            "short": f"{len(short)} of {len(sst2.validation_texts)} SST-2 dev sentences",
            "long": f"{len(long)} of {len(bbc_texts)} BBC News articles",
            "distill": f"{len(train) - warm} of {len(sst2.train_texts)} SST-2 train sentences "
                       f"(+{warm} for warm-up)",
            "seed": 0,
        },
    }


# evaluation --------------------------------------------------------------------------------



def bench_speedup(teacher: Any, student: Any, tokenizer: Any, texts: list[str],
                  device: torch.device, settings: BenchSettings) -> dict[str, Any]:
    """``measure_speed`` for teacher, student (and on CPU the int8 student); the speed-ups."""
    from core.speed import measure_speed

    models = {"teacher": teacher, "student": student}
    if device.type == "cpu":
        from core.quantize import int8_supported, quantize_dynamic_int8

        if int8_supported():
            models["student_int8"] = quantize_dynamic_int8(student)
    figures: dict[str, Any] = {}
    for role, model in models.items():
        figures[role] = measure_speed(
            model, tokenizer, texts, max_length=settings.short_max_length, device=device,
            latency_samples=settings.latency_samples, large_batch=settings.large_batch,
            throughput_texts=settings.speed_texts, throughput_repeats=settings.max_repeats)
        figures[role].pop("timer_includes")
    if "student_int8" in figures:
        from core.quantize import INT8_PRECISION

        figures["student_int8"]["precision"] = INT8_PRECISION  # int8 weights, fp32 inputs
    from core.speed import TIMER_INCLUDES

    figures["timer_includes"] = TIMER_INCLUDES
    t, s = figures["teacher"], figures["student"]
    figures["student_speedup"] = {
        "latency_p50_batch1": t["latency_ms_p50"] / s["latency_ms_p50"],
        "model_latency_p50_batch1": t["model_latency_ms_p50"] / s["model_latency_ms_p50"],
        "throughput_large_batch": s["throughput_per_s"] / t["throughput_per_s"],
        "model_throughput_large_batch": s["model_throughput_per_s"] / t["model_throughput_per_s"],
    }
    return figures


# results -----------------------------------------------------------------------------------

