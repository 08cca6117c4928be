"""General (task-agnostic) distillation (core.general): masking, the two losses, the
training loop's general stage, and a general job whose student a task job starts from."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.general import (
    MLM_RECIPE,
    REPRESENTATION_RECIPE,
    GeneralSetup,
    general_loss,
    mask_tokens,
    split_texts,
)
from tests.conftest import make_sentiment_rows


def _setup(layers=(0, 1), mlm=False, vocab=1000) -> GeneralSetup:
    return GeneralSetup(layers=tuple(layers), mlm=mlm, mask_token_id=4, vocab_size=vocab,
                        special_ids=(0, 1, 2, 3, 4))


def test_dynamic_masking_picks_15_percent_of_real_tokens_80_10_10():
    ids = torch.randint(10, 1000, (200, 64))
    ids[:, 0], ids[:, -1] = 2, 3  # CLS and SEP are never masked
    mask = torch.ones_like(ids)
    mask[:, 48:] = 0  # nor is padding
    masked, labels = mask_tokens(ids, mask, _setup(), torch.Generator().manual_seed(0))
    picked = labels != -100
    assert not picked[:, 0].any() and not picked[:, 48:].any()
    share = picked.sum().item() / (200 * 46)
    assert 0.13 < share < 0.17
    assert torch.equal(labels[picked], ids[picked])
    as_mask = (masked[picked] == 4).float().mean().item()
    kept = (masked[picked] == ids[picked]).float().mean().item()
    assert 0.75 < as_mask < 0.85 and 0.07 < kept < 0.15
    assert torch.equal(masked[~picked], ids[~picked])


def _encoder(layers: int = 2, mlm: bool = False, seed: int = 0):
    from transformers import BertConfig, BertForMaskedLM, BertModel

    torch.manual_seed(seed)
    config = BertConfig(vocab_size=1000, hidden_size=32, num_hidden_layers=layers,
                        num_attention_heads=2, intermediate_size=64)
    return (BertForMaskedLM if mlm else BertModel)(config).eval()


def test_a_student_identical_to_its_teacher_has_no_representation_loss():
    from core.students import extract_student

    teacher = _encoder(4)
    student = extract_student(teacher, [0, 1, 2, 3])
    ids = torch.randint(10, 1000, (3, 12))
    mask = torch.ones_like(ids)
    with torch.no_grad():
        out_t = teacher(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        out_s = student(input_ids=ids, attention_mask=mask, output_hidden_states=True)
    terms = general_loss(out_s, out_t, mask, _setup((0, 1, 2, 3)), REPRESENTATION_RECIPE)
    assert float(terms.total) == pytest.approx(0.0, abs=1e-5)
    half = extract_student(teacher, [1, 3])
    with torch.no_grad():
        out_h = half(input_ids=ids, attention_mask=mask, output_hidden_states=True)
    # Two layers dropped: the hidden states move (little, with random small weights).
    assert float(general_loss(out_h, out_t, mask, _setup((1, 3)), REPRESENTATION_RECIPE
                              ).total) > 1e-4


def test_the_mlm_loss_counts_only_masked_tokens():
    teacher = _encoder(2, mlm=True)
    ids = torch.randint(10, 1000, (2, 10))
    mask = torch.ones_like(ids)
    labels = torch.full_like(ids, -100)
    with torch.no_grad():
        out = teacher(input_ids=ids, attention_mask=mask, output_hidden_states=True)
    setup = _setup(mlm=True)
    with pytest.raises(ValueError, match="labels"):
        general_loss(out, out, mask, setup, MLM_RECIPE)
    none_masked = general_loss(out, out, mask, setup, MLM_RECIPE, labels)
    assert float(none_masked.total) == pytest.approx(0.0, abs=1e-5)  # nothing to predict
    labels[0, 3] = ids[0, 3]
    one = general_loss(out, out, mask, setup, MLM_RECIPE, labels)
    assert float(one.kd) == pytest.approx(0.0, abs=1e-5) and float(one.ce) > 0


def test_held_out_texts_are_a_seeded_5_percent():
    texts = [f"text {i}" for i in range(200)]
    train, held = split_texts(texts, 1)
    assert len(held) == 10 and not set(train) & set(held) and split_texts(texts, 1)[1] == held


@pytest.mark.slow
@pytest.mark.parametrize(("mlm", "attention"), [(False, False), (False, True), (True, False)],
                         ids=["representation", "representation+attention", "mlm"])
def test_the_general_stage_brings_the_student_closer_to_its_teacher(tiny_bert_dir, mlm,
                                                                    attention):
    from transformers import AutoTokenizer

    from core.general import general_validate
    from core.specs import StageSettings, TrainConfig
    from core.students import extract_student
    from core.train import TrainData, train

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    teacher, other = _encoder(4, mlm=mlm), _encoder(4, mlm=mlm, seed=1)
    for model in (teacher, other):
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    # A student from another random model: far from the teacher, with much to learn (a
    # student copied from random layers starts almost where the teacher is).
    student = extract_student(other, [0, 3])
    if attention:
        from core.attention_maps import use_attention_maps

        for model in (teacher, student):
            use_attention_maps(model)
    texts = [t for t, _ in make_sentiment_rows(160, 0)]
    setup = GeneralSetup(layers=(0, 3), mlm=mlm, mask_token_id=tokenizer.mask_token_id,
                         vocab_size=len(tokenizer), special_ids=tuple(tokenizer.all_special_ids),
                         attention=attention)
    recipe = MLM_RECIPE if mlm else REPRESENTATION_RECIPE
    none = np.full(len(texts), -100)
    data = TrainData(tokenizer=tokenizer, texts=texts[:140], labels=none[:140],
                     validation_texts=texts[140:], validation_labels=none[140:],
                     label_names=[], general=setup)
    cpu = torch.device("cpu")
    before = general_validate(student, teacher, tokenizer, texts[140:], setup, recipe, 32, cpu)
    events: list[dict] = []
    result = train(student, data, stage="general", recipe=recipe,
                   config=TrainConfig(batch_size=16, max_length=32,
                                      student=StageSettings(3, 3e-3)),
                   device=cpu, seed=0, teacher=teacher, on_event=events.append)
    after = general_validate(student, teacher, tokenizer, texts[140:], setup, recipe, 32, cpu)
    assert after["val_loss"] < 0.9 * before["val_loss"]
    assert [row["epoch"] for row in result.history] == [1, 2, 3]
    if attention:  # the attention term itself is learnt, not only the hidden states
        kd = [e["kd"] for e in events if e.get("type") == "step"]
        assert len(kd) >= 3 and kd[-1] < 0.8 * kd[0], kd


def test_a_general_job_leaves_a_student_a_task_job_starts_from(tiny_bert_dir, tmp_path):
    from core.pipeline import run_job
    from core.runs import create_run
    from core.specs import JobSpec

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(t for t, _ in make_sentiment_rows(120, 2)) + "\n")
    general = create_run(JobSpec.from_dict({
        "kind": "general", "teacher": tiny_bert_dir, "dataset": {"name": str(corpus)},
        "attention_transfer": True,
        "student": {"layers": [0, 2]}, "seed": 1,
        "train": {"epochs": 1, "batch_size": 16, "max_length": 32, "learning_rate": 3e-3},
    }).to_dict(), tmp_path / "runs")
    metrics = run_job(general)
    assert metrics["kind"] == "general" and metrics["layers"] == [0, 2]
    assert metrics["loss"] == "general+attention"  # asked for; encoder only, same heads
    assert metrics["texts"] + metrics["validation_texts"] == 120
    assert np.isfinite(metrics["val_loss"]) and (general.model_dir("general") /
                                                 "config.json").is_file()
    rows = ["text,label"] + [f"{t},{y}" for t, y in make_sentiment_rows(64, 0)]
    (tmp_path / "train.csv").write_text("\n".join(rows) + "\n")
    task = create_run(JobSpec.from_dict({
        "teacher": tiny_bert_dir, "dataset": {"name": str(tmp_path / "train.csv")},
        "student": {"kind": "pretrained", "checkpoint": f"run:{general.id}/general"},
        "baseline": False, "timing": "off",
        "train": {"epochs": 1, "teacher_epochs": 1, "batch_size": 16, "max_length": 32},
    }).to_dict(), tmp_path / "runs")
    scored = run_job(task)
    assert scored["models"]["student"]["num_layers"] == 2
    from transformers import AutoModel

    saved = AutoModel.from_pretrained(general.model_dir("general"))
    assert saved.config._attn_implementation == "sdpa"  # trained with maps, saved as before


def test_the_distil_form_makes_a_general_job_and_shows_its_student(tmp_path):
    from app.forms import JOB_KINDS, build_spec
    from app.progress import form_values
    from app.results import results_card
    from tests.test_app_api import form

    general = next(label for label, kind in JOB_KINDS.items() if kind == "general")
    spec = build_spec(form(kind=general, baseline=True), tmp_path)
    assert spec.kind == "general" and spec.baseline is False
    assert form_values(spec.to_dict())["kind"] == general
    assert build_spec(form(), tmp_path).kind == "task"
    card = results_card({"kind": "general", "student": "run:abc/general", "layers": [0, 2],
                         "teacher": "bundled:minilm", "texts": 900, "loss": "general",
                         "history": [{"val_loss": 0.5}, {"val_loss": 0.3}], "best_epoch": 2})
    assert "run:abc/general" in card and "0.5000, 0.3000" in card and "--student" in card


def test_distillab_general_runs_a_general_job(tiny_bert_dir, tmp_path, capsys):
    from core.cli import build_parser, main, spec_from_args

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(t for t, _ in make_sentiment_rows(60, 3)) + "\n")
    args = build_parser().parse_args(["general", "--dataset", str(corpus), "--teacher",
                                      tiny_bert_dir, "--student-layers", "0,2"])
    spec = spec_from_args(args)
    assert (spec.kind, spec.baseline, spec.student.layers) == ("general", False, (0, 2))
    assert spec.attention_transfer is False  # off unless asked: it cost a point on SST-2
    assert spec_from_args(build_parser().parse_args(
        ["general", "--attention-transfer"])).attention_transfer is True
    with pytest.raises(SystemExit):  # a task job has no such flag
        build_parser().parse_args(["run", "--attention-transfer"])
    from core.specs import JobSpec, SpecError

    with pytest.raises(SpecError, match="general jobs .* only"):
        JobSpec.from_dict({"attention_transfer": True})
    assert spec_from_args(build_parser().parse_args(["run", "--timing", "off"])).timing == "off"
    code = main(["--runs-dir", str(tmp_path / "runs"), "general", "--dataset", str(corpus),
                 "--teacher", tiny_bert_dir, "--student-layers", "0,2", "--epochs", "1",
                 "--max-length", "32", "--batch-size", "16"])
    out = capsys.readouterr().out
    assert code == 0 and "general student run:" in out and "--student run:" in out
    assert "attention KL" not in out


def _outputs(hidden: list[list[list[float]]], logits: list[list[float]] | None = None):
    """A model output with one sequence: ``hidden`` per layer (embeddings first)."""
    from types import SimpleNamespace

    states = tuple(torch.tensor([layer]) for layer in hidden)
    return SimpleNamespace(hidden_states=states,
                           logits=None if logits is None else torch.tensor([logits]))


def test_the_general_losses_on_golden_values():
    """Hand-computed values. Representation: student layer 0 copies teacher layer 1; one real
    token and one padding token. MLM at T = 2: one masked position, where the teacher's
    tempered distribution is (0.75, 0.25) and the student's (0.5, 0.5)."""
    import math

    student = _outputs([[[9.0, 9.0], [9.0, 9.0]], [[1.0, 0.0], [5.0, 5.0]]])
    teacher = _outputs([[[0.0, 0.0], [0.0, 0.0]], [[7.0, 7.0], [7.0, 7.0]],
                        [[0.0, 1.0], [-3.0, 2.0]]])
    mask = torch.tensor([[1, 0]])
    terms = general_loss(student, teacher, mask, _setup((1,)), REPRESENTATION_RECIPE)
    # (1 - cos 90°) on the real token; MSE ((1-0)² + (0-1)²) / 2 dims on it; padding ignored.
    assert float(terms.cos) == pytest.approx(1.0)
    assert float(terms.ce) == pytest.approx(1.0)
    assert float(terms.total) == pytest.approx(1.0 * 1.0 + 1.0 * 1.0)

    hidden = [[[0.0, 0.0], [0.0, 0.0]], [[1.0, 0.0], [2.0, 2.0]]]
    student = _outputs(hidden, logits=[[0.0, 0.0], [4.0, -4.0]])
    teacher = _outputs([[[0.0, 0.0], [0.0, 0.0]], [[0.0, 1.0], [2.0, 2.0]]],
                       logits=[[2 * math.log(3), 0.0], [-4.0, 4.0]])
    labels = torch.tensor([[0, -100]])  # the second position was not masked: not counted
    terms = general_loss(student, teacher, torch.tensor([[1, 1]]), _setup(mlm=True, vocab=2),
                         MLM_RECIPE, labels)
    kl = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    assert float(terms.kd) == pytest.approx(kl * 4)  # x T²
    assert float(terms.ce) == pytest.approx(math.log(2))  # the student's own MLM loss
    assert float(terms.cos) == pytest.approx(0.5)  # (1 + 0) / 2 real tokens
    assert float(terms.total) == pytest.approx(5 * kl * 4 + 2 * math.log(2) + 1 * 0.5)


