"""``distillab bench``: DistilLab's evaluation and distillation speed against the usual paths.

In one process, on the same texts and the same models, it times:

* evaluation end to end (texts in, predicted labels on the host out) for the teacher and
  the student: DistilLab's ``predict_proba`` vs ``transformers.pipeline`` (batch 32) vs
  ``evaluate.evaluator("text-classification")`` on that pipeline vs a naive loop padding
  every batch of 32 to max length; on short texts (SST-2 dev) and long ones (BBC News, 512);
* distillation training throughput: ``core.train.train`` vs a naive loop (fp32, padding to
  max length, the teacher run every step, plain AdamW) vs the Hugging Face ``Trainer``
  subclass overriding ``compute_loss`` with the KD loss (the HF distillation guide's
  pattern); on CUDA also model TFLOP/s against a bf16 matmul peak measured in the same run;
* the student's speed-up over the teacher at batch 1 and at a large batch (``measure_speed``).

Every contender is warmed up before its timer and timed with device syncs; what each timer
includes is written next to the figure. Model heads are random: speed does not depend on
the weights' values, so no fine-tuning is needed and no accuracy is reported.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import logging
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from core.devices import (
    configure_cpu_threads,
    describe_device,
    inference_dtype,
    precision_name,
    resolve_device,
)
from core.speed import gc_paused, sync

logger = logging.getLogger(__name__)

SECTIONS = ("eval", "distill", "speedup", "mfu")  # mfu: CUDA only
MODEL_SIZES = ("minilm", "bert-base", "tiny")
LABEL_NAMES = ["negative", "positive"]
KD_TEMPERATURE, KD_ALPHA = 2.0, 0.5  # the "logits" recipe: 0.5 KD (T=2) + 0.5 CE
PEAK_MATMUL_N = 8192

EVAL_INCLUDES = {
    "distillab": "predict_proba(cache=False): fast tokenizer (uncached, threaded), "
                 "length-sorted token-budget batches, inference_mode, SDPA, bf16 autocast on "
                 "CUDA and on CPUs with native bf16 (AVX512-BF16/AMX), softmax, argmax on "
                 "the host",
    "pipeline": "transformers.pipeline('text-classification', batch_size=32, truncation, "
                "max_length): per-text tokenisation, batches of 32 in input order padded to "
                "their longest row, fp32, post-processing to label dicts",
    "evaluator": "evaluate.evaluator('text-classification').compute on the same pipeline "
                 "(datasets.Dataset built outside the timer), accuracy through the shipped "
                 "metric module",
    "naive": "batches of 32 in input order, each tokenised and padded to max_length, fp32 "
             "forward under no_grad, softmax, argmax to the host",
    "pipeline_bf16": "where DistilLab runs bf16: the pipeline above on a bf16 copy of the "
                     "model (how much of the gap precision alone closes)",
}
DISTILL_INCLUDES = {
    "distillab": "core.train.train, whole call: tokenisation, teacher logits computed once "
                 "(the 'logits' recipe needs only them), length-bucketed batches, AdamW with "
                 "schedule and clipping (bf16 autocast + fused AdamW on CUDA), and a "
                 "validation pass over 32 sentences",
    "distillab_teacher_every_step": "core.train.train with the 'distilbert' recipe (adds the "
                                    "hidden-state cosine term), so the teacher runs at every "
                                    "step; otherwise as above",
    "naive": "fp32, each batch tokenised and padded to max_length, teacher forward under "
             "no_grad at every step, KD+CE loss, plain AdamW step",
    "trainer": "transformers.Trainer subclass overriding compute_loss (teacher every step, "
               "KD+CE), DataCollatorWithPadding, default AdamW; timed from on_train_begin "
               "to on_train_end (its set-up and the datasets.map tokenisation excluded)",
}


@dataclass
class BenchSettings:
    """What one bench run does; every size is recorded in the JSON."""

    quick: bool = False
    model_size: str = "minilm"
    device: str = "auto"
    sections: tuple[str, ...] = SECTIONS
    sst2_dir: str = "../shared/data/sst2"
    short_texts: int = 872
    long_texts: int = 400
    short_max_length: int = 128
    long_max_length: int = 512
    eval_batch: int = 32
    distill_rows: int = 3200
    distill_batch: int = 32
    distill_max_length: int = 64
    warmup_texts: int = 32
    min_time_s: float = 1.0
    max_repeats: int = 3
    latency_samples: int = 30
    speed_texts: int = 256
    large_batch: int = 64
    mfu_rows: int = 128 * 48

    @classmethod
    def build(cls, quick: bool, model_size: str, device: torch.device, sections: Sequence[str],
              sst2_dir: str) -> BenchSettings:
        """Sizes for the device and mode: ``quick`` fits about five minutes on a 2-core CPU."""
        unknown = set(sections) - set(SECTIONS)
        if unknown or not sections:
            raise ValueError(f"--sections takes a comma list of {', '.join(SECTIONS)}; got "
                             f"{','.join(sections)}")
        if model_size not in MODEL_SIZES:
            raise ValueError(f"--model-size must be minilm or bert-base, got {model_size!r}")
        s = cls(quick=quick, model_size=model_size, device=str(device),
                sections=tuple(sections), sst2_dir=sst2_dir)
        if device.type == "cuda":
            # Short SST-2 sentences leave a GPU idle at 64 tokens; 128 is the usual setting.
            s.distill_max_length, s.warmup_texts, s.large_batch = 128, 10**9, 256
            s.long_texts, s.distill_rows, s.speed_texts, s.latency_samples = 1000, 6400, 872, 50
            s.mfu_rows = 128 * 96
        if quick:
            s.short_texts, s.long_texts, s.distill_rows = 320, 48, 640
            s.latency_samples, s.speed_texts, s.max_repeats = 15, 128, 1
            s.mfu_rows = 128 * 24
        if model_size == "tiny":  # the test suite's size: seconds, not minutes
            s.short_texts, s.long_texts, s.distill_rows, s.mfu_rows = 64, 8, 96, 256
            s.latency_samples, s.speed_texts, s.long_max_length = 4, 32, 128
        return s


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``distillab bench``'s flags to ``parser``."""
    parser.add_argument("--quick", action="store_true",
                        help="a subsample that fits ~5 min on a 2-core CPU")
    parser.add_argument("--json", help="write every figure to this JSON file")
    parser.add_argument("--model-size", default="minilm",
                        help="minilm (bundled, 6-layer teacher, 3-layer student) or bert-base "
                             "(12x768 teacher, 6x768 student, random weights, no Hub needed)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    parser.add_argument("--sections", default=",".join(SECTIONS),
                        help="comma list of eval, distill, speedup, mfu (batch 128 x 128 "
                             "training FLOP/s, CUDA only)")
    parser.add_argument("--sst2-dir", default="../shared/data/sst2",
                        help="folder holding SST-2's train.tsv and dev.tsv")


