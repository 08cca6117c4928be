"""core.ablation: the eight variants' jobs, the reuse of a finished run, stage wall times."""

from __future__ import annotations

import json
from pathlib import Path

from core.ablation import (
    VARIANTS,
    _comparable,
    find_or_run,
    general_spec,
    sst2_base,
    stage_seconds,
    variant_spec,
)
from core.runs import create_run
from core.specs import JobSpec


def test_each_variant_is_a_valid_job_that_differs_from_the_others_where_it_says():
    base = sst2_base("data")
    refs = {"general": "run:abc/general", "general_attention": "run:att/general"}
    specs = {v.key: variant_spec(base, v, 43, refs) for v in VARIANTS}
    for spec in specs.values():
        assert JobSpec.from_dict(spec).seed == 43
        assert spec["dataset"]["max_train_examples"] == 4000
    labels = specs["labels"]["recipe"]
    assert labels["alpha_kd"] == 0 and labels["alpha_cos"] == 0
    assert list(specs["labels"]["student"]["layers"]) == [0, 2, 4]
    assert specs["kd"]["recipe"]["name"] == "logits" and specs["kd"]["baseline"] is True
    assert specs["kd_aug"]["dataset"]["augment"] == 4
    assert specs["kd_cos"]["recipe"]["alpha_cos"] > 0
    assert specs["general_kd"]["student"] == {**specs["general_kd"]["student"],
                                              "kind": "pretrained",
                                              "checkpoint": "run:abc/general"}
    assert specs["gen_att_kd"]["student"]["checkpoint"] == "run:att/general"
    assert _comparable({**specs["gen_att_kd"], "student": specs["general_kd"]["student"]}
                       ) == _comparable(specs["general_kd"])  # only the start differs
    assert specs["random_kd"]["student"]["kind"] == "fresh"
    # The baseline row and the KD row come from one job (its two trained models).
    assert _comparable(specs["baseline"]) == _comparable(specs["kd"])
    assert _comparable(specs["kd"]) != _comparable(specs["kd_cos"])
    general = JobSpec.from_dict(general_spec(base, 20000))
    assert general.kind == "general" and general.dataset.max_train_examples == 20000
    assert general.attention_transfer is False
    attention = JobSpec.from_dict(general_spec(base, 20000, attention=True))
    assert attention.attention_transfer is True
    assert _comparable(attention.to_dict()) != _comparable(general.to_dict())


def test_a_finished_run_of_the_same_job_is_reused_whatever_its_name(tmp_path: Path):
    spec = variant_spec(sst2_base("data"), VARIANTS[2], 42, {})
    earlier = create_run({**spec, "name": "my-own-name", "timing": "quick"}, tmp_path)
    earlier.set_status("done")
    assert find_or_run(spec, tmp_path).id == earlier.id


def test_stage_seconds_end_where_the_next_stage_begins(tmp_path: Path):
    run = create_run(variant_spec(sst2_base("data"), VARIANTS[2], 42, {}), tmp_path)
    events = [{"time": 100.0, "type": "stage", "stage": "data"},
              {"time": 101.5, "type": "stage", "stage": "teacher"},
              {"time": 110.0, "type": "stage", "stage": "student"},
              {"time": 150.0, "type": "step", "stage": "student"},
              {"time": 170.0, "type": "stage", "stage": "baseline"},
              {"time": 200.0, "type": "log"}]
    (run.path / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    assert stage_seconds(run) == {"data": 1.5, "teacher": 8.5, "student": 60.0,
                                  "baseline": 30.0}


def test_the_mrpc_ablation_is_the_same_eight_jobs_on_sentence_pairs():
    from core.ablation import task_base

    base = task_base("mrpc", "data", None)
    assert base["dataset"]["name"].endswith("glue/mrpc/train.tsv")
    assert base["dataset"]["max_train_examples"] is None
    specs = [variant_spec(base, v, 42, {"general": "run:g/general",
                                         "general_attention": "run:a/general"})
             for v in VARIANTS]
    assert all(s["train"]["max_length"] == 128 and s["train"]["student"]["epochs"] == 3
               for s in specs)
    assert JobSpec.from_dict(general_spec(base, 20000)).train.student.epochs == 1
    assert task_base("sst2", "data", None)["dataset"]["max_train_examples"] == 4000