def test_the_attention_transfer_on_golden_values():
    """MiniLM's attention KL: two heads, one real query and one padded query (ignored). Head
    0: teacher (0.75, 0.25) against student (0.5, 0.5) over the two keys; head 1 equal."""
    import math
    from types import SimpleNamespace

    from core.general import attention_kl

    teacher = torch.tensor([[[[0.75, 0.25], [0.1, 0.9]], [[0.6, 0.4], [1.0, 0.0]]]])
    student = torch.tensor([[[[0.5, 0.5], [0.9, 0.1]], [[0.6, 0.4], [0.0, 1.0]]]])
    mask = torch.tensor([[1, 0]])
    kl = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    assert float(attention_kl(student, teacher, mask)) == pytest.approx(kl / 2)
    assert float(attention_kl(teacher, teacher, mask)) == pytest.approx(0.0, abs=1e-7)
    # In the representation loss: weighted by alpha_kd, reported as kd, only when asked for.
    hidden = (torch.zeros(1, 2, 2), torch.ones(1, 2, 2))
    out_s = SimpleNamespace(hidden_states=hidden, attentions=(student,))
    out_t = SimpleNamespace(hidden_states=hidden, attentions=(teacher,))
    with_maps = general_loss(out_s, out_t, mask, GeneralSetup(
        layers=(0,), mlm=False, mask_token_id=None, vocab_size=2, special_ids=(),
        attention=True), REPRESENTATION_RECIPE)
    assert float(with_maps.kd) == pytest.approx(kl / 2)
    assert float(with_maps.total) == pytest.approx(REPRESENTATION_RECIPE.alpha_kd * kl / 2,
                                                   rel=1e-5)
    without = general_loss(out_s, out_t, mask, _setup((0,)), REPRESENTATION_RECIPE)
    assert float(without.kd) == 0.0 and float(without.total) == pytest.approx(0.0, abs=1e-6)


