"""Time a run's models side by side, in rounds, and record each timing with its spread.

A speed-up is a ratio of two latencies, and a latency moves with whatever else the machine
does. So batch-1 latency is timed with the models **taking turns call by call** on the same
text (:func:`interleaved_latency`): a slow moment lands on every model alike. Timing one model
for seconds, then the next, gave speed-ups of 1.57-1.92x for the same two models; taking
turns, 1.73-1.82x (docs/BENCHMARKS.md). Throughput is timed per model in each round
(``core.speed.measure_speed``). The speed-up is taken per round, and its median and spread
across rounds reported. Other processes' CPU use during the timing is recorded beside it
(``core.machine_load``).

A job times its models in a **fresh worker process** (:func:`time_in_fresh_process`): what
training left behind (allocator caches, thread pools, a warm or fragmented heap) does not
reach the timer, and a run's recorded figure is taken the way ``distillab time`` takes it.
``DISTILLAB_TIMING_PROCESS=same`` times in the job's own process instead (the test suite,
where a worker's start-up would cost seconds per job).

``distillab time RUN`` (and the Runs tab's button) re-times a finished run on this machine
and appends the result to ``runs/<id>/timings.jsonl``, dated, beside the figures recorded when
the run was scored, so a figure can be checked, or models trained elsewhere timed on the
hardware they will serve on.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from core.machine_load import OtherLoad
from core.runs import Run

log = logging.getLogger(__name__)

ROUNDS = 3
SPEED_TEXTS = 128  # timed texts per model per round (taken from the validation set)
LATENCY_SAMPLES = 30  # batch-1 calls per model per round
# A job's timing level (JobSpec.timing): rounds, texts and batch-1 calls per model.
LEVELS = {"full": (ROUNDS, SPEED_TEXTS, LATENCY_SAMPLES), "quick": (1, 32, 5)}


def timing_level(spec_value: str | None) -> str:
    """A job's timing level: its spec's ``timing``, else ``$DISTILLAB_TIMING``, else
    ``full`` (``quick``: one short round; ``off``: the models are not timed)."""
    value = (spec_value or os.environ.get("DISTILLAB_TIMING", "") or "full").strip().lower()
    return value if value in ("full", "quick", "off") else "full"


def spread(values: list[float]) -> float:
    """Half the range of ``values``: the ± that covers every round."""
    return float((max(values) - min(values)) / 2) if values else 0.0


INTERLEAVED_LATENCY = ("batch 1, end-to-end: tokenise one text, copy to device, forward, softmax, "
                       "argmax copied to host; the models take turns call by call on the same "
                       "text (the first model changes every text)")


def interleaved_latency(models: dict[str, tuple[Any, Any]], texts: list[Any], *,
                        max_length: int, device: Any, samples: int
                        ) -> dict[str, dict[str, list[float]]]:
    """Batch-1 latency of several models, taking turns **call by call** on the same text.

    Whatever slows the machine for a moment (another process, a frequency change) lands on
    every model alike, so the ratio of two models' medians is steady where timing one model
    after another for seconds each is not (measured in docs/BENCHMARKS.md). Each model is
    first run once on every text, untimed (the first call at a shape builds its kernels).

    Returns:
        role -> ``{"end_to_end": seconds, "forward": seconds}``, one duration per call:
        end to end (tokenise to label on the host) and the forward alone.
    """
    import torch

    from core.evaluation import inference_session
    from core.inference import end_to_end_one, one_batch, pad_id_of
    from core.speed import gc_paused, sync

    device = torch.device(device)
    picks = [texts[i % len(texts)] for i in range(samples)]
    roles = list(models)
    pads = {role: pad_id_of(tokenizer) for role, (_, tokenizer) in models.items()}
    for role, (model, tokenizer) in models.items():
        with inference_session(model, device):
            for text in dict.fromkeys(picks):
                model(**one_batch(tokenizer, text, max_length, device, pads[role]))
    timed: dict[str, dict[str, list[float]]] = {
        role: {"end_to_end": [], "forward": []} for role in roles}
    with gc_paused():
        for i, text in enumerate(picks):
            for role in roles[i % len(roles):] + roles[:i % len(roles)]:
                model, tokenizer = models[role]
                with inference_session(model, device):
                    timed[role]["end_to_end"].append(end_to_end_one(
                        model, tokenizer, text, max_length, device, pads[role])[1])
                    batch = one_batch(tokenizer, text, max_length, device, pads[role])
                    sync(device)
                    start = time.perf_counter()
                    model(**batch)
                    sync(device)
                    timed[role]["forward"].append(time.perf_counter() - start)
    return timed


def _latency_figures(timed: dict[str, list[float]]) -> dict[str, float]:
    from core.speed import percentile_ms

    return {"latency_ms_p50": percentile_ms(timed["end_to_end"], 50),
            "latency_ms_p95": percentile_ms(timed["end_to_end"], 95),
            "model_latency_ms_p50": percentile_ms(timed["forward"], 50),
            "model_latency_ms_p95": percentile_ms(timed["forward"], 95)}


def time_models(models: dict[str, tuple[Any, Any]], texts: list[str], *, max_length: int,
                device: Any, rounds: int = ROUNDS,
                on_round: Callable[[int], None] | None = None,
                speed_texts: int = SPEED_TEXTS,
                latency_samples: int = LATENCY_SAMPLES) -> dict[str, Any]:
    """Latency and throughput of several models, interleaved in ``rounds`` rounds.

    Args:
        models: role -> (model, tokenizer); the first role is the reference (the teacher).
        texts: sample texts (``SPEED_TEXTS`` of them are used).
        max_length: truncation length in tokens.
        device: where to run.
        rounds: how many times every model is timed, in turn.
        on_round: called with each round's index before it starts (progress).
        speed_texts, latency_samples: texts timed per model and round, and batch-1 calls.
    Returns:
        ``{"rounds": n, "models": {role: {latency_ms_p50, latency_ms_p50_spread,
        throughput_per_s, throughput_spread, speedup_vs_teacher, speedup_spread, ...}},
        "others_cpu_share_max", "load_avg_1m", "machine_busy", "time"}``; each role's
        other fields (device, precision, what each timer includes...) are its last round's.
    """
    from core.speed import measure_speed

    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}")
    sample = list(texts)[:speed_texts]
    per_round: dict[str, list[dict[str, Any]]] = {role: [] for role in models}
    pooled: dict[str, dict[str, list[float]]] = {
        role: {"end_to_end": [], "forward": []} for role in models}
    loads: list[dict[str, Any]] = []
    gc.collect()  # what training left behind goes before the first timer starts
    for index in range(rounds):
        if on_round is not None:
            on_round(index)
        with OtherLoad() as load:
            timed = interleaved_latency(models, sample, max_length=max_length, device=device,
                                        samples=latency_samples)
        loads.append(load.figures)
        for role, (model, tokenizer) in models.items():
            for view, durations in timed[role].items():
                pooled[role][view] += durations
            with OtherLoad() as load:
                figures = measure_speed(model, tokenizer, sample, max_length=max_length,
                                        device=device, throughput_texts=len(sample),
                                        throughput_repeats=2, latency=False)
            per_round[role].append({**figures, **_latency_figures(timed[role])})
            loads.append(load.figures)
    reference = next(iter(models))
    reference_p50 = _latency_figures(pooled[reference])["latency_ms_p50"]
    result: dict[str, Any] = {}
    for role, figures in per_round.items():
        latencies = [f["latency_ms_p50"] for f in figures]
        throughputs = [f["throughput_per_s"] for f in figures]
        speedups = [t["latency_ms_p50"] / f["latency_ms_p50"]
                    for t, f in zip(per_round[reference], figures, strict=True)]
        overall = _latency_figures(pooled[role])
        # Every call of every round counts in the median; the rounds give the spread.
        result[role] = {**figures[-1], **overall,
                        "latency_ms_p50_spread": spread(latencies),
                        "throughput_per_s": float(np.median(throughputs)),
                        "throughput_spread": spread(throughputs),
                        "speedup_vs_teacher": reference_p50 / overall["latency_ms_p50"],
                        "speedup_spread": spread(speedups)}
        result[role]["timer_includes"] = {**result[role]["timer_includes"],
                                          "latency_ms": INTERLEAVED_LATENCY}
    shares = [x["others_cpu_share"] for x in loads if x["others_cpu_share"] is not None]
    return {"rounds": rounds, "models": result,
            "others_cpu_share_max": max(shares) if shares else None,
            "load_avg_1m": loads[-1]["load_avg_1m"] if loads else None,
            "machine_busy": any(x["machine_busy"] for x in loads),
            # PASSIVE (the CLI's and app's default) adds ~40% to a 2-thread CPU batch-1 call
            # against spinning threads, and moves every model alike (docs/BENCHMARKS.md).
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "library default"),
            "time": time.strftime("%Y-%m-%d %H:%M:%S")}


def load_for_timing(run: Run, device: Any, int8: bool | None = None,
                    label_names: list[str] | None = None) -> dict[str, tuple[Any, Any]]:
    """A run's saved models, on ``device`` and in eval mode, by role (teacher first), and
    the dynamic int8 student on a CPU where the run scored one (``int8``: force it).

    Raises:
        ValueError: a run without saved models.
    """
    from core.models import load_classifier
    from core.quantize import int8_supported, quantize_dynamic_int8

    roles = [r for r in ("teacher", "student", "baseline") if r in run.models()]
    if not roles:
        raise ValueError(f"run {run.id} has no saved models")
    metrics = run.read_metrics()
    names = label_names or metrics.label_names
    models: dict[str, tuple[Any, Any]] = {}
    for role in roles:
        model, tokenizer, _ = load_classifier(str(run.model_dir(role)), names)
        models[role] = (model.to(device).eval(), tokenizer)
    if int8 is None:
        int8 = "student_int8" in metrics.models
    if "student" in models and device.type == "cpu" and int8 and int8_supported():
        # Dynamic int8 is a function of the float weights: the same model the run saved.
        models["student_int8"] = (quantize_dynamic_int8(models["student"][0]),
                                  models["student"][1])
    return models


def timing_process() -> str:
    """``fresh`` (a worker process times a job's models, the default) or ``same``."""
    value = os.environ.get("DISTILLAB_TIMING_PROCESS", "fresh").strip().lower()
    return value if value in ("fresh", "same") else "fresh"


def time_in_fresh_process(run: Run, texts: list[str], *, max_length: int, device: Any,
                          int8: bool, label_names: list[str], level: str = "full",
                          on_round: Callable[[int], None] | None = None,
                          timeout_s: float = 1800.0, rounds: int | None = None
                          ) -> dict[str, Any]:
    """:func:`time_models` on the run's saved models, in a new Python process.

    The worker (``python -m core.timing``) loads the models from the run folder, times them
    and writes the result to a file; its ``round N`` lines drive ``on_round``. ``rounds``
    overrides the level's.

    Raises:
        RuntimeError: the worker failed (its last output lines say why).
    """
    with tempfile.TemporaryDirectory(prefix="distillab-timing-") as folder:
        request, answer = Path(folder) / "request.json", Path(folder) / "timing.json"
        request.write_text(json.dumps({
            # A pair travels as a two-item list and is a tuple again in the worker.
            "run_dir": str(run.path), "texts": [t if isinstance(t, tuple) else str(t)
                                                for t in texts][:SPEED_TEXTS],
            "max_length": int(max_length), "device": str(device), "int8": bool(int8),
            "label_names": list(label_names), "level": level, "rounds": rounds,
            "answer": str(answer)}))
        worker = subprocess.Popen([sys.executable, "-m", "core.timing", str(request)],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                  env={**os.environ, "PYTHONUNBUFFERED": "1"})
        tail: list[str] = []
        started = time.monotonic()
        assert worker.stdout is not None
        for line in worker.stdout:
            tail = (tail + [line.rstrip()])[-20:]
            if line.startswith("round ") and on_round is not None:
                on_round(int(line.split()[1]))
            if time.monotonic() - started > timeout_s:
                worker.kill()
                break
        code = worker.wait()
        if code != 0 or not answer.exists():
            raise RuntimeError(f"the timing worker exited with {code}: " + " | ".join(tail[-5:]))
        return json.loads(answer.read_text())


def _worker(request_path: str) -> None:
    """The fresh process's side of :func:`time_in_fresh_process`."""
    import torch

    from core.devices import resolve_device

    request = json.loads(Path(request_path).read_text())
    device = resolve_device(request["device"])
    if device.type == "cpu":
        from core.devices import configure_cpu_threads

        configure_cpu_threads()
    run = Run(Path(request["run_dir"]))
    models = load_for_timing(run, device, int8=request["int8"],
                             label_names=request["label_names"])
    torch.manual_seed(0)
    rounds, speed_texts, samples = LEVELS[request["level"]]
    rounds = request.get("rounds") or rounds
    texts = [tuple(t) if isinstance(t, list) else t for t in request["texts"]]
    timing = time_models(models, texts, max_length=request["max_length"],
                         device=device, rounds=rounds, speed_texts=speed_texts,
                         latency_samples=samples,
                         on_round=lambda r: print(f"round {r}", flush=True))
    timing["timed_in"] = "a fresh worker process"
    Path(request["answer"]).write_text(json.dumps(timing))


def _validation_rows(run: Run) -> list[Any]:
    """A scored run's validation texts, or ``(first, second)`` pairs, from its predictions."""
    from core.texts import PAIR_COLUMN, join_pairs

    table = run.predictions()
    if "text" not in table or not len(table):
        return []
    seconds = table[PAIR_COLUMN].astype(str).tolist() if PAIR_COLUMN in table else None
    return join_pairs(table["text"].astype(str).tolist(), seconds)


def time_run(run: Run, *, rounds: int = ROUNDS, device: str = "auto") -> dict[str, Any]:
    """Re-time a finished run's models on this machine and append the timing to the run.

    Args:
        run: a run with saved models and validation predictions.
        rounds: rounds of interleaved timing.
        device: where to time them.
    Returns:
        The timing as :func:`time_models` returns it, plus ``host`` and ``device``.
    Raises:
        ValueError: a run without saved models or validation texts.
    """
    from core.devices import describe_device, resolve_device

    target = resolve_device(device)
    texts = _validation_rows(run)
    if not texts:
        raise ValueError(f"run {run.id} has no validation texts to time on (not scored yet)")
    metrics = run.read_metrics()
    max_length = int(metrics.max_length or (run.spec.get("train") or {}).get("max_length")
                     or 128)
    timing = None
    if timing_process() == "fresh":  # as a job times its models, so the two compare
        try:
            timing = time_in_fresh_process(
                run, texts, max_length=max_length, device=target,
                int8="student_int8" in metrics.models,
                label_names=list(metrics.label_names or []), rounds=rounds)
        except (RuntimeError, OSError) as error:
            log.warning("timing in a fresh process failed, timing here: %s", error)
    if timing is None:
        models = load_for_timing(run, target)
        timing = time_models(models, texts, max_length=max_length, device=target,
                             rounds=rounds)
        timing["timed_in"] = "this process"
    timing.update(host=os.uname().nodename if hasattr(os, "uname") else "",
                  device=describe_device(target), max_length=max_length)
    run.append_timing(timing)
    log.info("timed %s: %s", run.id, {r: round(m["speedup_vs_teacher"], 2)
                                      for r, m in timing["models"].items()})
    return timing


if __name__ == "__main__":
    _worker(sys.argv[1])
