"""What each part of distillation gives, in the shape of the paper's ablation:
``distillab ablation``.

On one task (SST-2 with 4,000 labels, the setting of docs/RESULTS.md, or MRPC pairs), over
several seeds, the same 3-layer student is trained eight ways:

* ``baseline``: the layers of the *pretrained* encoder, hard labels only (a task job's
  no-teacher baseline);
* ``labels``: the layers of the *fine-tuned* teacher, hard labels only: what the
  initialisation gives, apart from the soft targets;
* ``kd``: the layers of the fine-tuned teacher, soft targets + hard labels (``logits``);
* ``kd_aug``: ``kd`` on the labelled texts plus ``--augment 4`` variants of each;
* ``kd_cos``: ``kd`` plus the hidden-state cosine (the ``distilbert`` recipe);
* ``general_kd``: a student first distilled on unlabelled text (``distillab general``), then ``kd``;
* ``gen_att_kd``: the same with MiniLM's attention transfer in the general stage;
* ``random_kd``: a randomly initialised 3-layer student, then ``kd``.

Every job is a plain task job in the runs folder (the teacher of a seed is fine-tuned once
and cached); a finished job of the same spec is reused whatever its name, so an interrupted
ablation picks up where it stopped and earlier runs count.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.report import comparable_spec, finished_run, main_score, mean_std, mean_std_cell
from core.runs import Run, create_run, list_run_objects
from core.specs import JobSpec


@dataclass(frozen=True)
class Variant:
    """One row: its key, its title, the job's spec changes and the role it reads."""

    key: str
    title: str
    changes: dict[str, Any]
    role: str = "student"


VARIANTS = (
    Variant("baseline", "baseline: pretrained layers, labels only", {"baseline": True},
            role="baseline"),
    Variant("labels", "fine-tuned teacher's layers, labels only",
            {"recipe": "baseline"}),  # the recipe of that name: cross-entropy alone
    Variant("kd", "KD (soft targets + labels)", {"baseline": True}),
    Variant("kd_aug", "KD + augmentation (4 per text)",
            {"baseline": True, "dataset": {"augment": 4}}),
    Variant("kd_cos", "KD + hidden-state cosine", {"recipe": "distilbert"}),
    Variant("general_kd", "general-distilled start + KD",
            {"student": {"kind": "pretrained", "checkpoint": "{general}"}}),
    Variant("gen_att_kd", "general-distilled start (+ attention transfer) + KD",
            {"student": {"kind": "pretrained", "checkpoint": "{general_attention}"}}),
    Variant("random_kd", "random-init student + KD",
            {"student": {"kind": "fresh", "num_layers": 3}}),
)


def _base(train: Path, validation: Path, labels: int | None, epochs: int,
          max_length: int) -> dict[str, Any]:
    """A task job on the bundled MiniLM with the 3-layer student and the ``logits`` recipe."""
    return {"teacher": "bundled:minilm",
            "dataset": {"name": str(train), "validation": str(validation),
                        "max_train_examples": labels},
            "student": {"kind": "extract", "layers": [0, 2, 4]}, "recipe": "logits",
            "train": {"preset": "quick", "student": {"epochs": epochs},
                      "teacher": {"epochs": epochs}, "max_length": max_length},
            "baseline": False}


def sst2_base(data_root: str | Path = "../shared/data", labels: int = 4000) -> dict[str, Any]:
    """The task job every variant changes: SST-2 with ``labels`` labelled sentences, 1 epoch,
    max length 64."""
    folder = Path(data_root) / "sst2"
    return _base(folder / "train.tsv", folder / "dev.tsv", labels, epochs=1, max_length=64)


def mrpc_base(data_root: str | Path = "../shared/data", labels: int | None = None
              ) -> dict[str, Any]:
    """The same on MRPC sentence pairs (all 4,080 training pairs unless ``labels``), scored
    on its test set, with the settings of the MRPC run in docs/RESULTS.md (max length 128,
    3 epochs for the teacher and the student)."""
    folder = Path(data_root) / "glue" / "mrpc"
    return _base(folder / "train.tsv", folder / "test.tsv", labels, epochs=3, max_length=128)


TASKS = {"sst2": ("SST-2", sst2_base, 4000), "mrpc": ("MRPC", mrpc_base, None)}


def task_base(task: str, data_root: str | Path, labels: int | None) -> dict[str, Any]:
    """The base job of ``task`` (``sst2`` or ``mrpc``); ``labels`` None: the task's default."""
    if task not in TASKS:
        raise ValueError(f"ablation: --task must be one of {', '.join(TASKS)}, got {task!r}")
    _, make, default = TASKS[task]
    return make(data_root, default if labels is None else labels)


# The general students the variants start from: placeholder -> with attention transfer.
GENERAL_STARTS = {"general": False, "general_attention": True}