def run_bench_cli(args: argparse.Namespace) -> int:
    """``distillab bench``: run, print the table, write ``--json``; returns the exit status."""
    try:
        device = resolve_device(args.device)
        sections = [s.strip() for s in str(args.sections).split(",") if s.strip()]
        settings = BenchSettings.build(bool(args.quick), args.model_size, device, sections,
                                       args.sst2_dir)
        path = Path(args.json) if args.json else None

        def write(result: dict[str, Any]) -> None:
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(result, indent=2, default=_json_default))

        result = run_bench(settings, on_section=write)
    except (ValueError, FileNotFoundError) as error:
        print(f"distillab bench: error: {error}", file=sys.stderr)
        return 2
    print(format_bench_table(result))
    if path is not None:
        print(f"figures written to {path}")
    return 0


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
        "device": describe_device(device), "versions": _versions(),
        "distillab_inference_precision": precision_name(inference_dtype(device)),
        "models": {role: _describe_model(m) for role, m in
                   (("teacher", teacher), ("student", student))},
        "settings": asdict(settings),
        "sampled": texts["sampled"], "eval": {}, "distill": {}, "speedup": {},
        "timer_includes": {"eval": EVAL_INCLUDES, "distill": DISTILL_INCLUDES},
        # Other processes on the same cores change every CPU figure: say how busy it was.
        "load_average": {"start": _load_average()}, "cpus": _cpu_count(),
        "threads": torch.get_num_threads(),
        "environment": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY",
                                                   "MKL_NUM_THREADS", "TOKENIZERS_PARALLELISM",
                                                   "DISTILLAB_CPU_BF16") if k in os.environ},
    }

    def finish_section() -> None:
        result["load_average"]["end"] = _load_average()
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

    from core.models import extract_student, load_classifier, load_tokenizer

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

