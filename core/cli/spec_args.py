"""``distillab run``'s job spec: a spec file (JSON or YAML) with the flags laid over it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from core.specs import BUNDLED_TEACHER, STAGE_KEYS, JobSpec, SpecError


def spec_from_args(args: argparse.Namespace) -> JobSpec:
    """A JobSpec from a spec file (if any) with the flags laid over it."""
    data: dict[str, Any] = {}
    if args.spec:
        data = _read_spec_file(Path(args.spec))
    dataset = dict(data.get("dataset") or {})
    if isinstance(data.get("dataset"), str):
        dataset = {"name": data["dataset"]}
    for flag, key in (("dataset", "name"), ("validation", "validation"),
                      ("dataset_config", "config"), ("text_column", "text_column"),
                      ("text_pair_column", "text_pair_column"),
                      ("label_column", "label_column"), ("task", "task"),
                      ("max_train_examples", "max_train_examples"),
                      ("max_eval_examples", "max_eval_examples"), ("transfer", "transfer"),
                      ("max_transfer_examples", "max_transfer_examples"),
                      ("augment", "augment"), ("augment_method", "augment_method"),
                      ("augment_mlm", "augment_mlm")):
        if getattr(args, flag) is not None:
            dataset[key] = getattr(args, flag)
    data["dataset"] = dataset
    student = dict(data.get("student") or {})
    if args.student_layers:
        student.update(kind="extract", layers=args.student_layers)
    elif args.student_size:
        from core.preflight import teacher_depth
        from core.students import layers_for_size

        teacher = args.teacher or data.get("teacher") or BUNDLED_TEACHER
        student.update(kind="extract", layers=layers_for_size(
            args.student_size, teacher_depth(teacher, args.runs_dir)))
    if args.student:
        student.update(kind="pretrained", checkpoint=args.student)
    if args.student_fresh:
        try:
            layers, hidden, heads = (int(v) for v in args.student_fresh.lower().split("x"))
        except ValueError as error:
            raise SpecError(f"--student-fresh takes LxHxA, e.g. 4x256x4; got "
                            f"{args.student_fresh!r}") from error
        student.update(kind="fresh", num_layers=layers, hidden_size=hidden, num_heads=heads)
    data["student"] = student
    recipe = data.get("recipe", "distilbert")
    recipe = {"name": recipe} if isinstance(recipe, str) else dict(recipe)
    for flag, key in (("recipe", "name"), ("temperature", "temperature"),
                      ("alpha_kd", "alpha_kd"), ("alpha_ce", "alpha_ce"),
                      ("alpha_cos", "alpha_cos")):
        if getattr(args, flag) is not None:
            recipe[key] = getattr(args, flag)
    data["recipe"] = recipe
    train = data.get("train", "quick")
    train = {"preset": train} if isinstance(train, str) else dict(train)
    for flag, key in (("epochs", "epochs"), ("teacher_epochs", "teacher_epochs"),
                      ("lr", "learning_rate"), ("teacher_lr", "teacher_learning_rate")):
        if getattr(args, flag) is not None:
            # A flag wins over the spec file's value, flat or under train.student/teacher.
            stage, field = STAGE_KEYS[key]
            if isinstance(train.get(stage), dict):
                train[stage] = {k: v for k, v in train[stage].items() if k != field}
            train[key] = getattr(args, flag)
    for flag, key in (("preset", "preset"), ("batch_size", "batch_size"),
                      ("grad_accum", "grad_accum_steps"), ("max_length", "max_length"),
                      ("eval_batch_tokens", "eval_batch_tokens")):
        if getattr(args, flag) is not None:
            train[key] = getattr(args, flag)
    if args.compile:
        train["compile"] = True
    data["train"] = train
    for flag in ("teacher", "seed", "device", "name", "timing"):
        if getattr(args, flag) is not None:
            data[flag] = getattr(args, flag)
    if args.no_baseline:
        data["baseline"] = False
    if getattr(args, "command", None) == "general":
        data.update(kind="general", baseline=False)
        if args.attention_transfer:
            data["attention_transfer"] = True
    return JobSpec.from_dict(data)


def _read_spec_file(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise SpecError(f"spec file not found: {path}")
    text = path.read_text()
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            return yaml.safe_load(text) or {}
        return json.loads(text)
    except Exception as error:
        raise SpecError(f"cannot parse spec file {path}: {error}") from error
