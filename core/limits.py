"""Limits on every size and count a caller controls, checked in core for the UI, API and CLI.

Each limit has two documented defaults, one for a local (single-user) server and the CLI and a
tighter one for public mode (a Space or a share link, see :mod:`core.access`). The owner
changes any of them with ``DISTILLAB_LIMIT_<NAME>`` (e.g. ``DISTILLAB_LIMIT_MAX_EPOCHS=40``);
docs/SECURITY.md lists them all.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from core.specs import JobSpec, SpecError


class LimitError(SpecError):
    """A request over one of the server's limits; the message names the limit and its value."""


@dataclass(frozen=True)
class Limits:
    """The server's limits. Field names are the ``DISTILLAB_LIMIT_<NAME>`` variables."""

    max_epochs: int = 100
    max_teacher_epochs: int = 100
    max_batch_size: int = 4096
    max_grad_accum_steps: int = 256
    max_length: int = 8192  # also at most the teacher's own position limit (core.preflight)
    max_temperature: float = 100.0
    max_seed: int = 2**32 - 1
    max_fresh_layers: int = 48
    max_fresh_hidden_size: int = 4096
    max_fresh_heads: int = 64
    max_train_examples: int = 10_000_000
    max_eval_examples: int = 1_000_000
    max_transfer_examples: int = 10_000_000
    max_texts: int = 10_000  # texts per compare / predict call
    max_text_chars: int = 1_000_000  # characters per text in compare / predict
    max_models: int = 16  # models per compare / evaluate call
    max_queued_per_visitor: int = 0  # 0: no per-visitor cap (one user)
    max_queued_total: int = 500  # queued and running runs on the server
    visitor_disk_gb: float = 0.0  # 0: no per-visitor disk budget
    max_upload_mb: float = 500.0  # one uploaded data file (also DISTILLAB_MAX_UPLOAD_MB)

    @classmethod
    def for_mode(cls, public: bool, env: Mapping[str, str] | None = None) -> Limits:
        """The defaults for the mode, overridden by ``DISTILLAB_LIMIT_*`` variables.

        Raises:
            ValueError: a variable that is not a number of the limit's type.
        """
        env = os.environ if env is None else env
        limits = PUBLIC_LIMITS if public else cls()
        changes: dict[str, float | int] = {}
        for item in fields(cls):
            raw = env.get(f"DISTILLAB_LIMIT_{item.name.upper()}", "").strip()
            if not raw:
                continue
            try:
                value = float(raw) if item.type == "float" else int(raw)
            except ValueError:
                raise ValueError(f"DISTILLAB_LIMIT_{item.name.upper()}: give a number, "
                                 f"got {raw!r}") from None
            if value < 0 or not math.isfinite(value):
                raise ValueError(f"DISTILLAB_LIMIT_{item.name.upper()} must be >= 0")
            changes[item.name] = value
        return replace(limits, **changes)


# A public Space on a CPU or one GPU, shared by strangers: jobs of minutes, not days.
PUBLIC_LIMITS = Limits(
    max_epochs=10, max_teacher_epochs=10, max_batch_size=256, max_grad_accum_steps=16,
    max_length=512, max_temperature=20.0, max_seed=2**32 - 1, max_fresh_layers=12,
    max_fresh_hidden_size=1024, max_fresh_heads=16, max_train_examples=50_000,
    max_eval_examples=5_000, max_transfer_examples=50_000, max_texts=32,
    max_text_chars=5_000, max_models=4, max_queued_per_visitor=2, max_queued_total=20,
    visitor_disk_gb=2.0, max_upload_mb=50.0)


def _over(name: str, value: float, limit: float, what: str) -> None:
    if value > limit:
        raise LimitError(f"{what} is {_number(value)}, over this server's limit of "
                         f"{_number(limit)} (DISTILLAB_LIMIT_{name.upper()})")


def _number(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() and abs(value) < 1e18 else f"{value:g}"


def check_spec(spec: JobSpec, limits: Limits) -> None:
    """Refuse a job spec over a limit (types and lower bounds are JobSpec's own checks).

    Raises:
        LimitError: the first field over its limit, with the limit and its variable.
    """
    train, data, student, recipe = spec.train, spec.dataset, spec.student, spec.recipe
    _over("max_epochs", train.student.epochs, limits.max_epochs, "train.student.epochs")
    _over("max_teacher_epochs", train.teacher.epochs, limits.max_teacher_epochs,
          "train.teacher.epochs")
    _over("max_batch_size", train.batch_size, limits.max_batch_size, "train.batch_size")
    _over("max_grad_accum_steps", train.grad_accum_steps, limits.max_grad_accum_steps,
          "train.grad_accum_steps")
    _over("max_length", train.max_length, limits.max_length, "train.max_length")
    if not math.isfinite(recipe.temperature):
        raise LimitError(f"recipe.temperature must be a finite number, got {recipe.temperature}")
    _over("max_temperature", recipe.temperature, limits.max_temperature, "recipe.temperature")
    if not 0 <= spec.seed <= limits.max_seed:
        raise LimitError(f"seed must be in 0..{limits.max_seed} (DISTILLAB_LIMIT_MAX_SEED), "
                         f"got {spec.seed}")
    if student.kind == "fresh":
        _over("max_fresh_layers", student.num_layers or 0, limits.max_fresh_layers,
              "student.num_layers")
        _over("max_fresh_hidden_size", student.hidden_size or 0, limits.max_fresh_hidden_size,
              "student.hidden_size")
        _over("max_fresh_heads", student.num_heads or 0, limits.max_fresh_heads,
              "student.num_heads")
    for attr in ("max_train_examples", "max_eval_examples", "max_transfer_examples"):
        value = getattr(data, attr)
        if value is not None:
            _over(attr, value, getattr(limits, attr), f"dataset.{attr}")


def capped_examples(spec: JobSpec, limits: Limits) -> JobSpec:
    """The spec with unset example counts set to the limits, so a job never reads more.

    A dataset smaller than the cap is used whole, as without it; a bigger one is subsampled
    (stratified, seeded) as an explicit ``max_train_examples`` would.
    """
    data = spec.dataset
    changes = {attr: getattr(limits, attr) for attr in
               ("max_train_examples", "max_eval_examples", "max_transfer_examples")
               if getattr(data, attr) is None}
    return replace(spec, dataset=replace(data, **changes)) if changes else spec


def check_texts(texts: list[Any], limits: Limits, what: str = "texts") -> None:
    """Refuse more texts, or longer ones, than the limits allow (compare, predict); a
    sentence pair counts as one text of both sides' characters.

    Raises:
        LimitError: too many texts, or one too long (its position and length).
    """
    from core.texts import text_chars

    _over("max_texts", len(texts), limits.max_texts, f"the number of {what}")
    for position, text in enumerate(texts, start=1):
        if text_chars(text) > limits.max_text_chars:
            raise LimitError(f"text {position} has {text_chars(text):,} characters, over this "
                             f"server's limit of {limits.max_text_chars:,} "
                             "(DISTILLAB_LIMIT_MAX_TEXT_CHARS)")


def check_max_length(max_length: int, limits: Limits) -> None:
    """Refuse a truncation length over the limit (compare, evaluate, predict)."""
    if max_length < 1:
        raise LimitError(f"max_length must be at least 1, got {max_length}")
    _over("max_length", max_length, limits.max_length, "max_length")


def check_models(refs: list[str], limits: Limits) -> None:
    """Refuse more models than one compare or evaluate call may load."""
    _over("max_models", len(refs), limits.max_models, "the number of models")
