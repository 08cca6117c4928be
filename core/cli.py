"""The command line: ``distillab`` / ``python -m core``. Every UI action has a twin here.

    distillab run [flags | --spec FILE | --resume RUN_ID]   a whole job (default: the bundled one)
    distillab runs [--models]                             list runs, or every scored model
    distillab eval MODEL... --dataset D [--validation V]   score saved models on a dataset
    distillab predict MODEL TEXT... [--text-pair P]... [--file F] [--json]  labels, probabilities
    distillab compare MODEL... --text T [--text-pair P]     models side by side on texts (pairs)
    distillab disagreements MODEL_A MODEL_B                where two models disagree
    distillab tradeoffs                                     accuracy vs latency/size, Pareto
    distillab cancel RUN_ID                                 stop a running job, drop a queued one
    distillab time RUN_ID [--rounds N]                      re-time a run's models here
    distillab delete RUN_ID                                 delete a run folder
    distillab share RUN_ID [--off]                          show a run to every visitor (public)
    distillab export RUN_ID [--out DIR | --zip | --push REPO]  a model with its model card
    distillab bench [--quick] [--json PATH]                 speed against the usual HF paths
    distillab report [--tasks sst2,mrpc,stsb] [--seeds 1,2,3]  the paper's table, small scale
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from core.specs import BUNDLED_TEACHER, PRESETS, RECIPES, JobSpec, SpecError
from core.texts import Text, is_pair, show_text

ERRORS_EXIT = 2
NOTHING_TO_CANCEL_EXIT = 1  # `distillab cancel` of a run that had finished already


def _parse_layers(value: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"--student-layers takes e.g. 0,2,4; got {value!r}") from error


def _add_run_parser(sub: Any) -> None:
    p = sub.add_parser("run", help="run a whole job (no flags: the bundled default job)")
    p.add_argument("--spec", help="a JSON or YAML job spec file (flags override it)")
    p.add_argument("--resume", metavar="RUN_ID", help="resume an interrupted or cancelled run")
    p.add_argument("--teacher", help="Hub id, local folder, run:<id>/<role> or bundled:minilm")
    p.add_argument("--dataset",
                   help="bbc_news, a CSV/TSV/JSONL/Parquet file or folder, or a Hub id")
    p.add_argument("--validation", help="a separate validation file (or Hub split)")
    p.add_argument("--dataset-config", help="Hub dataset config name")
    p.add_argument("--text-column", help="the text column (the first text of a pair)")
    p.add_argument("--text-pair-column",
                   help="the second text of a sentence pair (found without flags for "
                   "sentence1/sentence2, premise/hypothesis, question1/question2...)")
    p.add_argument("--label-column")
    p.add_argument("--task", choices=("auto", "classification", "regression"),
                   help="what the label column holds (auto: numbers that are not whole are a "
                   "regression target; the run says which it chose)")
    p.add_argument("--student-layers", type=_parse_layers,
                   help="teacher layers to keep, e.g. 0,2,4")
    p.add_argument("--student", help="a pretrained student checkpoint (same tokenizer)")
    p.add_argument("--student-size", choices=("half", "third", "quarter"),
                   help="the student's depth as a share of the teacher's layers (half: the "
                   "DistilBERT default); the UI's student-size presets")
    p.add_argument("--student-fresh", metavar="LxHxA",
                   help="a fresh student: layers x hidden x heads, e.g. 4x256x4")
    p.add_argument("--recipe", choices=sorted(RECIPES), help="loss preset")
    p.add_argument("--temperature", type=float)
    p.add_argument("--alpha-kd", type=float)
    p.add_argument("--alpha-ce", type=float)
    p.add_argument("--alpha-cos", type=float)
    p.add_argument("--preset", choices=sorted(PRESETS), help="size preset (quick: CPU, full: GPU)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--teacher-epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float, help="student learning rate")
    p.add_argument("--teacher-lr", type=float)
    p.add_argument("--grad-accum", type=int)
    p.add_argument("--compile", action="store_true", help="torch.compile the student")
    p.add_argument("--max-train-examples", type=int)
    p.add_argument("--max-eval-examples", type=int)
    p.add_argument("--max-length", type=int)
    p.add_argument("--eval-batch-tokens", type=int,
                   help="padded tokens per inference batch (default: 32,768 on a GPU, 1,024 "
                        "on a CPU); lower it if a GPU runs out of memory")
    p.add_argument("--transfer", help="unlabelled texts file, or 'rest' (training texts beyond "
                   "--max-train-examples)")
    p.add_argument("--max-transfer-examples", type=int)
    p.add_argument("--augment", type=int, metavar="N",
                   help="add N variants of every training text to the transfer set, "
                        "labelled by the teacher (masking, n-gram sampling, dropout, swaps)")
    p.add_argument("--augment-method", choices=("tang", "mlm"),
                   help="tang (default: rules, nothing extra) or mlm (TinyBERT's word "
                        "replacement; needs --augment-mlm)")
    p.add_argument("--augment-mlm", metavar="MODEL",
                   help="a masked-language model for --augment-method mlm, e.g. "
                        "bert-base-uncased")
    p.add_argument("--no-baseline", action="store_true", help="skip the no-teacher baseline")
    p.add_argument("--seed", type=int)
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--name", help="a short name for the run")


def _add_bench_parser(sub: Any) -> None:
    p = sub.add_parser("bench", help="time DistilLab against the usual Hugging Face paths")
    p.add_argument("--quick", action="store_true",
                   help="a subsample that fits ~5 min on a 2-core CPU")
    p.add_argument("--json", help="write every figure to this JSON file")
    p.add_argument("--model-size", default="minilm",
                   help="minilm (bundled, 6-layer teacher, 3-layer student) or bert-base "
                        "(12x768 teacher, 6x768 student, random weights, no Hub needed)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--sections", default="eval,distill,speedup,mfu",
                   help="comma list of eval, distill, speedup, mfu (batch 128 x 128 training "
                        "FLOP/s, CUDA only)")
    p.add_argument("--sst2-dir", default="../shared/data/sst2",
                   help="folder holding SST-2's train.tsv and dev.tsv")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="distillab", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs-dir", help="runs folder (default $DISTILLAB_RUNS_DIR or ./runs)")
    parser.add_argument("-v", "--verbose", action="store_true")
    # COMMAND, not argparse's {choice,...} list, which would name the hidden worker command.
    sub = parser.add_subparsers(dest="command", title="commands", metavar="COMMAND")
    _add_run_parser(sub)

    p = sub.add_parser("runs", help="list runs")
    p.add_argument("--models", action="store_true", help="one row per scored model instead")

    p = sub.add_parser("eval", help="score saved models on a dataset")
    p.add_argument("models", nargs="+", help="model refs: folders, run:<id>/<role>, Hub ids")
    p.add_argument("--dataset", default="bbc_news")
    p.add_argument("--validation")
    p.add_argument("--text-column")
    p.add_argument("--text-pair-column")
    p.add_argument("--label-column")
    p.add_argument("--task", choices=("auto", "classification", "regression"), default="auto")
    p.add_argument("--max-eval-examples", type=int)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--device", default="auto")
    p.add_argument("--no-speed", action="store_true", help="skip latency/throughput timing")

    p = sub.add_parser("predict", help="labels and probabilities for texts")
    p.add_argument("model", help="a model ref: folder, run:<id>/<role>, Hub id")
    p.add_argument("texts", nargs="*")
    p.add_argument("--text-pair", action="append", default=[],
                   help="the second text of a pair, once per text, in order (pair models)")
    p.add_argument("--file", help="a file of texts, one per line (or a CSV/TSV/JSONL column; "
                   "two columns such as sentence1/sentence2 are read as pairs)")
    p.add_argument("--text-column", help="the file's text column")
    p.add_argument("--text-pair-column", help="the file's second-text column (pairs)")
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true", help="JSON lines instead of a table")

    p = sub.add_parser("compare", help="several models side by side on texts")
    p.add_argument("models", nargs="+", help="model refs: run:<id>/<role>, folders")
    p.add_argument("--text", action="append", default=[], help="a text (repeatable)")
    p.add_argument("--text-pair", action="append", default=[],
                   help="the second text of a pair, once per --text, in order (pair models)")
    p.add_argument("--file", help="a file of texts, one per line (or a CSV/TSV/JSONL column; "
                   "two columns such as sentence1/sentence2 are read as pairs)")
    p.add_argument("--text-column", help="the file's text column")
    p.add_argument("--text-pair-column", help="the file's second-text column (pairs)")
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true", help="JSON lines instead of a table")

    p = sub.add_parser("report", help="the DistilBERT paper's table at small scale: teacher, "
                       "3-layer student and baseline on SST-2, MRPC and STS-B, over seeds")
    p.add_argument("--tasks", default="sst2,mrpc,stsb", help="comma-separated: sst2,mrpc,stsb")
    p.add_argument("--seeds", default="1,2,3", help="comma-separated seeds (at most 10)")
    p.add_argument("--data-root", default="../shared/data",
                   help="the folder holding sst2/ and glue/{mrpc,stsb}/")
    p.add_argument("--teacher", default=BUNDLED_TEACHER)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--teacher-epochs", type=int, default=3)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--max-train-examples", type=int)
    p.add_argument("--max-eval-examples", type=int)
    p.add_argument("--out", default="docs/GLUE_SMALL.md", help="the Markdown table's file")
    p.add_argument("--png", default="docs/glue_small.png", help="the trade-off plot's file")

    p = sub.add_parser("disagreements", help="validation examples where two models disagree")
    p.add_argument("model_a")
    p.add_argument("model_b")
    p.add_argument("--mode", choices=("disagree", "either_wrong", "all"), default="disagree")
    p.add_argument("--true-label")
    p.add_argument("--predicted-label")
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("tradeoffs", help="accuracy vs latency/size per model, Pareto flags")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("cancel", help="stop a running job (it saves a checkpoint) or drop a "
                       "queued one; exit status 1 if the run had finished already")
    p.add_argument("run_id")

    p = sub.add_parser("time", help="re-time a finished run's models on this machine "
                       "(interleaved rounds; kept beside the run's own timing)")
    p.add_argument("run_id")
    p.add_argument("--rounds", type=int, default=3, help="rounds of interleaved timing")

    p = sub.add_parser("delete", help="delete a run folder (not while it runs)")
    p.add_argument("run_id")

    p = sub.add_parser("share", help="show a run to every visitor of a public app, read-only")
    p.add_argument("run_id")
    p.add_argument("--off", action="store_true", help="stop sharing it")

    _add_bench_parser(sub)

    p = sub.add_parser("export", help="a run's model as a folder, a zip or a Hub repository, "
                       "with a generated model card")
    p.add_argument("run_id")
    p.add_argument("--role", default="student", help="student (default), teacher or baseline")
    p.add_argument("--out", metavar="DIR", help="write the model folder here")
    p.add_argument("--zip", nargs="?", const=True, metavar="PATH",
                   help="write a zip (default: a new temporary folder); prints its path")
    p.add_argument("--push", metavar="REPO_ID", help="push to this Hub model repository")
    p.add_argument("--public", action="store_true", help="create the Hub repository public "
                   "(default: private)")
    p.add_argument("--token", help="Hub write token (default: $HF_TOKEN or `hf auth login`)")

    # The job queue's: no help, so it is left out of the list (help=SUPPRESS would print
    # "==SUPPRESS==" there).
    p = sub.add_parser("worker")
    p.add_argument("run_id")
    # --runs-dir also after the command (distillab run --runs-dir X); SUPPRESS keeps the
    # one given before it when this one is absent.
    for command in sub.choices.values():
        if not any("--runs-dir" in a.option_strings for a in command._actions):
            command.add_argument("--runs-dir", default=argparse.SUPPRESS,
                                 help="runs folder (default $DISTILLAB_RUNS_DIR or ./runs)")
    return parser


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
    for flag, key in (("preset", "preset"), ("epochs", "epochs"),
                      ("teacher_epochs", "teacher_epochs"), ("batch_size", "batch_size"),
                      ("lr", "learning_rate"), ("teacher_lr", "teacher_learning_rate"),
                      ("grad_accum", "grad_accum_steps"), ("max_length", "max_length"),
                      ("eval_batch_tokens", "eval_batch_tokens")):
        if getattr(args, flag) is not None:
            train[key] = getattr(args, flag)
    if args.compile:
        train["compile"] = True
    data["train"] = train
    for flag in ("teacher", "seed", "device", "name"):
        if getattr(args, flag) is not None:
            data[flag] = getattr(args, flag)
    if args.no_baseline:
        data["baseline"] = False
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


class _ProgressBars:
    """tqdm bars fed by the engine's progress events."""

    def __init__(self) -> None:
        from tqdm.auto import tqdm

        self._tqdm = tqdm
        self._bar: Any = None
        self._stage = ""

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        if kind == "step":
            if self._bar is None or self._stage != event["stage"]:
                self.close()
                self._stage = event["stage"]
                # Starts at the first reported step (not 0): the rate counts the steps
                # made since the bar appeared, not all of them over a near-zero time.
                self._bar = self._tqdm(total=event["total_steps"], desc=f"{self._stage:>8}",
                                       unit="step", dynamic_ncols=True, initial=event["step"])
            if "loss" in event:  # training steps; evaluation's steps are one per model
                self._bar.set_postfix(epoch=f"{event['epoch']}/{event['epochs']}",
                                      loss=f"{event['loss']:.3f}", refresh=False)
            self._bar.update(event["step"] - self._bar.n)
        elif kind == "epoch":
            scores = (f"val Spearman {event['val_spearman']:.4f}, Pearson "
                      f"{event['val_pearson']:.4f}, MSE {event['val_mse']:.4f}"
                      if "val_spearman" in event else
                      f"val accuracy {event['val_accuracy']:.4f}, macro-F1 "
                      f"{event['val_macro_f1']:.4f}")
            self._write(f"  {event['stage']} epoch {event['epoch']}/{event['epochs']}: "
                        f"train loss {event['train_loss']:.4f}, {scores}")
        elif kind in ("stage", "log", "resumed"):
            if kind == "stage":
                self.close()
            message = event.get("message") or json.dumps(event)
            self._write(f"[{event.get('stage', kind)}] {message}" if kind == "stage" else
                        f"  {message}")
        elif kind == "error":
            self._write(f"error: {event['message']}")

    def _write(self, text: str) -> None:
        self._tqdm.write(text, file=sys.stderr)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def format_results_table(metrics: dict[str, Any]) -> str:
    """The end-of-job table: quality, size and speed per model, and the student's gains."""
    import pandas as pd

    models = metrics.get("models", {})
    regression = metrics.get("task") == "regression"
    # The task's main metric and its companion: accuracy and macro-F1, or Spearman and MSE.
    main, other = ("spearman", "mse") if regression else ("accuracy", "macro_f1")
    rows = []
    for role, m in models.items():
        rows.append({"model": role, main: m.get(main), other: m.get(other),
                     "params_M": m.get("params", 0) / 1e6, "size_MB": m.get("size_mb"),
                     "latency_ms_p50": m.get("latency_ms_p50"),
                     "latency_ms_p95": m.get("latency_ms_p95"),
                     "throughput_per_s": m.get("throughput_per_s")})
    table = pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:,.4g}")
    lines = [table]
    teacher, student = models.get("teacher"), models.get("student")
    if teacher and student:
        latency_ratio = teacher["latency_ms_p50"] / student["latency_ms_p50"]
        faster = f"{latency_ratio:.2f}x faster at batch 1 (p50)"
        if student.get("speedup_spread") is not None:  # timed in interleaved rounds
            faster = (f"{student['speedup_vs_teacher']:.2f}x ± {student['speedup_spread']:.2f} "
                      f"faster at batch 1 (median of {student.get('rounds')} rounds)")
        throughput_ratio = student["throughput_per_s"] / teacher["throughput_per_s"]
        lines.append(f"student vs teacher: {faster}, "
                     f"{throughput_ratio:.2f}x throughput, "
                     f"{100 * student[main] / teacher[main]:.1f}% of its {main}, "
                     f"{teacher['params'] / student['params']:.2f}x fewer parameters")
    if student and models.get("baseline"):
        delta = 100 * (student[main] - models["baseline"][main])
        lines.append(f"distillation vs baseline: {delta:+.2f} {main} points (x100)"
                     if regression else f"distillation vs baseline: {delta:+.2f} accuracy points")
    if teacher:
        lines.append(f"timed on {teacher.get('device')} in {teacher.get('precision')}; latency "
                     f"end to end at batch 1, throughput end to end at batch "
                     f"{teacher.get('throughput_batch')} (tokenisation included)")
    return "\n".join(lines)


