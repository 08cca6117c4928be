"""core/specs.py: every bad field of a job spec is a SpecError naming the field."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from core.specs import (
    PRESETS,
    DatasetSpec,
    JobSpec,
    Recipe,
    SpecError,
    StageSettings,
    StudentSpec,
    TrainConfig,
)


def _message(data: Any) -> str:
    with pytest.raises(SpecError) as info:
        JobSpec.from_dict(data)
    return str(info.value)


@pytest.mark.parametrize(("data", "message"), [
    ({"train": {"epochs": "two"}}, "train.epochs must be an integer, got 'two'"),
    ({"train": {"epochs": None}}, "train.epochs must be an integer, got None"),
    ({"train": {"epochs": 2.5}}, "train.epochs must be an integer, got 2.5"),
    ({"train": {"batch_size": True}}, "train.batch_size must be an integer, got True"),
    ({"train": {"max_length": [64]}}, "train.max_length must be an integer, got [64]"),
    ({"seed": "abc"}, "seed must be an integer, got 'abc'"),
    ({"seed": None}, "seed must be an integer, got None"),
    ({"dataset": {"max_train_examples": "5"}},
     "dataset.max_train_examples must be an integer, got '5'"),
    ({"student": {"kind": "fresh", "num_layers": "2"}},
     "student.num_layers must be an integer, got '2'"),
])
def test_integer_fields_refuse_strings_none_bools_fractions_and_lists(data, message):
    assert _message(data) == message


@pytest.mark.parametrize(("data", "message"), [
    ({"train": {"learning_rate": [1]}}, "train.learning_rate must be a number, got [1]"),
    ({"train": {"learning_rate": "1e-4"}}, "train.learning_rate must be a number, got '1e-4'"),
    ({"train": {"warmup_ratio": None}}, "train.warmup_ratio must be a number, got None"),
    ({"recipe": {"alpha_ce": False}}, "recipe.alpha_ce must be a number, got False"),
    ({"recipe": {"temperature": math.nan}}, "recipe.temperature must be a finite number, got nan"),
    ({"recipe": {"alpha_kd": math.nan}}, "recipe.alpha_kd must be a finite number, got nan"),
    ({"recipe": {"alpha_cos": -math.inf}}, "recipe.alpha_cos must be a finite number, got -inf"),
    ({"train": {"learning_rate": math.inf}},
     "train.learning_rate must be a finite number, got inf"),
    ({"train": {"weight_decay": math.nan}}, "train.weight_decay must be a finite number, got nan"),
    ({"train": {"max_grad_norm": math.inf}},
     "train.max_grad_norm must be a finite number, got inf"),
])
def test_float_fields_refuse_non_numbers_nan_and_infinity(data, message):
    assert _message(data) == message


@pytest.mark.parametrize(("data", "message"), [
    ({"teacher": 5}, "teacher must be a string, got 5"),
    ({"device": ["cpu"]}, "device must be a string, got ['cpu']"),
    ({"name": 3}, "name must be a string, got 3"),
    ({"dataset": {"name": 7}}, "dataset.name must be a string, got 7"),
    ({"dataset": {"validation": 1}}, "dataset.validation must be a string, got 1"),
    ({"student": {"kind": 1}}, "student.kind must be a string, got 1"),
    ({"train": {"compile": "yes"}}, "train.compile must be true or false, got 'yes'"),
    ({"baseline": "no"}, "baseline must be true or false, got 'no'"),
    ({"baseline": 0}, "baseline must be true or false, got 0"),
])
def test_string_and_bool_fields_refuse_other_types(data, message):
    assert _message(data) == message


@pytest.mark.parametrize(("data", "message"), [
    ({"train": 5}, "train must be a train preset (a string) or an object of train settings, "
                   "got 5"),
    ({"dataset": [1]}, "dataset must be a dataset name (a string) or an object of dataset "
                       "settings, got [1]"),
    ({"recipe": None}, "recipe must be a recipe name (a string) or an object of recipe "
                       "settings, got None"),
    ({"student": 2}, "student must be a student kind (a string) or an object of student "
                     "settings, got 2"),
])
def test_sections_of_the_wrong_type_name_the_section(data, message):
    assert _message(data) == message


def test_a_spec_that_is_not_an_object_or_has_odd_keys_is_refused():
    assert _message([1, 2]) == "a job spec is an object of JobSpec fields, got list"
    assert _message({1: 2, "x": 3}) == "unknown job spec keys: [1, 'x']"
    assert _message({"train": {"preset": [1]}}) == (
        "train.preset must be a string, one of ['full', 'quick'], got [1]")
    with pytest.raises(SpecError, match="dataset must be a DatasetSpec, got 'x.csv'"):
        JobSpec(dataset="x.csv")  # type: ignore[arg-type]


def test_a_string_epoch_in_a_spec_file_names_the_field(tmp_path):
    (tmp_path / "job.json").write_text('{"train": {"preset": "quick", "epochs": "2"}}')
    data = json.loads((tmp_path / "job.json").read_text())
    assert _message(data) == "train.epochs must be an integer, got '2'"


def test_json_numbers_and_int_valued_floats_are_accepted_and_normalised():
    spec = JobSpec.from_dict({"train": {"epochs": 2.0, "weight_decay": 0, "preset": "full"},
                              "seed": 7.0, "recipe": {"temperature": 4}})
    assert spec.train.student.epochs == 2 and type(spec.train.student.epochs) is int
    assert spec.train.weight_decay == 0.0 and type(spec.train.weight_decay) is float
    assert spec.seed == 7 and type(spec.seed) is int
    assert spec.recipe.temperature == 4.0 and type(spec.recipe.temperature) is float


def test_a_saved_spec_reads_back_equal():
    spec = JobSpec(dataset=DatasetSpec(name="train.csv", max_train_examples=10),
                   student=StudentSpec(layers=(0, 3)), train=PRESETS["full"], seed=3)
    assert JobSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


@pytest.mark.parametrize(("layers", "expected"), [
    ("0,2", (0, 2)), ("0, 2", (0, 2)), ("1 3 5", (1, 3, 5)), ("[0, 4]", (0, 4)),
    ([0, 2.0], (0, 2)), ((1,), (1,)),
])
def test_student_layers_from_lists_or_strings(layers, expected):
    assert JobSpec.from_dict({"student": {"layers": layers}}).student.layers == expected


@pytest.mark.parametrize(("layers", "message"), [
    ("a,b", "student.layers must be teacher layer indices such as '0,2,4', got 'a,b'"),
    ("0,1.5", "student.layers must be teacher layer indices such as '0,2,4', got '0,1.5'"),
    (3, "student.layers must be a list of teacher layer indices such as [0, 2, 4], got 3"),
    ([0, "a"], "student.layers must be a list of teacher layer indices such as [0, 2, 4], "
               "got [0, 'a']"),
    ([True], "student.layers must be a list of teacher layer indices such as [0, 2, 4], "
             "got [True]"),
    ([], "student.layers must name at least one teacher layer"),
    ("", "student.layers must name at least one teacher layer"),
    ([-1, 2], "student.layers must be non-negative indices, got (-1, 2)"),
    ([2, 0], "student.layers must be strictly increasing teacher layer indices, each once, "
             "got (2, 0)"),
    ([0, 2, 2], "student.layers must be strictly increasing teacher layer indices, each once, "
                "got (0, 2, 2)"),
])
def test_bad_student_layers_say_what_is_wrong(layers, message):
    assert _message({"student": {"layers": layers}}) == message


def test_existing_range_checks_still_apply():
    assert _message({"train": {"epochs": 0}}) == "train.epochs must be at least 1, got 0"
    assert _message({"recipe": {"temperature": 0}}) == "recipe.temperature must be > 0, got 0.0"
    assert _message({"dataset": {"max_eval_examples": 0}}) == (
        "dataset.max_eval_examples must be at least 1, got 0")
    assert _message({"device": "tpu"}).startswith("device must be auto, cpu")
    assert _message({"teacher": "  "}).startswith("teacher: a Hub id")
    assert _message({"dataset": " "}) == "dataset: a name, path or Hub id is required"
    assert _message({"train": {"max_grad_norm": -1}}) == (
        "train.max_grad_norm must be > 0, got -1.0")
    assert _message({"student": {"kind": "fresh", "num_layers": 2, "num_heads": 0}}) == (
        "student.num_heads must be at least 1, got 0")


def test_presets_partial_dicts_and_unknown_keys_behave_as_before():
    spec = JobSpec.from_dict({"train": {"preset": "full", "epochs": 1}, "recipe": "logits"})
    assert (spec.train.student.epochs, spec.train.max_length, spec.recipe.alpha_cos) == (
        1, 256, 0.0)
    assert JobSpec.from_dict({}) == JobSpec()
    assert JobSpec.from_dict({"dataset": "x.csv"}).dataset.name == "x.csv"
    assert JobSpec.from_dict({"student": "extract"}).student == StudentSpec()
    assert _message({"train": {"epoch": 1}}) == "unknown train keys: ['epoch']"
    assert _message({"recipe": "nope"}).startswith("unknown recipe preset 'nope'")


def test_direct_construction_is_checked_too():
    with pytest.raises(SpecError, match="train.student.epochs must be an integer, got '2'"):
        TrainConfig(student=StageSettings("2", 1e-4))  # type: ignore[arg-type]
    with pytest.raises(SpecError, match="train.teacher must be an object with epochs"):
        TrainConfig(teacher=3)  # type: ignore[arg-type]
    with pytest.raises(SpecError, match="recipe.temperature must be a finite number"):
        Recipe(temperature=math.nan)
    assert StudentSpec(layers="0,3").layers == (0, 3)  # type: ignore[arg-type]


def test_the_timing_switch_is_checked_and_defaults_to_the_environment(monkeypatch):
    from core.specs import JobSpec, SpecError
    from core.timing import timing_level

    assert JobSpec.from_dict({"timing": "quick"}).timing == "quick"
    with pytest.raises(SpecError, match="timing must be one of full, quick, off"):
        JobSpec.from_dict({"timing": "sometimes"})
    monkeypatch.setenv("DISTILLAB_TIMING", "off")
    assert timing_level("") == "off" and timing_level("full") == "full"
    monkeypatch.delenv("DISTILLAB_TIMING")
    assert timing_level(None) == "full"


def test_each_stage_reads_its_own_epochs_and_learning_rate_from_one_place():
    from core.specs import StageSettings, TrainConfig

    config = TrainConfig(student=StageSettings(3, 2e-4), teacher=StageSettings(1, 5e-5))
    assert config.stage("teacher") == StageSettings(1, 5e-5)
    for stage in ("student", "baseline", "general"):
        assert config.stage(stage) == StageSettings(3, 2e-4)


def test_stages_nest_in_the_spec_and_the_flat_keys_of_older_specs_still_read():
    """No teacher_* twins in TrainConfig: the stages are two StageSettings; a spec file (or a
    run's spec.json written before) with the flat keys builds the same spec."""
    flat = {"train": {"preset": "full", "epochs": 3, "learning_rate": 2e-4,
                      "teacher_epochs": 0, "teacher_learning_rate": 3e-5}}
    nested = {"train": {"preset": "full", "student": {"epochs": 3, "learning_rate": 2e-4},
                        "teacher": {"epochs": 0, "learning_rate": 3e-5}}}
    spec = JobSpec.from_dict(flat)
    assert spec == JobSpec.from_dict(nested)
    assert spec.to_dict()["train"]["teacher"] == {"epochs": 0, "learning_rate": 3e-5}
    assert "teacher_epochs" not in spec.to_dict()["train"]
    assert JobSpec.from_dict(spec.to_dict()) == spec
    # A stage given in part keeps the preset's other value.
    partial = JobSpec.from_dict({"train": {"preset": "full", "teacher": {"epochs": 1}}})
    assert partial.train.teacher == StageSettings(1, 5e-5)
    assert partial.train.stage_values() == {"epochs": 4, "learning_rate": 5e-5,
                                            "teacher_epochs": 1, "teacher_learning_rate": 5e-5}
    assert _message({"train": {"epochs": 2, "student": {"epochs": 3}}}) == (
        "train: give epochs or student.epochs, not both")
    assert _message({"train": {"teacher": {"lr": 1}}}) == "unknown train.teacher keys: ['lr']"
    assert _message({"train": {"teacher": {"epochs": -1}}}) == (
        "train.teacher.epochs must be at least 0, got -1")
    assert _message({"train": {"teacher_epochs": -1}}) == (
        "train.teacher_epochs must be at least 0, got -1")
