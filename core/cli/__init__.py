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
    distillab general --dataset TEXTS [run flags]           a general student, before any task
"""

from __future__ import annotations

import logging
import os
import sys

from core.cli.jobs import (
    NOTHING_TO_CANCEL_EXIT,
    _ProgressBars,
    cmd_cancel,
    cmd_delete,
    cmd_run,
    cmd_runs,
    cmd_share,
    cmd_time,
    cmd_worker,
    format_results_table,
    format_timing,
)
from core.cli.models import (
    cmd_compare,
    cmd_disagreements,
    cmd_eval,
    cmd_predict,
    cmd_tradeoffs,
)
from core.cli.parser import build_parser
from core.cli.reports import cmd_ablation, cmd_bench, cmd_export, cmd_report
from core.cli.spec_args import spec_from_args

__all__ = ["COMMANDS", "ERRORS_EXIT", "NOTHING_TO_CANCEL_EXIT", "_ProgressBars", "build_parser",
           "format_results_table", "format_timing", "main", "spec_from_args"]

ERRORS_EXIT = 2


COMMANDS = {"report": cmd_report, "ablation": cmd_ablation, "run": cmd_run, "general": cmd_run,
            "runs": cmd_runs,
            "eval": cmd_eval,
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
    if args.command == "bench":  # it reports its own errors
        return cmd_bench(args)
    try:
        return COMMANDS[args.command](args)
    except (ValueError, FileNotFoundError) as error:
        # Spec, data, model and run errors all derive from ValueError with a specific message.
        print(f"distillab {args.command}: error: {error}", file=sys.stderr)
        return ERRORS_EXIT