def cmd_run(args: argparse.Namespace) -> int:
    from core.access import Caller
    from core.actions import Actions
    from core.distributed import is_main_process, shared_run
    from core.jobs import claim_to_resume_here
    from core.pipeline import run_job
    from core.runs import Run, create_run, open_run
    from core.train import Cancelled

    def make_run() -> Run | None:
        if not args.resume:
            # The limits and the quick checks the app makes before queueing, here too.
            spec = Actions(args.runs_dir).check_job(spec_from_args(args), Caller())
            return create_run(spec.to_dict(), args.runs_dir)
        run = open_run(args.resume, args.runs_dir)
        if run.status()["state"] == "done":
            print(f"run {run.id} is already done", file=sys.stderr)
            return None
        claim_to_resume_here(run)  # the queue's rules, and out of any queue's reach
        return run

    # Under accelerate launch / torchrun rank 0 makes the run and the other ranks join it.
    run = shared_run(make_run, args.runs_dir)
    if run is None:
        return 0
    main = is_main_process()
    if main:
        print(f"run id: {run.id}  (folder: {run.path})", flush=True)
    bars = _ProgressBars() if main else None
    try:
        metrics = run_job(run, on_event=bars)
    except Cancelled as stop:
        if main:
            print(f"{stop}; resume with: distillab run --resume {run.id}", file=sys.stderr)
        return 130
    finally:
        if bars is not None:
            bars.close()
    if not main:
        return 0
    print(format_results_table(metrics))
    print(f"run id: {run.id}")
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    from core.runs import leaderboard, list_runs

    table = leaderboard(args.runs_dir) if args.models else list_runs(args.runs_dir)
    print(table.to_string(index=False) if len(table) else "no runs yet")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from core.scoring import evaluate_models
    from core.specs import DatasetSpec

    dataset = DatasetSpec(name=args.dataset, validation=args.validation,
                          text_column=args.text_column, text_pair_column=args.text_pair_column,
                          label_column=args.label_column, task=args.task,
                          max_eval_examples=args.max_eval_examples)
    description, models = evaluate_models(args.models, dataset, args.runs_dir,
                                          max_length=args.max_length, device=args.device,
                                          measure=not args.no_speed)
    print(description)
    print(format_results_table({"models": models}))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from core.devices import resolve_device
    from core.evaluation import predict_proba
    from core.models import load_classifier

    texts = _texts_from_args(args, list(args.texts), "predict")
    device = resolve_device(args.device)
    model, tokenizer, _ = load_classifier(args.model, runs_dir=args.runs_dir)
    names = [model.config.id2label[i] for i in range(model.config.num_labels)]
    probs = predict_proba(model.to(device), tokenizer, texts, max_length=args.max_length,
                          device=device)
    for text, row in zip(texts, probs, strict=True):
        label = names[int(row.argmax())]
        if args.json:
            shown = {"text": text[0], "text_pair": text[1]} if is_pair(text) else {"text": text}
            print(json.dumps({**shown, "label": label,
                              "probabilities": dict(zip(names, map(float, row), strict=True))}))
        else:
            print(f"{label}\t{row.max():.3f}\t{show_text(text)[:100]}")
    return 0