def bench_eval(model: Any, tokenizer: Any, texts: list[str], labels: list[int],
               max_length: int, device: torch.device, settings: BenchSettings,
               figures: dict[str, Any] | None = None,
               on_figure: Callable[[str, dict[str, Any]], None] | None = None
               ) -> dict[str, dict[str, Any]]:
    """Sentences per second end to end for each evaluation contender on ``texts``.

    ``figures`` (filled in place, returned) and ``on_figure(name, figure)``, called after
    each contender, let the caller save partial results."""
    from transformers import pipeline

    from core.evaluation import predict_proba

    pipe = pipeline("text-classification", model=model, tokenizer=tokenizer, device=device,
                    batch_size=settings.eval_batch, truncation=True, max_length=max_length)
    warm = texts[:settings.warmup_texts]
    contenders: dict[str, tuple[Callable[[list[str]], Any], Callable[[Any], Any]]] = {
        "distillab": (lambda t: t, lambda t: predict_proba(
            model, tokenizer, t, max_length=max_length, device=device,
            cache=False).argmax(axis=1)),
        "pipeline": (lambda t: t, lambda t: [p["label"] for p in pipe(t)]),
        "evaluator": (lambda t: _evaluator_data(t, labels[:len(t)]),
                      lambda d: _run_evaluator(pipe, d)),
        "naive": (lambda t: t, lambda t: _naive_predict(model, tokenizer, t, max_length,
                                                        settings.eval_batch, device)),
    }
    if inference_dtype(device) == torch.bfloat16:
        # DistilLab runs bf16 here: the same pipeline on bf16 weights shows how much of the
        # gap precision alone closes.
        pipe_bf16 = pipeline("text-classification", tokenizer=tokenizer, device=device,
                             model=copy.deepcopy(model).to(torch.bfloat16),
                             batch_size=settings.eval_batch, truncation=True,
                             max_length=max_length)
        contenders["pipeline_bf16"] = (lambda t: t, lambda t: [p["label"] for p in pipe_bf16(t)])
    figures = {} if figures is None else figures
    predictions: dict[str, Any] = {}
    for name, (prepare, run) in contenders.items():
        try:
            run(prepare(warm))
            state = prepare(texts)
            seconds, repeats, output = _time_median(lambda s=state, r=run: r(s), device,
                                                    settings.min_time_s, settings.max_repeats)
        except Exception as error:  # one broken contender must not lose the others' figures
            logger.exception("eval contender %s failed", name)
            figures[name] = {"error": f"{type(error).__name__}: {error}"}
            if on_figure is not None:
                on_figure(name, figures[name])
            continue
        predictions[name] = output
        figures[name] = {"sent_per_s": len(texts) / seconds, "seconds": seconds,
                         "repeats": repeats, "texts": len(texts), "max_length": max_length}
        if on_figure is not None:
            on_figure(name, figures[name])
    if "sent_per_s" in figures.get("distillab", {}):
        figures["distillab"].update(_eval_breakdown(model, tokenizer, texts, max_length, device,
                                                    settings))
    if device.type == "cpu" and {"pipeline", "naive"} <= set(predictions):
        # A correctness check, untimed: in fp32 padding and batching must not change a label
        # (bf16 may flip near-ties of a random head, so DistilLab is re-run in fp32 here).
        naive = np.asarray(predictions["naive"])
        fp32 = predict_proba(model, tokenizer, texts, max_length=max_length, device=device,
                             dtype=torch.float32, cache=False).argmax(axis=1)
        figures["distillab"]["fp32_label_agreement_with_naive"] = float(np.mean(fp32 == naive))
        label_ids = {name: i for i, name in model.config.id2label.items()}
        figures["pipeline"]["label_agreement_with_naive"] = float(
            np.mean(np.asarray([label_ids[p] for p in predictions["pipeline"]]) == naive))
    return figures


def _eval_breakdown(model: Any, tokenizer: Any, texts: list[str], max_length: int,
                    device: torch.device, settings: BenchSettings) -> dict[str, float]:
    """Where DistilLab's end-to-end time goes: tokenisation alone, then the model on
    pre-tokenised rows (batching, copies, forward, softmax, copy back). End to end overlaps
    the two on CUDA, so it can be less than their sum."""
    from core.batching import encode_uncached
    from core.evaluation import predict_proba_encoded

    tokenize_s, _, encoded = _time_median(lambda: encode_uncached(tokenizer, texts, max_length),
                                          device, settings.min_time_s, settings.max_repeats)
    pad = tokenizer.pad_token_id or 0
    model_s, _, _ = _time_median(lambda: predict_proba_encoded(model, encoded, pad_token_id=pad,
                                                               device=device),
                                 device, settings.min_time_s, settings.max_repeats)
    return {"tokenize_only_s": tokenize_s, "model_only_s": model_s,
            "model_only_sent_per_s": len(texts) / model_s}


def _time_median(fn: Callable[[], Any], device: torch.device, min_time_s: float,
                 max_repeats: int) -> tuple[float, int, Any]:
    """Median seconds of ``fn`` over repeats (at least one; more until ``min_time_s``)."""
    times: list[float] = []
    output = None
    with gc_paused():
        while not times or (len(times) < max_repeats and sum(times) < min_time_s):
            sync(device)
            start = time.perf_counter()
            output = fn()
            sync(device)
            times.append(time.perf_counter() - start)
    return float(np.median(times)), len(times), output


