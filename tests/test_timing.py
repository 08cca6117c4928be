"""core.timing on sentence pairs: distillab time and the fresh timing worker time the pairs
a run was scored on, not their first texts alone."""

from __future__ import annotations

from tests.test_pairs_pipeline import pair_run  # noqa: F401 - the module's pair run fixture


def test_a_pair_run_is_timed_on_its_pairs(pair_run, monkeypatch):  # noqa: F811
    import core.speed as speed
    from core.timing import _validation_rows, time_in_fresh_process, time_run

    run = pair_run[0]
    rows = _validation_rows(run)
    assert rows and all(isinstance(r, tuple) and len(r) == 2 for r in rows)
    seen = []
    real = speed.measure_speed

    def spy(model, tokenizer, texts, **kwargs):
        seen.extend(texts)
        return real(model, tokenizer, texts, **kwargs)

    monkeypatch.setattr(speed, "measure_speed", spy)
    timing = time_run(run, rounds=1)
    assert seen and all(isinstance(t, tuple) for t in seen)
    assert timing["models"]["student"]["latency_ms_p50"] > 0
    fresh = time_in_fresh_process(run, rows, max_length=32, device="cpu", int8=False,
                                  label_names=run.metrics["label_names"], level="quick")
    assert fresh["timed_in"] == "a fresh worker process"
    assert fresh["models"]["teacher"]["latency_ms_p50"] > 0