def _texts_from_args(args: argparse.Namespace, texts: list[str], command: str) -> list[Text]:
    """The texts of ``predict``/``compare``: the given ones (zipped with ``--text-pair``
    into pairs) and those of ``--file`` (pairs where the file has two text columns)."""
    from core.data import read_texts_file

    rows: list[Text] = list(texts)
    if args.text_pair:
        if len(args.text_pair) != len(texts):
            raise SpecError(f"{command}: {len(texts)} texts but {len(args.text_pair)} "
                            f"--text-pair values; give one second text per text")
        rows = list(zip(texts, args.text_pair, strict=True))
    if args.file:
        rows += read_texts_file(args.file, args.text_column, args.text_pair_column)
    elif args.text_column or args.text_pair_column:
        raise SpecError(f"{command}: --text-column and --text-pair-column name a --file's "
                        f"columns; give --file too")
    if not rows:
        raise SpecError(f"{command}: give texts as arguments, with --text, or --file")
    if len({is_pair(t) for t in rows}) > 1:
        raise SpecError(f"{command}: the texts mix single texts and pairs; give pairs "
                        f"throughout (--text-pair for each text) or none")
    return rows


def _print_table(table: Any, as_json: bool, limit: int | None = None) -> None:
    if limit is not None:
        table = table.head(limit)
    if as_json:
        for record in table.to_dict(orient="records"):
            print(json.dumps(record, default=str))
    else:
        print(table.to_string(index=False, max_colwidth=60) if len(table) else "no rows")