def _naive_predict(model: Any, tokenizer: Any, texts: list[str], max_length: int,
                   batch_size: int, device: torch.device) -> np.ndarray:
    model.to(device).eval()
    predictions = []
    with torch.no_grad():
        for i in range(0, len(texts), batch_size):
            batch = tokenizer(texts[i:i + batch_size], padding="max_length", truncation=True,
                              max_length=max_length, return_tensors="pt").to(device)
            predictions.append(model(**batch).logits.softmax(-1).argmax(-1).cpu())
    return torch.cat(predictions).numpy()


def _evaluator_data(texts: list[str], labels: list[int]) -> Any:
    from datasets import Dataset

    return Dataset.from_dict({"text": texts, "label": labels})


@contextlib.contextmanager
def _evaluate_tf_shim() -> Iterator[None]:
    """evaluate 0.4.6 tests ``isinstance(x, transformers.TFPreTrainedModel)`` on a pipeline
    object, and transformers 5 has no TensorFlow classes. For the call only, a placeholder
    class stands in (nothing is an instance of it, so the check reads False, as intended)."""
    from evaluate.evaluator import base

    module = base.transformers
    added = "TFPreTrainedModel" not in vars(module)
    if added:
        module.TFPreTrainedModel = type("TFPreTrainedModel", (), {})
    try:
        yield
    finally:
        if added:
            delattr(module, "TFPreTrainedModel")


def _run_evaluator(pipe: Any, data: Any) -> dict[str, Any]:
    from evaluate import evaluator

    from core.evaluation import load_metric

    label_mapping = {name: i for i, name in pipe.model.config.id2label.items()}
    with _evaluate_tf_shim():
        return evaluator("text-classification").compute(
            model_or_pipeline=pipe, data=data, metric=load_metric("accuracy"),
            input_column="text", label_column="label", label_mapping=label_mapping)


# distillation ------------------------------------------------------------------------------

def bench_distill(teacher: Any, student: Any, tokenizer: Any, texts: dict[str, Any],
                  device: torch.device, settings: BenchSettings,
                  figures: dict[str, Any] | None = None,
                  on_figure: Callable[[str, dict[str, Any]], None] | None = None
                  ) -> dict[str, Any]:
    """Samples per second of one distillation epoch for each contender (same rows, same
    initial student, batch size and max length); ``figures`` and ``on_figure`` as in
    :func:`bench_eval`."""
    from core.specs import RECIPES

    lengths = _token_lengths(tokenizer, texts["train"], settings.distill_max_length)
    flops = (3 * forward_flops(student.config, lengths)  # forward + backward of the student
             + forward_flops(teacher.config, lengths))  # the teacher once per row and epoch
    runs: dict[str, Callable[[list[str], list[int]], dict[str, Any]]] = {
        "distillab": lambda t, y: _distill_distillab(teacher, student, tokenizer, t, y, texts,
                                                     RECIPES["logits"], device, settings),
        "distillab_teacher_every_step": lambda t, y: _distill_distillab(
            teacher, student, tokenizer, t, y, texts, RECIPES["distilbert"], device, settings),
        "naive": lambda t, y: _distill_naive(teacher, student, tokenizer, t, y, device,
                                             settings),
        "trainer": lambda t, y: _distill_trainer(teacher, student, tokenizer, t, y, device,
                                                 settings),
    }
    figures = {} if figures is None else figures
    figures["settings"] = {"rows": len(texts["train"]), "batch": settings.distill_batch,
                           "max_length": settings.distill_max_length,
                           "mean_tokens": float(lengths.mean()), "model_flops": flops,
                           "recipe": "KD (T=2) 0.5 + CE 0.5, logits only"}
    for name, run in runs.items():
        try:
            run(texts["warm_train"], texts["warm_train_labels"])  # untimed warm-up
            figure = run(texts["train"], texts["train_labels"])
        except Exception as error:  # one broken contender must not lose the others' figures
            logger.exception("distillation contender %s failed", name)
            figures[name] = {"error": f"{type(error).__name__}: {error}"}
            if on_figure is not None:
                on_figure(name, figures[name])
            continue
        steady = _steady_rate(figure.pop("step_times", []), settings.distill_batch)
        if steady:  # training steps alone: the epoch minus tokenisation, teacher, validation
            figure["steady_samples_per_s"] = steady
        if figure.get("warm_epoch_seconds"):
            figure["warm_epoch_samples_per_s"] = len(texts["train"]) / figure[
                "warm_epoch_seconds"]
        figure["samples_per_s"] = len(texts["train"]) / figure["seconds"]
        figure["model_tflops_per_s"] = flops / figure["seconds"] / 1e12
        figures[name] = figure
        if on_figure is not None:
            on_figure(name, figure)
    if device.type == "cuda":
        peak = measure_matmul_peak(device)
        figures["matmul_peak_tflops"] = peak
        for name in runs:
            if "model_tflops_per_s" in figures[name]:
                figures[name]["fraction_of_peak"] = figures[name]["model_tflops_per_s"] / peak
    return figures


