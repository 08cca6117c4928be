"""Score every saved model of a run on one validation set, size it and time it.

Writes ``metrics.json`` (``{"models": {role: {...}}, ...}``) and ``predictions.parquet``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from core.runs import Run

SPEED_TEXTS = 256


def score_model(model: Any, tokenizer: Any, texts: Sequence[str], labels: Sequence[int],
                label_names: list[str], *, max_length: int, device: Any,
                measure: bool = True) -> tuple[dict[str, Any], np.ndarray]:
    """Quality, size and speed of one model on one validation set.

    Returns:
        The model's metrics dict and its (n, classes) probabilities.
    """
    from core.evaluation import compute_metrics, predict_proba
    from core.models import count_parameters
    from core.speed import measure_speed

    probs = predict_proba(model, tokenizer, texts, max_length=max_length, device=device)
    quality = compute_metrics(labels, probs.argmax(-1), label_names)
    total, non_embedding = count_parameters(model)
    metrics: dict[str, Any] = {**quality, "params": total, "params_non_embedding": non_embedding,
                               "num_layers": getattr(model.config, "num_hidden_layers", None)}
    if measure:
        metrics.update(measure_speed(model, tokenizer, list(texts)[:SPEED_TEXTS],
                                     max_length=max_length, device=device))
    return metrics, probs


def score_run(run: Run, data: Any, max_length: int, device: Any,
              emit: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Score every model saved in ``run`` on ``data``'s validation set; write the results."""
    from core.evaluation import agreement, predictions_table
    from core.models import load_classifier, size_on_disk_mb

    emit = emit or (lambda event: None)
    models: dict[str, dict[str, Any]] = {}
    probabilities: dict[str, np.ndarray] = {}
    for role in run.models():
        emit({"type": "log", "message": f"scoring {role}"})
        model, tokenizer, _ = load_classifier(str(run.model_dir(role)), data.label_names)
        model.to(device).eval()
        metrics, probs = score_model(model, tokenizer, data.validation_texts,
                                     data.validation_labels, data.label_names,
                                     max_length=max_length, device=device)
        metrics["size_mb"] = size_on_disk_mb(run.model_dir(role))
        models[role], probabilities[role] = metrics, probs
        emit({"type": "scored", "role": role, "accuracy": metrics["accuracy"],
              "latency_ms_p50": metrics.get("latency_ms_p50")})
    if "teacher" in probabilities:
        teacher_pred = probabilities["teacher"].argmax(-1)
        for role, probs in probabilities.items():
            models[role]["agreement_with_teacher"] = agreement(teacher_pred, probs.argmax(-1))
    result = {"models": models, "label_names": data.label_names,
              "validation_size": len(data.validation_texts),
              "train_size": len(data.train_texts), "transfer_size": len(data.transfer_texts),
              "dataset": data.description, "max_length": max_length}
    run.write_predictions(predictions_table(data.validation_texts, data.validation_labels,
                                            probabilities, data.label_names))
    run.write_metrics(result)
    return result