def cmd_compare(args: argparse.Namespace) -> int:
    from core.compare import compare

    texts = _texts_from_args(args, list(args.text), "compare")
    table = compare(texts, args.models, runs_dir=args.runs_dir, max_length=args.max_length,
                    device=args.device)
    _print_table(table, args.json)
    return 0


def cmd_disagreements(args: argparse.Namespace) -> int:
    from core.compare import disagreements

    table = disagreements(args.model_a, args.model_b, runs_dir=args.runs_dir, mode=args.mode,
                          true_label=args.true_label, predicted_label=args.predicted_label)
    _print_table(table, args.json, args.limit)
    return 0


def cmd_tradeoffs(args: argparse.Namespace) -> int:
    from core.compare import tradeoffs

    _print_table(tradeoffs(args.runs_dir), args.json)
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    """Cancel a run: 0 once it is cancelled, stopping or marked interrupted; 1 when it had
    finished already (done, failed or cancelled), so a script can tell the two apart."""
    from core.access import Caller
    from core.actions import Actions
    from core.runs import RunError

    try:
        state = Actions(args.runs_dir).cancel(args.run_id, Caller())
    except RunError as error:
        if "nothing to cancel" not in str(error):
            raise  # no such run, not a run id: the usual error exit
        print(f"distillab cancel: {error}", file=sys.stderr)
        return NOTHING_TO_CANCEL_EXIT
    messages = {"cancelled": "cancelled (it had not started)",
                "running": "stopping at its next step",
                "interrupted": "interrupted (its worker had stopped)"}
    print(f"{args.run_id}: {messages.get(state, state)}")
    if state in ("running", "interrupted"):
        print(f"resume with: distillab run --resume {args.run_id}")
    return 0


