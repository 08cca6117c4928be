"""Score every saved model of a run on one validation set, size it and time it.

Writes ``metrics.json`` (``{"models": {role: {...}}, ...}``) and ``predictions.parquet``.
On a CPU run the student is also quantised to dynamic int8 (``core/quantize.py``) and
scored as the role ``student_int8``, like the others: an extra point on the trade-off plot.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.machine_load import OtherLoad
from core.run_record import INT8_ROLE
from core.runs import Run
from core.tasks import CLASSIFICATION, REGRESSION, regression_metrics, task_of

log = logging.getLogger(__name__)

SPEED_TEXTS = 256


def score_model(model: Any, tokenizer: Any, texts: Sequence[str], labels: Sequence[int],
                label_names: list[str], *, max_length: int, device: Any,
                measure: bool = True, batch_tokens: int | None = None
                ) -> tuple[dict[str, Any], np.ndarray]:
    """Quality, size and speed of one model on one validation set (``batch_tokens``: padded
    tokens per scoring batch, default the device's).

    Returns:
        The model's metrics dict and its (n, classes) probabilities.
    """
    import torch

    from core.inference import Predictor
    from core.saving import count_parameters
    from core.scores import compute_metrics
    from core.speed import measure_speed

    predictor = Predictor(model, tokenizer, label_names, max_length, torch.device(device))
    probs = predictor.predict_proba(list(texts), batch_tokens=batch_tokens)
    regression = task_of(label_names) == REGRESSION
    quality = (regression_metrics(labels, probs[:, 0]) if regression
               else compute_metrics(labels, probs.argmax(-1), label_names))
    quality["task"] = REGRESSION if regression else CLASSIFICATION
    total, non_embedding = count_parameters(model)
    metrics: dict[str, Any] = {**quality, "params": total, "params_non_embedding": non_embedding,
                               "num_layers": getattr(model.config, "num_hidden_layers", None)}
    if measure:
        with OtherLoad() as load:
            metrics.update(measure_speed(model, tokenizer, list(texts)[:SPEED_TEXTS],
                                         max_length=max_length, device=device))
        metrics.update(load.figures)
    if not regression:
        metrics["predicted_classes"] = int(len(np.unique(probs.argmax(-1)))) if len(probs) else 0
    return metrics, probs


def score_run(run: Run, data: Any, max_length: int, device: Any,
              emit: Callable[[dict[str, Any]], None] | None = None,
              batch_tokens: int | None = None) -> dict[str, Any]:
    """Score every model saved in ``run`` on ``data``'s validation set; write the results."""
    from core.models import load_classifier
    from core.saving import size_on_disk_mb
    from core.scores import agreement, predictions_table
    from core.timing import LEVELS, timing_level

    emit = emit or (lambda event: None)
    level = timing_level(run.spec.get("timing"))
    rounds = LEVELS[level][0] if level != "off" else 0
    models: dict[str, dict[str, Any]] = {}
    probabilities: dict[str, np.ndarray] = {}
    loaded: dict[str, tuple[Any, Any]] = {}
    roles = run.models()
    # One step per model scored, then one per round of timing them all side by side.
    total = len(roles) + int("student" in roles and _wants_int8(device)) + rounds
    started = time.monotonic()

    def progress(done: int, what: str) -> None:
        # The evaluate stage reports steps and an ETA like training does.
        spent = time.monotonic() - started
        emit({"type": "step", "stage": "evaluate", "step": done, "total_steps": total,
              "epoch": None, "epochs": None, "message": what,
              "eta_s": spent / done * (total - done) if done else None})

    for role in roles:
        progress(len(models), f"scoring {role}")
        emit({"type": "log", "message": f"scoring {role}"})
        model, tokenizer, _ = load_classifier(str(run.model_dir(role)), data.label_names)
        model.to(device).eval()
        metrics, probs = score_model(model, tokenizer, data.validation_texts,
                                     data.validation_labels, data.label_names,
                                     max_length=max_length, device=device,
                                     measure=False, batch_tokens=batch_tokens)
        metrics["size_mb"] = size_on_disk_mb(run.model_dir(role))
        models[role], probabilities[role] = metrics, probs
        loaded[role] = (model, tokenizer)
        emit({"type": "scored", "role": role, "accuracy": metrics.get("accuracy"),
              "spearman": metrics.get("spearman")})
        if role == "student" and _wants_int8(device):
            progress(len(models), f"scoring {INT8_ROLE}")
            emit({"type": "log", "message": "scoring student_int8 (dynamic int8 on CPU)"})
            metrics, probs, quantized = score_int8(run, model, tokenizer, data, max_length,
                                                   metrics)
            models[INT8_ROLE], probabilities[INT8_ROLE] = metrics, probs
            loaded[INT8_ROLE] = (quantized, tokenizer)
            emit({"type": "scored", "role": INT8_ROLE, "accuracy": metrics.get("accuracy"),
                  "spearman": metrics.get("spearman")})
    # Timed last, all together and interleaved in rounds (core.timing): a speed-up is taken
    # per round, so a busy moment slows both sides of it rather than one model.
    done = len(models)
    if level == "off":
        emit({"type": "log", "message": "timing is off for this job (spec timing: off)"})
        timing = {"models": {}}
    else:
        emit({"type": "log", "message": f"timing {', '.join(loaded)} in {rounds} "
              f"round{'s' if rounds > 1 else ''} ({level})"})
        timing = _time_scored_models(run, loaded, data, max_length, device, emit, level,
                                     lambda r: progress(done + r, f"timing, round {r + 1}"))
    for role, figures in timing["models"].items():
        if role == INT8_ROLE:  # timed in fp32 activations; its weights' precision is its name
            figures = {k: v for k, v in figures.items() if k != "precision"}
        models[role].update(figures, rounds=timing["rounds"],
                            others_cpu_share=timing["others_cpu_share_max"],
                            load_avg_1m=timing["load_avg_1m"],
                            machine_busy=timing["machine_busy"],
                            timed_in=timing.get("timed_in"))
        emit({"type": "scored", "role": role, "accuracy": models[role].get("accuracy"),
              "latency_ms_p50": figures["latency_ms_p50"]})
    if "teacher" in probabilities and task_of(data.label_names) == REGRESSION:
        # No labels to agree on: how closely each model's outputs follow the teacher's.
        from core.sklearn_metrics import pearson

        for role, outputs in probabilities.items():
            models[role]["correlation_with_teacher"] = pearson(
                probabilities["teacher"][:, 0], outputs[:, 0])
    elif "teacher" in probabilities:
        teacher_pred = probabilities["teacher"].argmax(-1)
        for role, probs in probabilities.items():
            models[role]["agreement_with_teacher"] = agreement(teacher_pred, probs.argmax(-1))
    result = {"models": models, "label_names": data.label_names,
              "validation_size": len(data.validation_texts),
              "train_size": len(data.train_texts), "transfer_size": len(data.transfer_texts),
              "augmentation": _augmentation(run),
              "dataset": data.description, "max_length": max_length,
              "task": getattr(data, "task", CLASSIFICATION),
              "validation_fingerprint": validation_fingerprint(data),
              "task_note": getattr(data, "task_note", ""),
              "text_columns": list(getattr(data, "text_columns", ()) or ("text",))}
    run.write_predictions(predictions_table(data.validation_texts, data.validation_labels,
                                            probabilities, data.label_names))
    run.write_metrics(result)
    return result


def validation_fingerprint(data: Any) -> str:
    """A hash of the validation texts and targets: models scored on equal ones compare."""
    import hashlib
    import json

    from core.batching import texts_fingerprint

    content = [texts_fingerprint(data.validation_texts),
               [float(v) for v in data.validation_labels], list(data.label_names)]
    return hashlib.sha256(json.dumps(content).encode()).hexdigest()[:16]


def _augmentation(run: Run) -> dict[str, Any] | None:
    """What ``--augment`` added to the transfer set (``augmentation.json``), if anything."""
    import json

    path = run.path / "augmentation.json"
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except (OSError, ValueError):
        return None


def _time_scored_models(run: Run, loaded: dict[str, tuple[Any, Any]], data: Any,
                        max_length: int, device: Any, emit: Callable[[dict[str, Any]], None],
                        level: str, on_round: Callable[[int], None]) -> dict[str, Any]:
    """Time the scored models side by side (``core.timing``): in a fresh worker process
    that loads them from the run folder, or here where ``DISTILLAB_TIMING_PROCESS=same``
    or the worker fails (the run then says so)."""
    import torch

    from core.timing import LEVELS, time_in_fresh_process, time_models, timing_process

    texts = list(data.validation_texts)
    where = "the job's process"
    if timing_process() == "fresh":
        if torch.device(device).type == "cuda":
            torch.cuda.empty_cache()  # the worker needs the memory training cached
        try:
            return time_in_fresh_process(run, texts, max_length=max_length, device=device,
                                         int8=INT8_ROLE in loaded,
                                         label_names=list(data.label_names), level=level,
                                         on_round=on_round)
        except (RuntimeError, OSError) as error:
            log.warning("timing in a fresh process failed, timing here: %s", error)
            emit({"type": "log", "message": f"the timing worker failed ({error}); "
                                            "timing in the job's process"})
            where = "the job's process (the fresh worker failed)"
    rounds, speed_texts, latency_samples = LEVELS[level]
    timing = time_models(loaded, texts, max_length=max_length, device=device, rounds=rounds,
                         on_round=on_round, speed_texts=speed_texts,
                         latency_samples=latency_samples)
    timing["timed_in"] = where
    return timing


def _wants_int8(device: Any) -> bool:
    import torch

    from core.quantize import int8_supported

    # Dynamic int8 kernels exist for CPUs only; on a GPU run its numbers would not compare.
    return torch.device(device).type == "cpu" and int8_supported()


def score_int8(run: Run, student: Any, tokenizer: Any, data: Any, max_length: int,
               student_metrics: dict[str, Any]) -> tuple[dict[str, Any], np.ndarray, Any]:
    """Quantise ``student`` to dynamic int8, score it on the CPU and save its weights.

    Args:
        run: the run; the weights go to ``models/student_int8/`` (no ``config.json``, so
            it is not listed as a loadable model folder).
        student: the trained float student.
        tokenizer: its tokenizer.
        data: the run's data (validation texts and labels).
        max_length: truncation length in tokens.
        student_metrics: the float student's metrics (parameter counts are the same).
    Returns:
        The int8 model's metrics (``precision`` is ``int8-dynamic``; ``size_mb`` is the
        saved state dict, ``size_counts`` says what that includes), its probabilities and
        the quantised model (timed with the others by :func:`score_run`).
    """
    from core.quantize import INT8_PRECISION, WHAT_SIZE_COUNTS, quantize_dynamic_int8, save_int8

    quantized = quantize_dynamic_int8(student)
    metrics, probs = score_model(quantized, tokenizer, data.validation_texts,
                                 data.validation_labels, data.label_names,
                                 max_length=max_length, device="cpu", measure=False)
    # Packed int8 weights are not nn.Parameters: count the float student's parameters.
    for key in ("params", "params_non_embedding", "num_layers"):
        metrics[key] = student_metrics.get(key)
    metrics.update(precision=INT8_PRECISION, quantized_from="student",
                   size_mb=save_int8(quantized, run.model_dir(INT8_ROLE), "student"),
                   size_counts=WHAT_SIZE_COUNTS)
    return metrics, probs, quantized


def evaluate_models(model_refs: Sequence[str], dataset: Any, runs_dir: Any = None, *,
                    max_length: int = 128, device: str = "auto", measure: bool = True
                    ) -> tuple[str, dict[str, dict[str, Any]]]:
    """Score saved classifiers on one dataset's validation set (``distillab eval``, the app).

    Args:
        model_refs: ``run:<id>/<role>``, model folders or Hub ids (online).
        dataset: a :class:`core.specs.DatasetSpec`; its validation set is scored.
        runs_dir: the runs folder for ``run:`` refs.
        max_length: truncation length in tokens.
        device: where to run the models.
        measure: also time latency and throughput.
    Returns:
        The dataset's description and each model's metrics, keyed by its reference.
    Raises:
        ValueError: no models, bad data, or a model without a head for the dataset's labels.
    """
    from core.data import load_data
    from core.devices import resolve_device
    from core.models import load_classifier

    if not model_refs:
        raise ValueError("evaluate: pick at least one model")
    whole_file = not dataset.validation and Path(dataset.name).expanduser().is_file()
    if whole_file:
        # One labelled file given to score: all its rows, not the 10% a training job holds out.
        dataset = dataclasses.replace(dataset, validation=dataset.name)
    data = load_data(dataset)
    if whole_file:
        data = dataclasses.replace(data, description=f"{Path(dataset.name).name}: all "
                                   f"{len(data.validation_texts):,} rows, "
                                   f"{len(data.label_names)} labels")
    target = resolve_device(device)
    models = {}
    for ref in model_refs:
        model, tokenizer, has_head = load_classifier(ref, data.label_names, runs_dir=runs_dir)
        if not has_head:
            raise ValueError(f"{ref} has no classification head for the labels "
                             f"{data.label_names}: fine-tune it first with a job")
        models[ref] = score_model(model.to(target), tokenizer, data.validation_texts,
                                  data.validation_labels, data.label_names,
                                  max_length=max_length, device=target, measure=measure)[0]
    return data.description, models
