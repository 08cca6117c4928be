"""Ratios, the issue's targets, the printed table and the run's environment."""

from __future__ import annotations

import os
import platform
from typing import Any

import torch

from core.bench.settings import DISTILL_INCLUDES, EVAL_INCLUDES, PEAK_MATMUL_N


def compute_ratios(result: dict[str, Any]) -> dict[str, float]:
    """DistilLab's figure over each other contender's (teacher on short texts for the four
    headline keys; ``<key>_<role>_<kind>`` for every other pair)."""
    ratios: dict[str, float] = {}
    for kind, per_role in result.get("eval", {}).items():
        for role, figures in per_role.items():
            ours = figures.get("distillab", {}).get("sent_per_s")
            for other in ("pipeline", "evaluator", "naive", "pipeline_bf16"):
                theirs = figures.get(other, {}).get("sent_per_s")
                if not ours or not theirs:
                    continue
                key = f"eval_vs_{other}"
                value = ours / theirs
                ratios[f"{key}_{role}_{kind}"] = value
                if role == "teacher" and kind == "short":
                    ratios[key] = value
            eager = figures.get("distillab_eager", {}).get("sent_per_s")
            if ours and eager:  # CUDA: with CUDA graphs over without them
                ratios[f"eval_graphs_vs_eager_{role}_{kind}"] = ours / eager
            with_cudnn = figures.get("distillab_cudnn_attention", {}).get("sent_per_s")
            if ours and with_cudnn:  # CUDA: without cuDNN attention over with it
                ratios[f"eval_without_vs_with_cudnn_attention_{role}_{kind}"] = ours / with_cudnn
    distill = result.get("distill", {})
    for ours_name, prefix in (("distillab", "distill"),
                              ("distillab_teacher_every_step", "distill_every_step")):
        ours = distill.get(ours_name, {}).get("samples_per_s")
        for other in ("naive", "trainer"):
            theirs = distill.get(other, {}).get("samples_per_s")
            if ours and theirs:
                ratios[f"{prefix}_vs_{other}"] = ours / theirs
        # DistilLab's second epoch against the naive loop, whose one shape (every batch
        # padded to max length) is warm after its warm-up (the Trainer's shapes vary: no).
        warm = distill.get(ours_name, {}).get("warm_epoch_samples_per_s")
        naive = distill.get("naive", {}).get("samples_per_s")
        if warm and naive:
            ratios[f"{prefix}_warm_epoch_vs_naive"] = warm / naive
    # CUDA: DistilLab without PyTorch's cuDNN attention kernel over DistilLab with it, and
    # with CUDA graphs over without them.
    ours = distill.get("distillab", {}).get("samples_per_s")
    eager = distill.get("distillab_eager", {}).get("samples_per_s")
    if ours and eager:
        ratios["distill_graphs_vs_eager"] = ours / eager
    with_cudnn = distill.get("distillab_cudnn_attention", {}).get("samples_per_s")
    if ours and with_cudnn:
        ratios["distill_without_vs_with_cudnn_attention"] = ours / with_cudnn
    return ratios


TARGETS = {
    "cpu": {"eval_vs_pipeline": 3.0, "distill_vs_naive": 2.0, "distill_vs_trainer": 1.5},
    "cuda": {"eval_vs_pipeline_teacher_short": 20.0, "eval_vs_pipeline_teacher_long": 20.0,
             "distill_vs_naive": 8.0},
}


def check_targets(result: dict[str, Any], device: torch.device, model_size: str
                  ) -> list[dict[str, Any]]:
    """The issue's targets for this device, each with the measured value and whether met.
    They are stated for MiniLM on this CPU and for BERT-base on an H100."""
    applies = (device.type, model_size) in (("cpu", "minilm"), ("cuda", "bert-base"))
    checks = []
    for key, target in TARGETS.get(device.type, {}).items():
        value = result["ratios"].get(key)
        checks.append({"ratio": key, "target": target, "measured": value, "applies": applies,
                       "met": None if value is None else value >= target})
    mfu = result.get("distill", {}).get("distillab_128x128", {})
    if device.type == "cuda" and mfu:
        best = max((mfu[k].get("epoch_fraction_of_peak", 0.0) for k in ("plain", "eager")
                    if isinstance(mfu.get(k), dict)), default=None)
        checks.append({"ratio": "distill_128x128_epoch_fraction_of_peak", "target": 0.35,
                       "measured": best, "applies": applies,
                       "met": None if best is None else best >= 0.35})
    return checks