def cmd_time(args: argparse.Namespace) -> int:
    from core.access import Caller
    from core.actions import Actions

    timing = Actions(args.runs_dir).time_run(args.run_id, Caller(), rounds=args.rounds)
    print(format_timing(timing))
    return 0


def format_timing(timing: dict[str, Any]) -> str:
    """The re-timing as a table: latency, throughput and speed-up with their spreads."""
    lines = [f"timed on {timing['device']}, max length {timing['max_length']}, "
             f"{timing['rounds']} interleaved rounds, {timing['time']}",
             f"{'model':<14}{'latency p50':>16}{'throughput':>18}{'speed-up':>16}"]
    for role, m in timing["models"].items():
        lines.append(f"{role:<14}{m['latency_ms_p50']:>9.2f} ±{m['latency_ms_p50_spread']:.2f} ms"
                     f"{m['throughput_per_s']:>11.1f} ±{m['throughput_spread']:.1f}/s"
                     f"{m['speedup_vs_teacher']:>10.2f}x ±{m['speedup_spread']:.2f}")
    share = timing.get("others_cpu_share_max")
    lines.append(f"other processes used at most {share:.0%} of the CPUs while timing; load "
                 f"average {timing.get('load_avg_1m')}" if share is not None else
                 f"load average {timing.get('load_avg_1m')}")
    if timing.get("machine_busy"):
        lines.append("warning: the machine was busy while timing; time again when it is quiet")
    return "\n".join(lines)