def general_spec(base: dict[str, Any], texts: int, attention: bool = False
                 ) -> dict[str, Any]:
    """The general-distillation job: the task's training file read as ``texts`` unlabelled
    texts (the labelled ones among them), the same student layers, 1 epoch; ``attention``:
    with MiniLM's attention transfer."""
    dataset = {**base["dataset"], "max_train_examples": texts}
    spec = {**base, "dataset": dataset, "kind": "general", "seed": 42,
            "train": {**base["train"], "student": {"epochs": 1}},
            "name": "ablation-general" + ("-attention" if attention else "")}
    return {**spec, "attention_transfer": True} if attention else spec


def variant_spec(base: dict[str, Any], variant: Variant, seed: int,
                 general_refs: dict[str, str]) -> dict[str, Any]:
    """``base`` with ``variant``'s changes, for one seed (validated); ``general_refs``: the
    general students (``run:<id>/general``) by placeholder name (``general``, ...)."""
    spec = json.loads(json.dumps(base))
    for key, value in variant.changes.items():
        if isinstance(value, dict) and isinstance(spec.get(key), dict):
            spec[key] = {**({} if key == "student" else spec[key]), **value}
        else:
            spec[key] = value
    checkpoint = str(spec["student"].get("checkpoint") or "")
    if checkpoint.startswith("{") and checkpoint.endswith("}"):
        spec["student"]["checkpoint"] = general_refs[checkpoint[1:-1]]
    spec.update(seed=int(seed), name=f"ablation-{variant.key}-s{seed}")
    return JobSpec.from_dict(spec).to_dict()


# Name and timing do not change what a job learns.
NOT_THE_JOB = ("name", "timing")


def _comparable(spec: dict[str, Any]) -> dict[str, Any]:
    return comparable_spec(spec, NOT_THE_JOB)


def find_or_run(spec: dict[str, Any], runs_dir: str | Path,
                on_event: Callable[[dict[str, Any]], None] | None = None) -> Run:
    """A finished run of the same job (any name), else a new one, run here."""
    from core.pipeline import run_job

    found = finished_run(list_run_objects(runs_dir), spec, NOT_THE_JOB)
    if found is not None:
        return found
    run = create_run({**spec, "timing": "off"}, runs_dir)
    run_job(run, on_event=on_event)
    return run


def stage_seconds(run: Run) -> dict[str, float]:
    """Seconds of each stage of a run, from its event log (a stage ends where the next
    begins, the last at the run's last event)."""
    events = run.events()
    stages = [(e["stage"], e["time"]) for e in events if e.get("type") == "stage"]
    end = events[-1]["time"] if events else 0.0
    bounds = [t for _, t in stages[1:]] + [end]
    return {name: later - start for (name, start), later in zip(stages, bounds, strict=True)}


def variant_seconds(run: Run, variant: Variant) -> float:
    """What the variant costs on top of a cached teacher: its own stages."""
    seconds = stage_seconds(run)
    wanted = ("baseline",) if variant.role == "baseline" else ("augment", "student")
    return sum(seconds.get(name, 0.0) for name in wanted)


def summarise(runs: dict[tuple[str, int], Run], seeds: list[int]) -> list[dict[str, Any]]:
    """Per variant: accuracy (x100) mean and std over seeds, % of the teacher kept, the
    teacher's own score and the seconds the variant's stages took (mean)."""
    rows = []
    for variant in VARIANTS:
        scores, kept, teachers, seconds = [], [], [], []
        for seed in seeds:
            run = runs.get((variant.key, seed))
            if run is None:
                continue
            models = run.metrics.get("models") or {}
            score, teacher = main_score(models.get(variant.role, {})), main_score(
                models.get("teacher", {}))
            if score is None or teacher is None:
                continue
            scores.append(100 * score)
            teachers.append(100 * teacher)
            kept.append(100 * score / teacher)
            seconds.append(variant_seconds(run, variant))
        rows.append({"key": variant.key, "title": variant.title, "seeds": len(scores),
                     "score": mean_std(scores), "kept": mean_std(kept),
                     "teacher": mean_std(teachers),
                     "seconds": statistics.fmean(seconds) if seconds else None})
    return rows


def markdown_table(rows: list[dict[str, Any]], note: str) -> str:
    """The ablation table, with what it was measured under."""
    lines = ["| student | accuracy (%) | % of teacher | seeds | its stages' wall time (s) |",
             "| --- | --- | --- | --- | --- |"]
    for row in rows:
        seconds = "–" if row["seconds"] is None else f"{row['seconds']:.0f}"
        lines.append(f"| {row['title']} | {mean_std_cell(row['score'], 2)} | "
                     f"{mean_std_cell(row['kept'])} | {row['seeds']} | {seconds} |")
    teacher = next((r["teacher"] for r in rows if r["teacher"]), None)
    lines += ["", f"Teacher: {mean_std_cell(teacher, 2)}%. {note}"]
    return "\n".join(lines) + "\n"