def forward_flops(config: Any, lengths: np.ndarray) -> float:
    """Model FLOPs of one encoder forward over rows of ``lengths`` tokens (no padding).

    Per layer and sequence of ``s`` tokens: ``2 s (4 d^2 + 2 d f)`` in the projections and
    feed-forward, ``4 s^2 d`` in the attention products; plus the pooler and head.
    """
    d, f = config.hidden_size, config.intermediate_size
    s = np.asarray(lengths, dtype=np.float64)
    per_layer = 2 * s * (4 * d * d + 2 * d * f) + 4 * s * s * d
    head = 2 * d * d + 2 * d * config.num_labels
    return float((config.num_hidden_layers * per_layer + head).sum())


def _token_lengths(tokenizer: Any, texts: list[str], max_length: int) -> np.ndarray:
    from core.batching import encode_uncached

    return encode_uncached(tokenizer, texts, max_length).lengths


def _distill_distillab(teacher: Any, student: Any, tokenizer: Any, rows: list[str],
                       labels: list[int], texts: dict[str, Any], recipe: Any,
                       device: torch.device, settings: BenchSettings, batch: int | None = None,
                       max_length: int | None = None, compile_model: bool = False,
                       warm_epoch: bool = True) -> dict[str, Any]:
    from core.batching import clear_cache
    from core.specs import TrainConfig
    from core.train import TrainData, train

    data = TrainData(tokenizer=tokenizer, texts=rows, labels=np.asarray(labels),
                     validation_texts=texts["validation"],
                     validation_labels=np.asarray(texts["validation_labels"]),
                     label_names=LABEL_NAMES)
    # On CUDA a second epoch is timed too: the first pays once for every new batch shape
    # (kernel loading, heuristics), which a long run amortises and one short epoch does not.
    epochs = 2 if device.type == "cuda" and warm_epoch else 1
    config = TrainConfig(epochs=epochs, batch_size=batch or settings.distill_batch,
                         max_length=max_length or settings.distill_max_length,
                         compile=compile_model)
    # train() converts the teacher to bf16 in place on CUDA; the other contenders need fp32.
    own_teacher, own_student = copy.deepcopy(teacher), copy.deepcopy(student)
    steps: list[tuple[float, int]] = []
    epoch_ends: list[float] = []

    def on_event(event: dict[str, Any]) -> None:
        if event["type"] == "step" and event["epoch"] == 1:
            steps.append((time.perf_counter(), event["step"]))
        elif event["type"] == "epoch":
            sync(device)
            epoch_ends.append(time.perf_counter())

    clear_cache()  # tokenisation is part of DistilLab's timed work
    sync(device)
    start = time.perf_counter()
    train(own_student, data, stage="bench", recipe=recipe, config=config, epochs=epochs,
          learning_rate=1e-4, device=device, seed=0, teacher=own_teacher, on_event=on_event)
    sync(device)
    figure = {"seconds": (epoch_ends[0] if epoch_ends else time.perf_counter()) - start,
              "rows": len(rows), "step_times": steps}
    if len(epoch_ends) == 2:  # the second epoch: its steps and its validation pass
        figure["warm_epoch_seconds"] = epoch_ends[1] - epoch_ends[0]
    return figure


def _kd_ce_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                labels: torch.Tensor) -> torch.Tensor:
    """The HF guide's loss: alpha T^2 KL(teacher || student) + (1 - alpha) CE, plain torch."""
    t = KD_TEMPERATURE
    kd = F.kl_div(F.log_softmax(student_logits / t, dim=-1), F.softmax(teacher_logits / t, dim=-1),
                  reduction="batchmean") * t * t
    return KD_ALPHA * kd + (1 - KD_ALPHA) * F.cross_entropy(student_logits, labels)


def _distill_naive(teacher: Any, student: Any, tokenizer: Any, rows: list[str],
                   labels: list[int], device: torch.device, settings: BenchSettings
                   ) -> dict[str, Any]:
    own_student = copy.deepcopy(student).to(device).train()
    teacher.to(device).eval()
    optimizer = torch.optim.AdamW(own_student.parameters(), lr=1e-4)
    labels_t = torch.as_tensor(labels)
    order = torch.randperm(len(rows), generator=torch.Generator().manual_seed(0))
    sync(device)
    start = time.perf_counter()
    for i in range(0, len(rows), settings.distill_batch):
        idx = order[i:i + settings.distill_batch]
        batch = tokenizer([rows[j] for j in idx], padding="max_length", truncation=True,
                          max_length=settings.distill_max_length,
                          return_tensors="pt").to(device)
        with torch.no_grad():
            teacher_logits = teacher(**batch).logits
        loss = _kd_ce_loss(own_student(**batch).logits, teacher_logits,
                           labels_t[idx].to(device))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    sync(device)
    return {"seconds": time.perf_counter() - start, "rows": len(rows)}