def cmd_delete(args: argparse.Namespace) -> int:
    from core.access import Caller
    from core.actions import Actions

    Actions(args.runs_dir).delete(args.run_id, Caller())
    print(f"deleted {args.run_id}")
    return 0


def cmd_share(args: argparse.Namespace) -> int:
    from core.access import Caller
    from core.actions import Actions

    Actions(args.runs_dir).share(args.run_id, not args.off, Caller())
    print(f"{args.run_id}: {'not ' if args.off else ''}shared with every visitor")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    """Run a queued run in this process (used by the job queue; no progress bars)."""
    from core.pipeline import run_job
    from core.runs import open_run
    from core.train import Cancelled

    run = open_run(args.run_id, args.runs_dir)
    state = run.status()["state"]
    if state != "queued":  # cancelled between the queue's claim and this start
        print(f"run {run.id} is {state}, no longer queued: not started", file=sys.stderr)
        return 0
    try:
        run_job(run)
    except Cancelled:
        return 130
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from core.export import cmd_export as export

    return export(args)


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
    train = {"epochs": args.epochs, "teacher_epochs": args.teacher_epochs,
             "max_length": args.max_length}
    jobs = report_specs(tasks, seeds, teacher=args.teacher, train=train,
                        max_train_examples=args.max_train_examples,
                        max_eval_examples=args.max_eval_examples)
    from core.runs import runs_root

    progress = _ProgressBars()
    try:
        results = run_report(jobs, runs_root(args.runs_dir), on_event=progress)
    finally:
        progress.close()
    rows = summarise(tasks, seeds, results)
    settings = (f"Teacher {args.teacher} fine-tuned {args.teacher_epochs} epoch(s), students "
                f"{args.epochs}, max length {args.max_length}, training rows "
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


COMMANDS = {"report": cmd_report, "run": cmd_run, "runs": cmd_runs, "eval": cmd_eval,
            "predict": cmd_predict,
            "compare": cmd_compare, "disagreements": cmd_disagreements,
            "tradeoffs": cmd_tradeoffs, "cancel": cmd_cancel, "time": cmd_time,
            "delete": cmd_delete, "share": cmd_share, "export": cmd_export,
            "worker": cmd_worker}


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``distillab``; returns the exit status."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # Idle OpenMP threads sleep instead of spinning: on a shared CPU spinning threads stalled
    # a 2-thread forward pass 100x (measured in docs/BENCHMARKS.md). Set before torch loads.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    # The engine reports its own progress; the libraries' per-file load/save bars are noise.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv or ["run"])
    if args.command is None:
        args = parser.parse_args(["run"])
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if args.command == "bench":
        from core.bench import run_bench_cli

        return run_bench_cli(args)
    try:
        return COMMANDS[args.command](args)
    except (ValueError, FileNotFoundError) as error:
        # Spec, data, model and run errors all derive from ValueError with a specific message.
        print(f"distillab {args.command}: error: {error}", file=sys.stderr)
        return ERRORS_EXIT


if __name__ == "__main__":
    sys.exit(main())
