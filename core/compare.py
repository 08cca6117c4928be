"""Side-by-side predictions, disagreement browsing and the accuracy/speed/size trade-offs.

The engine side of the app's Compare and Trade-offs tabs (and their CLI twins):

* :func:`compare` runs several models on the same texts and times each text end to end;
* :func:`disagreements` reads two models' saved validation predictions and lists the
  examples where they disagree (or either is wrong);
* :func:`tradeoffs` gathers every scored model across runs with its Pareto flags.

Models are loaded and run through ``core.inference.Predictor`` (one LRU model cache, the
run's own max_length, the leaderboard's way of timing).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import numpy as np
import pandas as pd

from core.run_record import (
    LATENCY_P50,
    PARAMS,
    SIZE_MB,
    THROUGHPUT,
    TRADEOFF_COLUMNS,
    TRADEOFF_NUMERIC,
)
from core.runs import ModelRef, Run, RunError, leaderboard, open_run
from core.texts import PAIR_COLUMN, Text, has_pairs, is_pair

logger = logging.getLogger(__name__)

DISAGREEMENT_MODES = ("disagree", "either_wrong", "all")
COMPARE_COLUMNS = ["text_index", "text", "model", "label", "confidence", "probabilities",
                   "latency_ms", "max_length", "agree"]
DISAGREEMENT_COLUMNS = ["index", "text", "true_label", "a_label", "a_confidence", "b_label",
                        "b_confidence", "confidence_gap", "a_correct", "b_correct"]
# (flag, x column, minimise x): the score (the task's main metric) is always maximised.
PARETO_AXES = (("pareto_latency", LATENCY_P50, True), ("pareto_size", SIZE_MB, True),
               ("pareto_params", PARAMS, True), ("pareto_throughput", THROUGHPUT, False))


# Regression: two values "agree", and a value is "right", within this share of the targets'
# range (0.5 on STS-B's 0-5 scale); in compare, where no targets are at hand, within 0.5.
REGRESSION_TOLERANCE = 0.1
REGRESSION_AGREE_WITHIN = 0.5


class CompareError(ValueError):
    """A comparison that cannot be made, with a message that says why and what to do."""


# --- compare -------------------------------------------------------------------------


def compare(texts: Sequence[Text], model_refs: Sequence[str],
            runs_dir: str | os.PathLike | None = None, max_length: int | None = None,
            device: str = "auto") -> pd.DataFrame:
    """Every model's prediction on every text, side by side.

    Args:
        texts: the texts to classify (blank ones are dropped), or ``(first, second)``
            pairs for a sentence-pair model (both sides needed).
        model_refs: model references (``run:<id>/<role>``, folders, ``bundled:...``).
        runs_dir: the runs folder for ``run:`` refs.
        max_length: truncation length in tokens; None or 0: each model's own (its run's).
        device: where to run the models.
    Returns:
        One row per (text, model): ``text_index, text`` (and ``text_pair`` for pairs),
        ``model, label, confidence,
        probabilities`` (label -> probability), ``latency_ms`` (batch 1, end to end, warmed,
        the median of repeats: the leaderboard's latency), ``max_length`` and ``agree``
        (every model gave this text the same label).
    Raises:
        CompareError: no texts or no models; ModelError for a model that cannot be loaded.
    """
    from core.inference import Predictor

    texts = clean_texts(texts)
    refs = list(dict.fromkeys(r.strip() for r in model_refs if r and r.strip()))
    if not texts:
        raise CompareError("no texts to compare: give at least one non-empty text")
    if not refs:
        raise CompareError("no models to compare: give at least one model reference")
    if max_length is not None and max_length < 0:
        raise CompareError(f"max_length must be at least 1 (0: each model's own), got "
                           f"{max_length}")
    rows = []
    for ref in refs:
        predictor = Predictor.load(ref, runs_dir, device, max_length or None)
        names = predictor.label_names
        for i, text in enumerate(texts):
            probs, latency_ms = predictor.time_one(text)
            best = int(probs.argmax())
            shown = {"text": text[0], PAIR_COLUMN: text[1]} if is_pair(text) else {"text": text}
            # A regression model (one output) "labels" a text with its value.
            label = f"{float(probs[0]):.3f}" if len(names) == 1 else names[best]
            rows.append({"text_index": i, **shown, "model": ref, "label": label,
                         "confidence": float(probs[best]) if len(names) > 1 else float("nan"),
                         "probabilities": {n: float(p) for n, p in zip(names, probs,
                                                                       strict=True)},
                         "latency_ms": latency_ms, "max_length": predictor.max_length})
    columns = _with_pair_column(COMPARE_COLUMNS, has_pairs(texts))
    table = pd.DataFrame(rows, columns=columns[:-1])
    table["agree"] = table.groupby("text_index")["label"].transform("nunique") == 1
    values = pd.to_numeric(table["label"], errors="coerce")
    if table["confidence"].isna().all() and values.notna().all():  # regression models
        spread = values.groupby(table["text_index"]).transform(lambda v: v.max() - v.min())
        table["agree"] = spread <= REGRESSION_AGREE_WITHIN
    return table[columns]


def clean_texts(texts: Sequence[Text]) -> list[Text]:
    """Texts stripped, blank ones dropped; pairs stripped on both sides (a pair with a
    blank side raises :class:`CompareError`); single texts and pairs never mix."""
    cleaned: list[Text] = []
    for i, text in enumerate(texts, start=1):
        if isinstance(text, (list, tuple)):
            if len(text) != 2 or not all(isinstance(part, str) for part in text):
                raise CompareError(f"text {i}: a pair is two texts, got {text!r}")
            first, second = text[0].strip(), text[1].strip()
            if not first and not second:
                continue
            if not first or not second:
                raise CompareError(f"pair {i}: both texts are needed, the "
                                   f"{'first' if not first else 'second'} is blank")
            cleaned.append((first, second))
        elif isinstance(text, str):
            if text.strip():
                cleaned.append(text.strip())
        elif text is not None:
            raise CompareError(f"text {i}: expected a string or a pair, got {text!r}")
    if len({is_pair(t) for t in cleaned}) > 1:
        raise CompareError("give either single texts or pairs, not both")
    return cleaned


def _with_pair_column(columns: list[str], pairs: bool) -> list[str]:
    """``columns`` with ``text_pair`` after ``text`` when the rows are pairs."""
    if not pairs:
        return list(columns)
    at = columns.index("text") + 1
    return [*columns[:at], PAIR_COLUMN, *columns[at:]]


# --- disagreements -------------------------------------------------------------------


def _parse_run_ref(ref: str) -> tuple[str, str]:
    if not ModelRef.is_run_ref(ref):
        raise CompareError(f"{ref!r} is not a run model: disagreements read the validation "
                           "predictions saved with runs, so give models as run:<id>/<role>")
    model = ModelRef.parse(ref)
    return model.run_id, model.role


def _role_predictions(ref: str, runs_dir: str | os.PathLike | None) -> pd.DataFrame:
    run_id, role = _parse_run_ref(ref)
    run = open_run(run_id, runs_dir)
    table = run.predictions()
    if table.empty:
        raise RunError(f"run {run_id} has no validation predictions yet "
                       f"(state: {run.status().get('state')})")
    if f"{role}_pred" not in table.columns:
        roles = sorted(c[:-len("_pred")] for c in table.columns if c.endswith("_pred"))
        raise RunError(f"run {run_id} has no predictions of {role!r}; scored models: "
                       f"{', '.join(roles) or 'none'}")
    return table


def disagreements(model_a: str, model_b: str, runs_dir: str | os.PathLike | None = None,
                  mode: str = "disagree", true_label: str | None = None,
                  predicted_label: str | None = None) -> pd.DataFrame:
    """Validation examples where two run models disagree (or either is wrong).

    Args:
        model_a: ``run:<id>/<role>``.
        model_b: ``run:<id>/<role>``, from the same run or one scored on the same examples.
        runs_dir: the runs folder.
        mode: ``disagree`` (different labels), ``either_wrong`` (at least one is wrong) or
            ``all`` (every example).
        true_label: keep only examples with this true label (None or "": all).
        predicted_label: keep only examples where either model predicted this label.
    Returns:
        ``index, text`` (``text_pair`` too for pairs), ``true_label, a_label, a_confidence,
        b_label, b_confidence,
        confidence_gap`` (``|a_confidence - b_confidence|``), ``a_correct, b_correct``;
        sorted by confidence gap, largest first.
    Raises:
        CompareError: a ref that is not a run model, an unknown mode or label, or runs
            scored on different validation sets. RunError: an unknown run or model.
    """
    if mode not in DISAGREEMENT_MODES:
        raise CompareError(f"mode must be one of {', '.join(DISAGREEMENT_MODES)}, got {mode!r}")
    (_, role_a), (_, role_b) = _parse_run_ref(model_a), _parse_run_ref(model_b)
    table_a = _role_predictions(model_a, runs_dir)
    table_b = _role_predictions(model_b, runs_dir)
    regressions = {"label_name" not in t.columns for t in (table_a, table_b)}
    if regressions == {True}:
        return _regression_disagreements(table_a, table_b, role_a, role_b, model_a, model_b,
                                          mode, true_label, predicted_label)
    if len(regressions) > 1:
        raise CompareError(f"{model_a} and {model_b} do not predict the same kind of thing "
                           "(one is a classifier, the other a regression)")
    pairs = PAIR_COLUMN in table_a.columns
    if (len(table_a) != len(table_b) or table_a["text"].tolist() != table_b["text"].tolist()
            or pairs != (PAIR_COLUMN in table_b.columns)
            or (pairs and table_a[PAIR_COLUMN].tolist() != table_b[PAIR_COLUMN].tolist())
            or table_a["label_name"].tolist() != table_b["label_name"].tolist()):
        raise CompareError(f"{model_a} and {model_b} were scored on different validation sets "
                           f"({len(table_a)} and {len(table_b)} examples, not the same texts "
                           "and labels): pick two models of one run, or of runs on the same "
                           "data")
    rows = pd.DataFrame({
        "index": table_a["index"].to_numpy(),
        "text": table_a["text"].to_numpy(),
        **({PAIR_COLUMN: table_a[PAIR_COLUMN].to_numpy()} if pairs else {}),
        "true_label": table_a["label_name"].astype(str).to_numpy(),
        "a_label": table_a[f"{role_a}_pred_name"].astype(str).to_numpy(),
        "a_confidence": table_a[f"{role_a}_confidence"].astype(float).to_numpy(),
        "b_label": table_b[f"{role_b}_pred_name"].astype(str).to_numpy(),
        "b_confidence": table_b[f"{role_b}_confidence"].astype(float).to_numpy(),
    })
    rows["confidence_gap"] = (rows["a_confidence"] - rows["b_confidence"]).abs()
    rows["a_correct"] = rows["a_label"] == rows["true_label"]
    rows["b_correct"] = rows["b_label"] == rows["true_label"]
    labels = set(rows["true_label"]) | set(rows["a_label"]) | set(rows["b_label"])
    for name, value in (("true_label", true_label), ("predicted_label", predicted_label)):
        if value and value not in labels:
            raise CompareError(f"{name} {value!r} is not a label of these models; labels: "
                               f"{', '.join(sorted(labels))}")
    keep = np.ones(len(rows), dtype=bool)
    if mode == "disagree":
        keep &= (rows["a_label"] != rows["b_label"]).to_numpy()
    elif mode == "either_wrong":
        keep &= ~(rows["a_correct"] & rows["b_correct"]).to_numpy()
    if true_label:
        keep &= (rows["true_label"] == true_label).to_numpy()
    if predicted_label:
        keep &= ((rows["a_label"] == predicted_label)
                 | (rows["b_label"] == predicted_label)).to_numpy()
    rows = rows[keep].sort_values(["confidence_gap", "index"], ascending=[False, True],
                                  kind="stable")
    return rows.reset_index(drop=True)[_with_pair_column(DISAGREEMENT_COLUMNS, pairs)]


def _regression_disagreements(table_a: pd.DataFrame, table_b: pd.DataFrame, role_a: str,
                              role_b: str, model_a: str, model_b: str, mode: str,
                              true_label: str | None, predicted_label: str | None
                              ) -> pd.DataFrame:
    """:func:`disagreements` for regression models, ranked by ``|a - b|``.

    The columns are the classifier's (``*_label`` hold the values as text, the confidences
    are NaN, ``confidence_gap`` is ``|a - b|``, ``*_correct`` means within
    :data:`REGRESSION_TOLERANCE` of the targets' range) plus ``true_value, a_value,
    b_value``. ``disagree``: ``|a - b|`` beyond that tolerance; ``either_wrong``: either
    model's error beyond it.
    """
    if true_label or predicted_label:
        raise CompareError("true_label and predicted_label filter classes; these models "
                           "predict a number (regression)")
    pairs = PAIR_COLUMN in table_a.columns
    if (len(table_a) != len(table_b) or table_a["text"].tolist() != table_b["text"].tolist()
            or pairs != (PAIR_COLUMN in table_b.columns)
            or (pairs and table_a[PAIR_COLUMN].tolist() != table_b[PAIR_COLUMN].tolist())
            or not np.allclose(table_a["label"], table_b["label"])):
        raise CompareError(f"{model_a} and {model_b} were scored on different validation sets"
                           ": pick two models of one run, or of runs on the same data")
    truth = table_a["label"].astype(float).to_numpy()
    a = table_a[f"{role_a}_pred"].astype(float).to_numpy()
    b = table_b[f"{role_b}_pred"].astype(float).to_numpy()
    tolerance = REGRESSION_TOLERANCE * (float(truth.max() - truth.min()) or 1.0)
    rows = pd.DataFrame({
        "index": table_a["index"].to_numpy(), "text": table_a["text"].to_numpy(),
        **({PAIR_COLUMN: table_a[PAIR_COLUMN].to_numpy()} if pairs else {}),
        "true_label": [f"{v:.3f}" for v in truth], "a_label": [f"{v:.3f}" for v in a],
        "a_confidence": np.nan, "b_label": [f"{v:.3f}" for v in b], "b_confidence": np.nan,
        "confidence_gap": np.abs(a - b), "a_correct": np.abs(a - truth) <= tolerance,
        "b_correct": np.abs(b - truth) <= tolerance, "true_value": truth, "a_value": a,
        "b_value": b})
    keep = np.ones(len(rows), dtype=bool)
    if mode == "disagree":
        keep &= rows["confidence_gap"].to_numpy() > tolerance
    elif mode == "either_wrong":
        keep &= ~(rows["a_correct"] & rows["b_correct"]).to_numpy()
    rows = rows[keep].sort_values(["confidence_gap", "index"], ascending=[False, True],
                                  kind="stable")
    columns = _with_pair_column(DISAGREEMENT_COLUMNS, pairs) + ["true_value", "a_value",
                                                                "b_value"]
    return rows.reset_index(drop=True)[columns]


# --- trade-offs ----------------------------------------------------------------------


def pareto_front(x: Sequence[float], y: Sequence[float], minimize_x: bool) -> np.ndarray:
    """Which points are on the Pareto frontier of (x, y), y maximised.

    A point is on the frontier when no other point is at least as good on both axes and
    strictly better on one. Points with a missing (NaN) coordinate are never on it and
    never dominate another.

    Args:
        x: the cost or benefit axis (latency, size; or throughput).
        y: the quality axis (accuracy), maximised.
        minimize_x: True when a smaller x is better (latency, size), False when larger is
            (throughput).
    Returns:
        A boolean array, one flag per point.
    """
    xs = np.asarray(x, dtype=np.float64)
    ys = np.asarray(y, dtype=np.float64)
    if xs.shape != ys.shape or xs.ndim != 1:
        raise ValueError(f"x and y must be 1-D and equally long, got {xs.shape} and {ys.shape}")
    if not minimize_x:
        xs = -xs
    valid = ~(np.isnan(xs) | np.isnan(ys))
    # dominated[i, j]: point j is at least as good as i on both axes and better on one.
    no_worse = (xs[None, :] <= xs[:, None]) & (ys[None, :] >= ys[:, None])
    better = (xs[None, :] < xs[:, None]) | (ys[None, :] > ys[:, None])
    dominated = (no_worse & better & valid[None, :]).any(axis=1)
    return valid & ~dominated


def tradeoffs(runs_dir: str | os.PathLike | None = None,
              runs: list[Run] | None = None) -> pd.DataFrame:
    """Every scored model across runs with its quality, speed and size, and Pareto flags.

    Args:
        runs_dir: the runs folder.
        runs: the runs to include (default all; the app passes the caller's visible runs).
    Returns:
        One row per model: ``model, run_id, role, accuracy, macro_f1, latency_ms_p50,
        params, params_non_embedding, size_mb, throughput_per_s, device``, ``score`` (the
        task's main ``metric``: accuracy, or Spearman for a regression), ``task``,
        ``dataset`` (its name) and ``dataset_key`` (equal for models scored on the same
        validation set), and the flags ``pareto_latency`` (score vs latency),
        ``pareto_size`` (vs MB), ``pareto_params`` (vs parameters) and
        ``pareto_throughput`` (vs throughput, larger is better). Each frontier is drawn
        within one dataset: models scored on other data never dominate each other.
        Latencies measured on different devices are not comparable: see ``device``.
    """
    board = leaderboard(runs_dir, runs=runs)
    table = board[TRADEOFF_COLUMNS].copy()
    for column in TRADEOFF_NUMERIC:
        table[column] = pd.to_numeric(table[column], errors="coerce").astype("float64")
    for flag, _, _ in PARETO_AXES:
        table[flag] = False
    for _, group in table.groupby(table["dataset_key"].fillna(""), sort=False):
        for flag, column, minimize in PARETO_AXES:
            table.loc[group.index, flag] = pareto_front(
                group[column].to_numpy(), group["score"].to_numpy(), minimize_x=minimize)
    return table.reset_index(drop=True)
