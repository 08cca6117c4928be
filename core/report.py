"""The DistilBERT paper's table at small scale: ``distillab report``.

Runs the same job (a teacher fine-tuned from the bundled MiniLM, its 3-layer student
distilled with the DistilBERT recipe, the no-teacher baseline) on several tasks and seeds,
then writes one Markdown table in the paper's shape (per-task score, a GLUE-style macro
average, mean ± std over seeds, % of the teacher kept, parameters, CPU latency at batch 1)
and a PNG of the macro score against latency. A finished run of the same name and spec is
reused, so an interrupted report picks up where it stopped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.run_record import LATENCY_P50, ModelMetrics, RunMetrics, RunState
from core.runs import Run, create_run, list_run_objects
from core.specs import BUNDLED_TEACHER, DatasetSpec, JobSpec, SpecError

logger = logging.getLogger(__name__)

ROLES = ("teacher", "student", "baseline")
MAX_SEEDS = 10


@dataclass(frozen=True)
class ReportTask:
    """One column of the table: a short key, its title and its data."""

    key: str
    title: str
    dataset: DatasetSpec


def default_tasks(data_root: str | Path = "../shared/data") -> dict[str, ReportTask]:
    """SST-2, MRPC and STS-B from the shared data folder (``sst2/``, ``glue/``)."""
    root = Path(data_root)

    def files(folder: Path, validation: str) -> DatasetSpec:
        return DatasetSpec(name=str(folder / "train.tsv"), validation=str(folder / validation))

    return {"sst2": ReportTask("sst2", "SST-2", files(root / "sst2", "dev.tsv")),
            "mrpc": ReportTask("mrpc", "MRPC", files(root / "glue" / "mrpc", "test.tsv")),
            "stsb": ReportTask("stsb", "STS-B", files(root / "glue" / "stsb", "dev.tsv"))}


def report_specs(tasks: Sequence[ReportTask], seeds: Sequence[int], *,
                 teacher: str = BUNDLED_TEACHER, train: dict[str, Any] | None = None,
                 max_train_examples: int | None = None, max_eval_examples: int | None = None,
                 student_layers: Sequence[int] = (0, 2, 4), augment: int = 0
                 ) -> list[tuple[ReportTask, int, JobSpec]]:
    """The job of every (task, seed), validated before any runs (``augment``: variants per
    training text for the distilled student, as ``--augment``)."""
    if not tasks:
        raise SpecError("report: name at least one task")
    if not seeds or len(seeds) > MAX_SEEDS:
        raise SpecError(f"report: give 1 to {MAX_SEEDS} seeds, got {len(seeds)}")
    jobs = []
    for task in tasks:
        dataset = dataclasses.replace(task.dataset, max_train_examples=max_train_examples,
                                      max_eval_examples=max_eval_examples, augment=augment)
        for seed in seeds:
            spec = JobSpec.from_dict({
                "teacher": teacher, "dataset": dataclasses.asdict(dataset),
                "student": {"kind": "extract", "layers": list(student_layers)},
                "recipe": "distilbert", "train": {"preset": "quick", **(train or {})},
                "seed": int(seed), "name": f"report-{task.key}-s{seed}"})
            jobs.append((task, int(seed), spec))
    return jobs


def run_report(jobs: Sequence[tuple[ReportTask, int, JobSpec]], runs_dir: str | Path,
               on_event: Callable[[dict[str, Any]], None] | None = None
               ) -> dict[tuple[str, int], dict[str, Any]]:
    """Run (or reuse) every job; ``{(task key, seed): metrics.json's dict}``. The first
    event is a ``log`` with :func:`report_plan`'s line."""
    from core.pipeline import run_job

    runs = list_run_objects(runs_dir)  # read once for every job
    # A default student's layers are written into spec.json once built: compare the rest.
    finished = [finished_run(runs, spec.to_dict(), ("student",)) for _, _, spec in jobs]
    if on_event is not None:
        on_event({"type": "log", "message": report_plan(jobs, finished)})
    results = {}
    for (task, seed, spec), run in zip(jobs, finished, strict=True):
        if run is None:
            logger.info("report: %s seed %d", task.title, seed)
            run = create_run(spec.to_dict(), runs_dir)
            run_job(run, on_event=on_event)
        results[(task.key, seed)] = {**run.metrics, "run_id": run.id}
    return results


def report_plan(jobs: Sequence[tuple[ReportTask, int, JobSpec]],
                finished: Sequence[Run | None]) -> str:
    """One line saying what a report will do: how many jobs, how many finished runs it
    reuses (``finished``: each job's, or None), how many it trains (each: teacher,
    distilled student, baseline)."""
    to_run = sum(run is None for run in finished)
    tasks = len({task.key for task, _, _ in jobs})
    seeds = len({seed for _, seed, _ in jobs})
    line = (f"report: {len(jobs)} job(s) ({tasks} task(s) x {seeds} seed(s)); "
            f"{len(jobs) - to_run} finished run(s) reused, {to_run} to train")
    if to_run:
        line += (" (each: the teacher, fine-tuned once per task and seed and cached, the "
                 "distilled student and the baseline; 20-70 minutes a job on a 2-core CPU "
                 "at the default settings)")
    return line


def comparable_spec(spec: dict[str, Any], ignore: Sequence[str]) -> dict[str, Any]:
    """``spec`` read the way JobSpec reads it (a spec.json written by an older version
    included), without the keys in ``ignore``: two runs of the same job compare equal.

    Raises:
        SpecError: a spec this version no longer reads.
    """
    return {k: v for k, v in JobSpec.from_dict(spec).to_dict().items() if k not in ignore}


def finished_run(runs: Iterable[Run], spec: dict[str, Any], ignore: Sequence[str]
                 ) -> Run | None:
    """The first done run in ``runs`` of the same job as ``spec``: equal specs but for the
    keys in ``ignore`` (:func:`comparable_spec`). A run whose spec or status cannot be read,
    or whose spec this version no longer reads, is not the job."""
    wanted = comparable_spec(spec, ignore)
    for run in runs:
        try:
            if (run.status().get("state") == RunState.DONE
                    and comparable_spec(run.spec, ignore) == wanted):
                return run
        except (OSError, ValueError):  # ValueError: broken JSON, or a SpecError
            continue
    return None


def main_score(metrics: dict[str, Any] | ModelMetrics) -> float | None:
    """A model's main metric: Spearman for a regression (one scored with it), else accuracy."""
    if not isinstance(metrics, ModelMetrics):
        metrics = ModelMetrics.from_dict(metrics)
    value = metrics.accuracy if metrics.spearman is None else metrics.spearman
    return None if value is None else float(value)


def summarise(tasks: Sequence[ReportTask], seeds: Sequence[int],
              results: dict[tuple[str, int], dict[str, Any]]) -> list[dict[str, Any]]:
    """Per role: each task's and the macro average's mean and std over seeds (x100), the %
    of the teacher's macro average kept (and of each task's score, ``kept_by_task``),
    parameters and batch-1 latency."""
    rows = []
    runs = {key: RunMetrics.from_dict(metrics) for key, metrics in results.items()}
    # Each task's metric, as its runs were scored: Spearman for a regression.
    metrics = {t.key: "Spearman" if any(runs[(t.key, s)].models["teacher"].spearman is not None
                                        for s in seeds) else "acc." for t in tasks}
    for role in ROLES:
        row: dict[str, Any] = {"role": role, "metrics": metrics}
        macros, kept, latencies, params = [], [], [], []
        # (this role's score, the teacher's) per (task, seed), read once.
        scored: dict[tuple[str, int], tuple[float | None, float | None]] = {}
        for seed in seeds:
            for task in tasks:
                run = runs[(task.key, seed)]
                model = run.model(role)
                scored[(task.key, seed)] = (main_score(model), main_score(run.models["teacher"]))
                latencies.append(model.latency_ms_p50)
                params.append(model.params)
            scores, teacher_scores = zip(*(scored[(t.key, seed)] for t in tasks), strict=True)
            if None not in scores:
                macros.append(100 * statistics.fmean(scores))
                kept.append(100 * statistics.fmean(scores) / statistics.fmean(teacher_scores))
        row["kept_by_task"] = {}
        for task in tasks:
            pairs = [scored[(task.key, s)] for s in seeds]
            row[task.key] = mean_std([100 * v for v, _ in pairs if v is not None])
            row["kept_by_task"][task.key] = mean_std([100 * v / t for v, t in pairs
                                                      if v is not None and t])
        row["macro"], row["kept"] = mean_std(macros), mean_std(kept)
        row[LATENCY_P50] = mean_std([v for v in latencies if v is not None])
        row["params"] = max((p for p in params if p), default=None)
        rows.append(row)
    return rows


def mean_std(values: Sequence[float]) -> tuple[float, float] | None:
    """Mean and sample standard deviation (0 for one value); None for no values."""
    if not values:
        return None
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def mean_std_cell(value: tuple[float, float] | None, digits: int = 1) -> str:
    """``mean ± std`` to ``digits`` decimals, or a dash for None."""
    if value is None:
        return "–"
    mean, std = value
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def markdown_table(tasks: Sequence[ReportTask], seeds: Sequence[int],
                   rows: list[dict[str, Any]], settings: str) -> str:
    """The table in the paper's shape, with the settings it was measured under."""
    metric = rows[0]["metrics"] if rows else {}
    header = ["model", "macro score", *(f"{t.title} ({metric[t.key]})" for t in tasks),
              "% of teacher", "parameters (M)", "latency p50, batch 1 (ms)"]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    names = {"teacher": "teacher (MiniLM, 6 layers)", "student": "student (3 layers, distilled)",
             "baseline": "baseline (3 layers, no teacher)"}
    for row in rows:
        params = f"{row['params'] / 1e6:.1f}" if row["params"] else "–"
        cells = [mean_std_cell(row["macro"]), *(mean_std_cell(row[t.key]) for t in tasks),
                 mean_std_cell(row["kept"]), params, mean_std_cell(row[LATENCY_P50], 2)]
        lines.append("| " + " | ".join([names[row["role"]], *cells]) + " |")
    by_role = {row["role"]: row for row in rows}
    notes = [f"Mean ± standard deviation over {len(seeds)} seed(s) ({', '.join(map(str, seeds))}"
             f"); scores x100; the macro score averages the task scores (STS-B counts its "
             f"Spearman correlation); % of teacher is the macro score over the teacher's, per "
             f"seed. {settings}"]
    kept = by_role["student"].get("kept_by_task", {})
    if any(kept.values()):
        notes.append("The student keeps, per task: " + ", ".join(
            f"{t.title} {mean_std_cell(kept[t.key])}%" for t in tasks if kept.get(t.key)) + ".")
    student, baseline = by_role["student"]["macro"], by_role["baseline"]["macro"]
    if student and baseline:
        notes.append(f"Distillation vs baseline: {student[0] - baseline[0]:+.1f} macro points.")
    return "\n".join(lines + [""] + notes) + "\n"


def write_plot(rows: list[dict[str, Any]], path: str | Path) -> Path:
    """A PNG of the macro score against batch-1 latency, one point per role (Pillow)."""
    from PIL import Image, ImageDraw, ImageFont

    colours = {"teacher": (31, 119, 180), "student": (255, 127, 14), "baseline": (44, 160, 44)}
    points = [(r["role"], r[LATENCY_P50][0], r["macro"][0]) for r in rows
              if r[LATENCY_P50] and r["macro"]]
    width, height, pad = 640, 420, 70
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    # Pillow's own TrueType face at a readable size for every call below; without FreeType,
    # or before Pillow 10.1, its small bitmap face.
    with contextlib.suppress(ImportError, OSError, TypeError):
        draw.font = ImageFont.load_default(size=13)
    draw.line([(pad, pad // 2), (pad, height - pad), (width - pad // 2, height - pad)],
              fill="black", width=2)
    draw.text((width // 2 - 90, height - pad + 30), "latency p50, batch 1 (ms)", fill="black")
    draw.text((8, pad // 2 - 20), "macro score (x100)", fill="black")
    if points:
        xs, ys = [p[1] for p in points], [p[2] for p in points]
        x_lo, x_hi = 0.0, max(xs) * 1.15
        y_lo, y_hi = min(ys) - 2.0, max(ys) + 2.0

        def at(x: float, y: float) -> tuple[float, float]:
            return (pad + (x - x_lo) / (x_hi - x_lo) * (width - 1.5 * pad),
                    height - pad - (y - y_lo) / (y_hi - y_lo) * (height - 1.5 * pad))

        for value in (x_lo, (x_lo + x_hi) / 2, x_hi):
            draw.text((at(value, y_lo)[0] - 10, height - pad + 8), f"{value:.1f}", fill="black")
        for value in (y_lo, (y_lo + y_hi) / 2, y_hi):
            draw.text((8, at(x_lo, value)[1] - 6), f"{value:.1f}", fill="black")
        for role, x, y in points:
            cx, cy = at(x, y)
            draw.ellipse([cx - 7, cy - 7, cx + 7, cy + 7], fill=colours.get(role, (127,) * 3))
            label = f"{role} ({y:.1f}, {x:.1f} ms)"
            # Right of the point, or left of it where the label would leave the image.
            room = cx + 10 + draw.textlength(label) <= width - 4
            draw.text((cx + 10 if room else cx - 10 - draw.textlength(label), cy - 6), label,
                      fill="black")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG")
    return path