def test_the_attention_loss_compares_the_teacher_layer_each_student_copies():
    from core.attention_maps import use_attention_maps
    from core.general import general_step_loss
    from core.students import extract_student

    teacher = _encoder(4)
    use_attention_maps(teacher)
    batch = {"input_ids": torch.randint(10, 1000, (2, 9)),
             "attention_mask": torch.tensor([[1] * 9, [1] * 5 + [0] * 4])}

    def attention_loss(student, layers):
        setup = GeneralSetup(layers=layers, mlm=False, mask_token_id=None, vocab_size=1000,
                             special_ids=(), attention=True)
        with torch.no_grad():
            return float(general_step_loss(student, teacher, batch, setup,
                                           REPRESENTATION_RECIPE).kd)

    # A copy's last layer (teacher layer 1 here) attends as that teacher layer: no loss.
    assert attention_loss(extract_student(teacher, [0, 1, 2, 3]), (0, 1, 2, 3)) == (
        pytest.approx(0.0, abs=1e-7))
    assert attention_loss(extract_student(teacher, [0, 1]), (0, 1)) == pytest.approx(
        0.0, abs=1e-7)
    # Layers of another model: some (small: random weights attend almost uniformly).
    other = extract_student(_encoder(4, seed=1), [0, 1])
    use_attention_maps(other)
    assert attention_loss(other, (0, 1)) > 1e-5


