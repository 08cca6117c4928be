"""Commands on runs: run (with progress bars and the results table), runs, cancel, time,
delete, share, and the job queue's worker."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from core.cli.spec_args import spec_from_args

NOTHING_TO_CANCEL_EXIT = 1  # `distillab cancel` of a run that had finished already


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
            if "val_spearman" in event:
                scores = (f"val Spearman {event['val_spearman']:.4f}, Pearson "
                          f"{event['val_pearson']:.4f}, MSE {event['val_mse']:.4f}")
            elif "val_accuracy" in event:
                scores = (f"val accuracy {event['val_accuracy']:.4f}, macro-F1 "
                          f"{event['val_macro_f1']:.4f}")
            else:  # general distillation: the held-out loss
                scores = f"held-out loss {event['val_loss']:.4f}"
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

    from core.run_record import (
        LATENCY_P50,
        LATENCY_P95,
        THROUGHPUT,
        RunMetrics,
        quality_pair,
    )
    from core.tasks import REGRESSION

    if metrics.get("kind") == "general":
        history = ", ".join(f"{r['val_loss']:.4f}" for r in metrics.get("history", []))
        return (f"general student {metrics.get('student')}: teacher layers "
                f"{metrics.get('layers')}, {metrics.get('texts', 0):,} texts, held-out loss "
                f"per epoch {history}; start a task job from it with --student "
                f"{metrics.get('student')}")
    record = RunMetrics.from_dict(metrics)
    models = record.models
    regression = record.task == REGRESSION
    main, other = quality_pair(record.task)
    rows = [{"model": role, main: m.get(main), other: m.get(other),
             "params_M": (m.params or 0) / 1e6, "size_MB": m.size_mb,
             **{column: m.get(column) for column in (LATENCY_P50, LATENCY_P95, THROUGHPUT)}}
            for role, m in models.items()]
    table = pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:,.4g}")
    lines = [table]
    teacher, student = models.get("teacher"), models.get("student")
    if teacher is not None and student is not None:
        speedup = student.speedup(teacher)
        faster = f"{speedup:.2f}x faster at batch 1 (p50)" if speedup else "not timed"
        if student.speedup_spread is not None:  # timed in interleaved rounds
            faster = (f"{speedup:.2f}x ± {student.speedup_spread:.2f} "
                      f"faster at batch 1 (median of {student.rounds} rounds)")
        gains = [faster]
        if student.throughput_per_s and teacher.throughput_per_s:
            gains.append(f"{student.throughput_per_s / teacher.throughput_per_s:.2f}x throughput")
        if (kept := student.kept(teacher, main)) is not None:
            gains.append(f"{100 * kept:.1f}% of its {main}")
        if teacher.params and student.params:
            gains.append(f"{teacher.params / student.params:.2f}x fewer parameters")
        lines.append("student vs teacher: " + ", ".join(gains))
    baseline = models.get("baseline")
    if student is not None and baseline is not None and \
            student.get(main) is not None and baseline.get(main) is not None:
        delta = 100 * (student.get(main) - baseline.get(main))
        lines.append(f"distillation vs baseline: {delta:+.2f} {main} points (x100)"
                     if regression else f"distillation vs baseline: {delta:+.2f} accuracy points")
    if teacher is not None and teacher.device is not None:  # timed
        lines.append(f"timed on {teacher.device} in {teacher.precision}; latency "
                     f"end to end at batch 1, throughput end to end at batch "
                     f"{teacher.get('throughput_batch')} (tokenisation included)")
    return "\n".join(lines)


def cmd_run(args: argparse.Namespace) -> int:
    from core.access import Caller
    from core.actions import Actions
    from core.distributed import is_main_process, shared_run
    from core.jobs import claim_to_resume_here
    from core.pipeline import run_job
    from core.runs import Run, RunState, create_run, open_run
    from core.train import Cancelled

    def make_run() -> Run | None:
        if not args.resume:
            # The limits and the quick checks the app makes before queueing, here too.
            spec = Actions(args.runs_dir).check_job(spec_from_args(args), Caller())
            return create_run(spec.to_dict(), args.runs_dir)
        run = open_run(args.resume, args.runs_dir)
        if run.status()["state"] == RunState.DONE:
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
    from core.run_record import RunTiming

    lines = [f"timed on {timing['device']}, max length {timing['max_length']}, "
             f"{timing['rounds']} interleaved rounds, {timing['time']}",
             f"{'model':<14}{'latency p50':>16}{'throughput':>18}{'speed-up':>16}"]
    for role, m in RunTiming.from_dict(timing).models.items():
        lines.append(f"{role:<14}{m.latency_ms_p50:>9.2f} ±{m.latency_ms_p50_spread:.2f} ms"
                     f"{m.throughput_per_s:>11.1f} ±{m.throughput_spread:.1f}/s"
                     f"{m.speedup_vs_teacher:>10.2f}x ±{m.speedup_spread:.2f}")
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