def _distill_trainer(teacher: Any, student: Any, tokenizer: Any, rows: list[str],
                     labels: list[int], device: torch.device, settings: BenchSettings
                     ) -> dict[str, Any]:
    from datasets import Dataset
    from transformers import Trainer, TrainerCallback, TrainingArguments

    class DistillationTrainer(Trainer):
        """The HF distillation guide's pattern: a Trainer whose compute_loss adds KD."""

        def __init__(self, *args: Any, teacher_model: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.teacher = teacher_model.to(self.args.device).eval()

        def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                         num_items_in_batch: Any = None) -> Any:
            labels = inputs.pop("labels")
            outputs = model(**inputs)
            with torch.no_grad():
                teacher_logits = self.teacher(**inputs).logits
            loss = _kd_ce_loss(outputs.logits, teacher_logits, labels)
            return (loss, outputs) if return_outputs else loss

    class Clock(TrainerCallback):
        def on_train_begin(self, *args: Any, **kwargs: Any) -> None:
            sync(device)
            self.start = time.perf_counter()

        def on_train_end(self, *args: Any, **kwargs: Any) -> None:
            sync(device)
            self.seconds = time.perf_counter() - self.start

    import datasets
    from transformers import PrinterCallback

    max_length = settings.distill_max_length
    bars = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()  # the bench prints its own table, not map's bar
    try:
        dataset = Dataset.from_dict({"text": rows, "label": labels}).map(
            lambda b: tokenizer(b["text"], truncation=True, max_length=max_length),
            batched=True, remove_columns=["text"])
    finally:
        if bars:
            datasets.enable_progress_bars()
    clock = Clock()
    with tempfile.TemporaryDirectory() as output_dir:
        args = TrainingArguments(
            output_dir=output_dir, per_device_train_batch_size=settings.distill_batch,
            num_train_epochs=1, learning_rate=1e-4, weight_decay=0.01, save_strategy="no",
            logging_strategy="no", eval_strategy="no", report_to="none", disable_tqdm=True,
            use_cpu=device.type == "cpu", bf16=device.type == "cuda", seed=0)
        trainer = DistillationTrainer(model=copy.deepcopy(student), args=args,
                                      train_dataset=dataset, processing_class=tokenizer,
                                      teacher_model=teacher, callbacks=[clock])
        trainer.remove_callback(PrinterCallback)  # it prints the end-of-training log dict
        trainer.train()
    return {"seconds": clock.seconds, "rows": len(rows)}


def measure_matmul_peak(device: torch.device, n: int = PEAK_MATMUL_N, repeats: int = 10
                        ) -> float:
    """bf16 dense matmul TFLOP/s at ``n^3`` on random data (median of ``repeats``)."""
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        a @ b
        sync(device)
        times.append(time.perf_counter() - start)
    del a, b
    return 2 * n**3 / float(np.median(times)) / 1e12


def bench_distill_128x128(teacher: Any, student: Any, tokenizer: Any, bbc_texts: list[str],
                          device: torch.device, settings: BenchSettings, peak: float
                          ) -> Iterator[tuple[str, Any]]:
    """DistilLab at batch 128 x 128 tokens: model TFLOP/s over the whole epoch and over the
    steady training steps, plain and with ``torch.compile``; yields ``(name, figure)``.

    Rows are BBC articles cut to their first 1,200 characters (outside the timer): all but
    one of the 2,125 still fill 128 tokens, and the tokenizer is spared the rest of each.
    """
    from core.specs import RECIPES

    rows = [bbc_texts[i % len(bbc_texts)][:1200] for i in range(settings.mfu_rows)]
    lengths = _token_lengths(tokenizer, rows, 128)
    student_flops = 3 * forward_flops(student.config, lengths)
    teacher_flops = forward_flops(teacher.config, lengths)
    extra = {"validation": rows[:32], "validation_labels": [0] * 32}
    yield "rows", len(rows)
    yield "mean_tokens", float(lengths.mean())
    for name, compiled in (("plain", False), ("compiled", True)):
        try:
            figure = _distill_distillab(teacher, student, tokenizer, rows, [0] * len(rows),
                                        extra, RECIPES["logits"], device, settings,
                                        batch=128, max_length=128, compile_model=compiled,
                                        warm_epoch=False)
        except Exception as error:  # torch.compile needs a working Triton; report, go on
            logger.exception("128x128 distillation (%s) failed", name)
            yield name, {"error": f"{type(error).__name__}: {error}"}
            continue
        steady = _steady_rate(figure.pop("step_times"), 128)
        epoch_tflops = (student_flops + teacher_flops) / figure["seconds"] / 1e12
        figure.update(samples_per_s=len(rows) / figure["seconds"], epoch_tflops=epoch_tflops,
                      epoch_fraction_of_peak=epoch_tflops / peak)
        if steady:
            step_tflops = student_flops / len(rows) * steady / 1e12
            figure.update(steady_samples_per_s=steady, steady_step_tflops=step_tflops,
                          steady_fraction_of_peak=step_tflops / peak)
        yield name, figure