@pytest.mark.slow  # two general stages (~10 s)
def test_a_cancelled_general_stage_resumes_to_where_an_uninterrupted_one_ends(tiny_bert_dir,
                                                                            tmp_path):
    """With an MLM head (so the random masks must resume too): cancelled inside its second
    epoch and resumed from the checkpoint, the student ends with the uninterrupted run's
    weights and validation history."""
    from transformers import AutoTokenizer

    from core.specs import StageSettings, TrainConfig
    from core.students import extract_student
    from core.train import Cancelled, TrainData, train

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    teacher, other = _encoder(4, mlm=True), _encoder(4, mlm=True, seed=1)
    for model in (teacher, other):
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    texts = [t for t, _ in make_sentiment_rows(160, 0)]
    setup = GeneralSetup(layers=(0, 3), mlm=True, mask_token_id=tokenizer.mask_token_id,
                         vocab_size=len(tokenizer), special_ids=tuple(tokenizer.all_special_ids))
    none = np.full(len(texts), -100)
    data = TrainData(tokenizer=tokenizer, texts=texts[:140], labels=none[:140],
                     validation_texts=texts[140:], validation_labels=none[140:],
                     label_names=[], general=setup)
    common = dict(stage="general", recipe=MLM_RECIPE, device=torch.device("cpu"), seed=5,
                  teacher=teacher, config=TrainConfig(batch_size=16, max_length=32,
                                                      student=StageSettings(2, 3e-3)))
    uninterrupted = extract_student(other, [0, 3])
    full = train(uninterrupted, data, checkpoint_dir=tmp_path / "full", **common)
    polls = {"n": 0}

    def cancel_in_epoch_two() -> bool:
        polls["n"] += 1
        return polls["n"] == 13  # 9 batches an epoch

    interrupted = extract_student(other, [0, 3])
    with pytest.raises(Cancelled):
        train(interrupted, data, checkpoint_dir=tmp_path / "cut",
              should_cancel=cancel_in_epoch_two, **common)
    resumed_model = extract_student(_encoder(4, mlm=True, seed=7), [0, 3])
    resumed_model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    events: list[dict] = []
    resumed = train(resumed_model, data, checkpoint_dir=tmp_path / "cut",
                    on_event=events.append, **common)
    assert events[0]["type"] == "resumed" and events[0]["epoch"] == 1
    assert [r["val_loss"] for r in resumed.history] == pytest.approx(
        [r["val_loss"] for r in full.history])
    for (name, a), b in zip(uninterrupted.state_dict().items(),
                            resumed_model.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, msg=f"{name} differs after resume")


def test_a_pair_file_gives_both_texts_of_each_pair(tmp_path):
    """MRPC-shaped data (``sentence1``/``sentence2``): general distillation reads both
    sentences of every pair as texts (it once found no text in such a file)."""
    from core.general import load_general_texts

    path = tmp_path / "pairs.tsv"
    path.write_text("label\tsentence1\tsentence2\n1\tThe cat sat.\tA cat was sitting.\n"
                    "0\tIt rained.\tThe sun shone all day.\n")
    assert load_general_texts(str(path)) == ["The cat sat.", "A cat was sitting.",
                                             "It rained.", "The sun shone all day."]
