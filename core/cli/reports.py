"""Commands that write something out: export (a model with its card), bench (speed against
the usual Hugging Face paths) and report (the paper's table)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from core.cli.jobs import _ProgressBars
from core.specs import SpecError


def cmd_export(args: argparse.Namespace) -> int:
    """``distillab export RUN_ID [--role R] (--out DIR | --zip [PATH] | --push REPO)``.

    Expects ``args.run_id``, ``args.role``, ``args.out``, ``args.zip``, ``args.push``,
    ``args.public``, ``args.token`` and ``args.runs_dir``; prints the folder, zip or URL.
    """
    from core.export import export_model, push_to_hub, zip_model

    if sum(bool(x) for x in (args.out, args.zip, args.push)) != 1:
        raise SpecError("export: give exactly one of --out DIR, --zip [PATH] or --push REPO")
    if args.push:
        print(push_to_hub(args.run_id, args.role, args.push, token=args.token,
                          private=not args.public, runs_dir=args.runs_dir))
    elif args.zip:
        print(zip_model(args.run_id, args.role, args.runs_dir,
                        None if args.zip is True else args.zip))
    else:
        print(export_model(args.run_id, args.role, args.out, args.runs_dir))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """``distillab bench``: run, print the table, write ``--json``; returns the exit status."""
    from core.bench.report import format_bench_table, json_default
    from core.bench.runner import run_bench
    from core.bench.settings import BenchSettings
    from core.devices import resolve_device

    try:
        device = resolve_device(args.device)
        sections = [s.strip() for s in str(args.sections).split(",") if s.strip()]
        settings = BenchSettings.build(bool(args.quick), args.model_size, device, sections,
                                       args.sst2_dir)
        path = Path(args.json) if args.json else None

        def write(result: dict[str, Any]) -> None:
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(result, indent=2, default=json_default))

        result = run_bench(settings, on_section=write)
    except (ValueError, FileNotFoundError) as error:
        print(f"distillab bench: error: {error}", file=sys.stderr)
        return 2
    print(format_bench_table(result))
    if path is not None:
        print(f"figures written to {path}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    import platform

    from core.devices import describe_device, resolve_device
    from core.report import (
        default_tasks,
        markdown_table,
        report_specs,
        run_report,
        summarise,
        write_plot,
    )

    known = default_tasks(args.data_root)
    keys = [k.strip() for k in args.tasks.split(",") if k.strip()]
    unknown = [k for k in keys if k not in known]
    if unknown:
        raise SpecError(f"report: unknown task(s) {unknown}; known: {', '.join(known)}")
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError as error:
        raise SpecError(f"report: --seeds takes integers such as 1,2,3, got {args.seeds!r}"
                        ) from error
    tasks = [known[k] for k in keys]
    student: dict[str, Any] = {"epochs": args.epochs}
    teacher: dict[str, Any] = {"epochs": args.teacher_epochs}
    if args.lr is not None:
        student["learning_rate"] = args.lr
    if args.teacher_lr is not None:
        teacher["learning_rate"] = args.teacher_lr
    train = {"student": student, "teacher": teacher, "max_length": args.max_length}
    jobs = report_specs(tasks, seeds, teacher=args.teacher, train=train,
                        max_train_examples=args.max_train_examples or None,
                        max_eval_examples=args.max_eval_examples, augment=args.augment)
    from core.runs import runs_root

    progress = _ProgressBars()
    try:
        results = run_report(jobs, runs_root(args.runs_dir), on_event=progress)
    finally:
        progress.close()
    rows = summarise(tasks, seeds, results)
    stages = jobs[0][2].train
    settings = (f"Teacher {args.teacher} fine-tuned {args.teacher_epochs} epoch(s) at lr "
                f"{stages.teacher.learning_rate:g}, students {args.epochs} at lr "
                f"{stages.student.learning_rate:g}"
                + (f", the distilled student with {args.augment} augmented variants per "
                   f"training text" if args.augment else "")
                + f", max length {args.max_length}, training rows "
                f"{args.max_train_examples or 'all'}, validation rows "
                f"{args.max_eval_examples or 'all'}; {describe_device(resolve_device('auto'))}"
                f", {platform.python_version()}; runs "
                f"{', '.join(sorted(r['run_id'] for r in results.values()))}.")
    table = markdown_table(tasks, seeds, rows, settings)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(table)
    write_plot(rows, args.png)
    print(table)
    print(f"written: {args.out}, {args.png}")
    return 0


def cmd_ablation(args: argparse.Namespace) -> int:
    from core.ablation import (
        GENERAL_STARTS,
        TASKS,
        VARIANTS,
        find_or_run,
        general_spec,
        markdown_table,
        summarise,
        task_base,
        variant_spec,
    )
    from core.devices import describe_device, resolve_device
    from core.runs import runs_root
    from core.specs import JobSpec

    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError as error:
        raise SpecError(f"ablation: --seeds takes integers such as 42,43,44, got "
                        f"{args.seeds!r}") from error
    if not 1 <= len(seeds) <= 10:
        raise SpecError("ablation: give 1 to 10 seeds")
    base = task_base(args.task, args.data_root, args.labels)
    title, train = TASKS[args.task][0], base["train"]
    rows_note = (f"{base['dataset']['max_train_examples']:,} labelled rows"
                 if base["dataset"]["max_train_examples"] else "all labelled rows")
    runs_dir = runs_root(args.runs_dir)
    progress = _ProgressBars()
    try:
        generals = {name: find_or_run(JobSpec.from_dict(general_spec(
            base, args.general_texts, attention=attention)).to_dict(), runs_dir, progress)
            for name, attention in GENERAL_STARTS.items()}
        references = {name: f"run:{run.id}/general" for name, run in generals.items()}
        runs = {(variant.key, seed): find_or_run(variant_spec(base, variant, seed, references),
                                                 runs_dir, progress)
                for seed in seeds for variant in VARIANTS}
    finally:
        progress.close()
    rows = summarise(runs, seeds)
    from core.ablation import stage_seconds

    general_s = {name: sum(stage_seconds(run).values()) for name, run in generals.items()}
    note = (f"{title}, {rows_note}, scored on all of "
            f"{Path(base['dataset']['validation']).name}; MiniLM teacher fine-tuned "
            f"{train['teacher']['epochs']} epoch(s), students {train['student']['epochs']}, "
            f"max length {train['max_length']}, seeds "
            f"{', '.join(map(str, seeds))}; {describe_device(resolve_device('auto'))}. "
            f"Wall time: the variant's own stages (augmentation, student or baseline); the "
            f"teacher of a seed is fine-tuned once and cached. The general students "
            f"(up to {args.general_texts:,} unlabelled {title} texts, 1 epoch), each made "
            f"once and shared by every seed: {references['general']} in "
            f"{general_s['general']:.0f} s, with attention transfer "
            f"{references['general_attention']} in {general_s['general_attention']:.0f} s. "
            f"Runs: {', '.join(sorted({run.id for run in runs.values()}))}.")
    table = markdown_table(rows, note)
    out = Path(args.out or f"docs/ablation_{args.task}.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table)
    print(table)
    print(f"written: {out}")
    return 0
