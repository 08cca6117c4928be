"""``distillab``'s arguments: the top-level parser and one sub-parser per command."""

from __future__ import annotations

import argparse
from typing import Any

from core.specs import BUNDLED_TEACHER, PRESETS, RECIPES


def _parse_layers(value: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"--student-layers takes e.g. 0,2,4; got {value!r}") from error


GENERAL_HELP = ("general (task-agnostic) distillation: a student learns the teacher on "
                "unlabelled text (--dataset: a .txt file, a folder of .txt files, a data file's "
                "text column or bbc_news), saved as run:<id>/general for task jobs to start "
                "from (--student run:<id>/general); the run flags apply")


def _add_run_parser(sub: Any, command: str = "run",
                    help: str = "run a whole job (no flags: the bundled default job)") -> None:
    p = sub.add_parser(command, help=help)
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
    if command == "general":
        p.add_argument("--attention-transfer", action="store_true",
                       help="add MiniLM's self-attention transfer (the attention KL of the "
                            "student's last layer) to an encoder teacher's loss")
    p.add_argument("--timing", choices=("full", "quick", "off"),
                   help="how the scored models are timed: full (3 interleaved rounds, the "
                        "default), quick (1 short round) or off")
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


def _add_text_input_args(p: Any, each: str) -> None:
    """predict's and compare's shared flags: pairs, a file of texts, length, device, JSON."""
    p.add_argument("--text-pair", action="append", default=[],
                   help=f"the second text of a pair, once per {each}, in order (pair models)")
    p.add_argument("--file", help="a file of texts, one per line (or a CSV/TSV/JSONL column; "
                   "two columns such as sentence1/sentence2 are read as pairs)")
    p.add_argument("--text-column", help="the file's text column")
    p.add_argument("--text-pair-column", help="the file's second-text column (pairs)")
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true", help="JSON lines instead of a table")


def build_parser() -> argparse.ArgumentParser:
    import core.cli  # the package's docstring is the command list of --help

    parser = argparse.ArgumentParser(prog="distillab", description=core.cli.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs-dir", help="runs folder (default $DISTILLAB_RUNS_DIR or ./runs)")
    parser.add_argument("-v", "--verbose", action="store_true")
    # COMMAND, not argparse's {choice,...} list, which would name the hidden worker command.
    sub = parser.add_subparsers(dest="command", title="commands", metavar="COMMAND")
    _add_run_parser(sub)
    _add_run_parser(sub, "general", GENERAL_HELP)

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
    _add_text_input_args(p, "text")

    p = sub.add_parser("compare", help="several models side by side on texts")
    p.add_argument("models", nargs="+", help="model refs: run:<id>/<role>, folders")
    p.add_argument("--text", action="append", default=[], help="a text (repeatable)")
    _add_text_input_args(p, "--text")

    p = sub.add_parser("report", help="the DistilBERT paper's table at small scale: teacher, "
                       "3-layer student and baseline on SST-2, MRPC and STS-B, over seeds")
    p.add_argument("--tasks", default="sst2,mrpc,stsb", help="comma-separated: sst2,mrpc,stsb")
    p.add_argument("--seeds", default="1,2,3", help="comma-separated seeds (at most 10)")
    p.add_argument("--data-root", default="../shared/data",
                   help="the folder holding sst2/ and glue/{mrpc,stsb}/")
    p.add_argument("--teacher", default=BUNDLED_TEACHER)
    # The defaults are the settings of docs/RESULTS.md's 3-seed table (the student keeps 97%
    # of its teacher); `--augment 0 --epochs 2 --lr 1e-4 --max-train-examples 4000` is the
    # shorter first table.
    p.add_argument("--epochs", type=int, default=4, help="the students' epochs")
    p.add_argument("--teacher-epochs", type=int, default=3)
    p.add_argument("--lr", type=float, default=3e-4, help="the students' learning rate")
    p.add_argument("--teacher-lr", type=float, help="the teacher's learning rate")
    p.add_argument("--augment", type=int, default=4, metavar="N",
                   help="N augmented variants per training text for the distilled student "
                   "(the baseline trains on the labelled texts alone)")
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--max-train-examples", type=int, default=6000,
                   help="training rows per task (6,000: all of STS-B and MRPC, a stratified "
                   "6,000 of SST-2); 0 for all")
    p.add_argument("--max-eval-examples", type=int)
    p.add_argument("--out", default="docs/GLUE_SMALL.md", help="the Markdown table's file")
    p.add_argument("--png", default="docs/glue_small.png", help="the trade-off plot's file")

    p = sub.add_parser("ablation", help="what each part of distillation gives: the same 3-layer "
                       "student trained eight ways on SST-2 with few labels, over seeds")
    p.add_argument("--seeds", default="42,43,44", help="comma-separated seeds (at most 10)")
    p.add_argument("--task", choices=("sst2", "mrpc"), default="sst2",
                   help="sst2 (4,000 labels, 1 epoch) or mrpc (sentence pairs, 3 epochs)")
    p.add_argument("--data-root", default="../shared/data",
                   help="the folder holding sst2/ and glue/mrpc/")
    p.add_argument("--labels", type=int, help="labelled training rows (default: sst2 4,000, "
                   "mrpc all)")
    p.add_argument("--general-texts", type=int, default=20000,
                   help="unlabelled sentences for the general-distilled student")
    p.add_argument("--out", help="the Markdown table's file (default docs/ablation_<task>.md)")

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
