"""core.timing: models timed taking turns call by call (pair runs: tests/test_pairs_pipeline.py)."""

from __future__ import annotations

import pytest


def test_interleaved_latency_times_each_model_and_tells_a_slower_one_apart(tiny_bert_dir,
                                                                            monkeypatch):
    """Two copies of one model, one 5 ms slower per forward on a virtual clock (so a loaded
    machine cannot stretch it): each gets its own latency, the slow one's larger by exactly
    those 5 ms, and the models take turns call by call, the first changing every text."""
    import time

    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from core.timing import interleaved_latency

    clock = {"now": 0.0}
    monkeypatch.setattr(time, "perf_counter", lambda: clock["now"])
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    calls: list[str] = []
    models = {}
    for role, cost in (("slow", 0.006), ("fast", 0.001)):
        model = AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir)

        def forward_costs(*_: object, role: str = role, cost: float = cost) -> None:
            clock["now"] += cost
            calls.append(role)

        model.register_forward_pre_hook(forward_costs)
        models[role] = (model, tokenizer)
    timed = interleaved_latency(models, ["a short text", "a somewhat longer text " * 5],
                                max_length=32, device="cpu", samples=8)
    assert set(timed) == {"slow", "fast"}
    for view in ("end_to_end", "forward"):
        assert timed["fast"][view] == pytest.approx([0.001] * 8)
        assert timed["slow"][view] == pytest.approx([0.006] * 8)
    # After one untimed call per model and text: two forwards (end to end, then the forward
    # alone) per model per text, the first model alternating.
    timed_calls = calls[4:][::2]
    assert timed_calls == ["slow", "fast", "fast", "slow"] * 4


def test_measure_speed_without_latency_times_throughput_only(tiny_bert_dir):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from core.speed import measure_speed

    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir)
    figures = measure_speed(model, AutoTokenizer.from_pretrained(tiny_bert_dir), ["a", "b c"],
                            max_length=16, device="cpu", throughput_texts=4, latency=False)
    assert "latency_ms_p50" not in figures and "model_latency_ms_p50" not in figures
    assert figures["throughput_per_s"] > 0