def format_bench_table(result: dict[str, Any]) -> str:
    """The printed report: one table per section, what each timer includes, the targets."""
    import pandas as pd

    def table(rows: list[dict[str, Any]]) -> str:
        cells = [{k: f"{v:,.3g}" if isinstance(v, float) else ("" if v is None else v)
                  for k, v in row.items()} for row in rows]
        frame = pd.DataFrame(cells).fillna("")
        if "error" in frame and not frame["error"].astype(bool).any():
            frame = frame.drop(columns="error")
        return frame.to_string(index=False)

    load = result["load_average"]
    lines = [f"distillab bench on {result['device']}; DistilLab inference in "
             f"{result['distillab_inference_precision']}; load average {load['start']} at the "
             f"start, {load.get('end')} at the end, on {result['cpus']} CPUs",
             "versions: " + ", ".join(f"{k} {v}" for k, v in result["versions"].items()),
             "models: " + "; ".join(f"{r} {m['layers']}x{m['hidden']} ({m['params'] / 1e6:.1f}M)"
                                    for r, m in result["models"].items())
             + " (random heads: speed only)",
             "sampled: " + "; ".join(f"{k}: {v}" for k, v in result["sampled"].items())]
    if result["eval"]:
        rows = [{"texts": kind, "model": role, "contender": name,
                 "sent/s": f.get("sent_per_s"), "s": f.get("seconds"),
                 "repeats": f.get("repeats"), "tokenize-only s": f.get("tokenize_only_s"),
                 "model-only s": f.get("model_only_s"), "error": f.get("error", "")}
                for kind, per_role in result["eval"].items()
                for role, figures in per_role.items() for name, f in figures.items()]
        lines += ["", "evaluation, end to end (texts in, labels out)", table(rows)]
        shown = {name for per_role in result["eval"].values() for figures in per_role.values()
                 for name in figures}
        lines += [f"  {name}: {text}" for name, text in EVAL_INCLUDES.items() if name in shown]
        lines += [f"  distillab {kind} {role}: model-only {f['model_only_tflops'] * 1e3:,.0f} "
                  f"GFLOP/s (the model's FLOPs, no padding), "
                  f"{f['model_only_fraction_of_peak']:.0%} of a bf16 2048^3 matmul here "
                  f"({f['matmul_peak_tflops'] * 1e3:,.0f} GFLOP/s)"
                  for kind, per_role in result["eval"].items()
                  for role, figures in per_role.items()
                  for f in [figures.get("distillab", {})] if "model_only_fraction_of_peak" in f]
    distill = result["distill"]
    if "settings" in distill:
        rows = [{"contender": name, "samples/s": f.get("samples_per_s"), "s": f.get("seconds"),
                 "steady steps/s x batch": f.get("steady_samples_per_s"),
                 "warm epoch samples/s": f.get("warm_epoch_samples_per_s"),
                 **({"TFLOP/s": f.get("model_tflops_per_s"),
                     "of peak": f.get("fraction_of_peak")} if "matmul_peak_tflops" in distill
                    else {}), "error": f.get("error", "")}
                for name, f in distill.items() if name in DISTILL_INCLUDES]
        s = distill["settings"]
        lines += ["", f"distillation, one epoch of {s['rows']} rows, batch {s['batch']}, max "
                      f"length {s['max_length']}, {s['recipe']}", table(rows)]
        lines += [f"  {name}: {text}" for name, text in DISTILL_INCLUDES.items()
                  if name in distill]
    if "matmul_peak_tflops" in distill:
        lines.append(f"  bf16 matmul peak ({PEAK_MATMUL_N}^3, measured): "
                     f"{distill['matmul_peak_tflops']:,.0f} TFLOP/s")
    for name, f in distill.get("distillab_128x128", {}).items():
        if isinstance(f, dict):
            lines.append(f"  DistilLab 128x128 {name}: " + ", ".join(
                f"{k} {v:,.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in f.items()))
    speedup = result["speedup"]
    if speedup:
        rows = [{"model": role, "latency p50 ms": f["latency_ms_p50"],
                 "p95": f["latency_ms_p95"], "model-only p50": f["model_latency_ms_p50"],
                 "throughput/s": f["throughput_per_s"],
                 "model-only/s": f["model_throughput_per_s"], "batch": f["throughput_batch"]}
                for role, f in speedup.items() if role in ("teacher", "student", "student_int8")]
        lines += ["", "student vs teacher (core.speed.measure_speed; latency at batch 1, "
                      "throughput at the large batch)", table(rows),
                  "  speed-up: " + ", ".join(f"{k} {v:.2f}x"
                                             for k, v in speedup["student_speedup"].items())]
    lines += ["", "ratios (DistilLab over the other): " + ", ".join(
        f"{k} {v:.2f}x" for k, v in result["ratios"].items()
        if not k.endswith(("_short", "_long")))]
    for check in result["targets"]:
        measured = "n/a" if check["measured"] is None else f"{check['measured']:.2f}"
        verdict = {True: "met", False: "NOT met", None: "not measured"}[check["met"]]
        lines.append(f"target {check['ratio']} >= {check['target']}: {measured} ({verdict}"
                     f"{'' if check['applies'] else '; stated for another model/device'})")
    lines.append(f"elapsed {result['elapsed_s']:.0f} s")
    return "\n".join(lines)


def load_average() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:  # not on every platform
        return None


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def describe_model(model: Any) -> dict[str, Any]:
    config = model.config
    return {"layers": config.num_hidden_layers, "hidden": config.hidden_size,
            "params": sum(p.numel() for p in model.parameters()),
            "attention": getattr(config, "_attn_implementation", None)}


def versions() -> dict[str, str]:
    import importlib.metadata as metadata

    versions = {"python": platform.python_version()}
    for name in ("torch", "transformers", "tokenizers", "evaluate", "datasets", "accelerate"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    import torch

    if torch.cuda.is_available():  # decides which attention kernels PyTorch prefers
        versions["cudnn"] = str(torch.backends.cudnn.version())
    return versions


def json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)