def _steady_rate(step_times: list[tuple[float, int]], batch: int) -> float | None:
    """Rows per second between the first logged step past a quarter of the run and the
    last (each step event reads the loss, which syncs the device)."""
    if len(step_times) < 3:
        return None
    last_t, last_step = step_times[-1]
    first = next((p for p in step_times if p[1] >= last_step // 4), step_times[0])
    if first[1] >= last_step:
        return None
    return (last_step - first[1]) * batch / (last_t - first[0])


# speed-up ----------------------------------------------------------------------------------

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

def compute_ratios(result: dict[str, Any]) -> dict[str, float]:
    """DistilLab's figure over each other contender's (teacher on short texts for the four
    headline keys; ``<key>_<role>_<kind>`` for every other pair)."""
    ratios: dict[str, float] = {}
    for kind, per_role in result.get("eval", {}).items():
        for role, figures in per_role.items():
            ours = figures.get("distillab", {}).get("sent_per_s")
            for other in ("pipeline", "evaluator", "naive", "pipeline_bf16"):
                theirs = figures.get(other, {}).get("sent_per_s")
                if not ours or not theirs:
                    continue
                key = f"eval_vs_{other}"
                value = ours / theirs
                ratios[f"{key}_{role}_{kind}"] = value
                if role == "teacher" and kind == "short":
                    ratios[key] = value
    distill = result.get("distill", {})
    for ours_name, prefix in (("distillab", "distill"),
                              ("distillab_teacher_every_step", "distill_every_step")):
        ours = distill.get(ours_name, {}).get("samples_per_s")
        for other in ("naive", "trainer"):
            theirs = distill.get(other, {}).get("samples_per_s")
            if ours and theirs:
                ratios[f"{prefix}_vs_{other}"] = ours / theirs
        # DistilLab's second epoch against the naive loop, whose one shape (every batch
        # padded to max length) is warm after its warm-up (the Trainer's shapes vary: no).
        warm = distill.get(ours_name, {}).get("warm_epoch_samples_per_s")
        naive = distill.get("naive", {}).get("samples_per_s")
        if warm and naive:
            ratios[f"{prefix}_warm_epoch_vs_naive"] = warm / naive
    return ratios


TARGETS = {
    "cpu": {"eval_vs_pipeline": 3.0, "distill_vs_naive": 2.0, "distill_vs_trainer": 1.5},
    "cuda": {"eval_vs_pipeline_teacher_short": 20.0, "eval_vs_pipeline_teacher_long": 20.0,
             "distill_vs_naive": 8.0},
}


def check_targets(result: dict[str, Any], device: torch.device, model_size: str
                  ) -> list[dict[str, Any]]:
    """The issue's targets for this device, each with the measured value and whether met.
    They are stated for MiniLM on this CPU and for BERT-base on an H100."""
    applies = (device.type, model_size) in (("cpu", "minilm"), ("cuda", "bert-base"))
    checks = []
    for key, target in TARGETS.get(device.type, {}).items():
        value = result["ratios"].get(key)
        checks.append({"ratio": key, "target": target, "measured": value, "applies": applies,
                       "met": None if value is None else value >= target})
    mfu = result.get("distill", {}).get("distillab_128x128", {})
    if device.type == "cuda" and mfu:
        best = max((mfu[k].get("epoch_fraction_of_peak", 0.0) for k in ("plain", "compiled")
                    if isinstance(mfu.get(k), dict)), default=None)
        checks.append({"ratio": "distill_128x128_epoch_fraction_of_peak", "target": 0.35,
                       "measured": best, "applies": applies,
                       "met": None if best is None else best >= 0.35})
    return checks


def format_bench_table(result: dict[str, Any]) -> str:
    """The printed report: one table per section, what each timer includes, the targets."""
    import pandas as pd

    def table(rows: list[dict[str, Any]]) -> str:
        cells = [{k: f"{v:,.3g}" if isinstance(v, float) else ("" if v is None else v)
                  for k, v in row.items()} for row in rows]
        frame = pd.DataFrame(cells).fillna("")
        if "error" in frame and not frame["error"].astype(bool).any():
            frame = frame.drop(columns="error")
        return frame.to_string(index=False)

    load = result["load_average"]
    lines = [f"distillab bench on {result['device']}; DistilLab inference in "
             f"{result['distillab_inference_precision']}; load average {load['start']} at the "
             f"start, {load.get('end')} at the end, on {result['cpus']} CPUs",
             "versions: " + ", ".join(f"{k} {v}" for k, v in result["versions"].items()),
             "models: " + "; ".join(f"{r} {m['layers']}x{m['hidden']} ({m['params'] / 1e6:.1f}M)"
                                    for r, m in result["models"].items())
             + " (random heads: speed only)",
             "sampled: " + "; ".join(f"{k}: {v}" for k, v in result["sampled"].items())]
    if result["eval"]:
        rows = [{"texts": kind, "model": role, "contender": name,
                 "sent/s": f.get("sent_per_s"), "s": f.get("seconds"),
                 "repeats": f.get("repeats"), "tokenize-only s": f.get("tokenize_only_s"),
                 "model-only s": f.get("model_only_s"), "error": f.get("error", "")}
                for kind, per_role in result["eval"].items()
                for role, figures in per_role.items() for name, f in figures.items()]
        lines += ["", "evaluation, end to end (texts in, labels out)", table(rows)]
        lines += [f"  {name}: {text}" for name, text in EVAL_INCLUDES.items()]
    distill = result["distill"]
    if "settings" in distill:
        rows = [{"contender": name, "samples/s": f.get("samples_per_s"), "s": f.get("seconds"),
                 "steady steps/s x batch": f.get("steady_samples_per_s"),
                 "warm epoch samples/s": f.get("warm_epoch_samples_per_s"),
                 **({"TFLOP/s": f.get("model_tflops_per_s"),
                     "of peak": f.get("fraction_of_peak")} if "matmul_peak_tflops" in distill
                    else {}), "error": f.get("error", "")}
                for name, f in distill.items() if name in DISTILL_INCLUDES]
        s = distill["settings"]
        lines += ["", f"distillation, one epoch of {s['rows']} rows, batch {s['batch']}, max "
                      f"length {s['max_length']}, {s['recipe']}", table(rows)]
        lines += [f"  {name}: {text}" for name, text in DISTILL_INCLUDES.items()]
    if "matmul_peak_tflops" in distill:
        lines.append(f"  bf16 matmul peak ({PEAK_MATMUL_N}^3, measured): "
                     f"{distill['matmul_peak_tflops']:,.0f} TFLOP/s")
    for name, f in distill.get("distillab_128x128", {}).items():
        if isinstance(f, dict):
            lines.append(f"  DistilLab 128x128 {name}: " + ", ".join(
                f"{k} {v:,.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in f.items()))
    speedup = result["speedup"]
    if speedup:
        rows = [{"model": role, "latency p50 ms": f["latency_ms_p50"],
                 "p95": f["latency_ms_p95"], "model-only p50": f["model_latency_ms_p50"],
                 "throughput/s": f["throughput_per_s"],
                 "model-only/s": f["model_throughput_per_s"], "batch": f["throughput_batch"]}
                for role, f in speedup.items() if role in ("teacher", "student", "student_int8")]
        lines += ["", "student vs teacher (core.speed.measure_speed; latency at batch 1, "
                      "throughput at the large batch)", table(rows),
                  "  speed-up: " + ", ".join(f"{k} {v:.2f}x"
                                             for k, v in speedup["student_speedup"].items())]
    lines += ["", "ratios (DistilLab over the other): " + ", ".join(
        f"{k} {v:.2f}x" for k, v in result["ratios"].items()
        if not k.endswith(("_short", "_long")))]
    for check in result["targets"]:
        measured = "n/a" if check["measured"] is None else f"{check['measured']:.2f}"
        verdict = {True: "met", False: "NOT met", None: "not measured"}[check["met"]]
        lines.append(f"target {check['ratio']} >= {check['target']}: {measured} ({verdict}"
                     f"{'' if check['applies'] else '; stated for another model/device'})")
    lines.append(f"elapsed {result['elapsed_s']:.0f} s")
    return "\n".join(lines)


def _load_average() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:  # not on every platform
        return None


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _describe_model(model: Any) -> dict[str, Any]:
    config = model.config
    return {"layers": config.num_hidden_layers, "hidden": config.hidden_size,
            "params": sum(p.numel() for p in model.parameters()),
            "attention": getattr(config, "_attn_implementation", None)}


def _versions() -> dict[str, str]:
    import importlib.metadata as metadata

    versions = {"python": platform.python_version()}
    for name in ("torch", "transformers", "tokenizers", "evaluate", "datasets", "accelerate"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)
