"""Tests for core/models.py, core/students.py and core/saving.py: loading, student extraction,
compatibility, sizes and saving."""

from __future__ import annotations

import os
import shutil
import time

import pytest
import torch
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    BertConfig,
    BertForSequenceClassification,
    BertTokenizer,
    DistilBertConfig,
    DistilBertForSequenceClassification,
    GPT2Config,
)

from core.models import (
    ModelError,
    final_hidden_states,
    load_classifier,
    load_tokenizer,
    resolve_model_ref,
)
from core.saving import count_parameters, save_model, size_on_disk_mb, teacher_cache_key
from core.students import (
    build_fresh_student,
    check_compatibility,
    default_student_layers,
    extract_student,
    load_pretrained_student,
)

INPUT_IDS = torch.tensor([[101, 7592, 2088, 102, 0], [101, 2307, 3185, 999, 102],
                          [101, 2919, 102, 0, 0]])
ATTENTION_MASK = (INPUT_IDS != 0).long()


@pytest.fixture(scope="module")
def teacher(tiny_bert_dir: str) -> BertForSequenceClassification:
    torch.manual_seed(0)
    return BertForSequenceClassification.from_pretrained(tiny_bert_dir).eval()


@pytest.fixture(scope="module")
def tokenizer(tiny_bert_dir: str):
    return AutoTokenizer.from_pretrained(tiny_bert_dir)


def _logits(model: torch.nn.Module) -> torch.Tensor:
    with torch.inference_mode():
        return model(input_ids=INPUT_IDS, attention_mask=ATTENTION_MASK).logits


def _assert_modules_equal(a: torch.nn.Module, b: torch.nn.Module) -> None:
    state_a, state_b = a.state_dict(), b.state_dict()
    assert state_a.keys() == state_b.keys()
    for key in state_a:
        assert torch.equal(state_a[key], state_b[key]), key


@pytest.mark.parametrize("layers", [[0, 2], [1, 3]])
def test_extract_student_bert_copies_chosen_layers_embeddings_and_head(teacher, layers):
    student = extract_student(teacher, layers)

    assert type(student) is type(teacher)
    assert student.config.num_hidden_layers == 2
    assert student.config.distillab_teacher_layers == layers
    assert teacher.config.num_hidden_layers == 4  # the teacher's config is untouched
    for i, j in enumerate(layers):
        _assert_modules_equal(student.bert.encoder.layer[i], teacher.bert.encoder.layer[j])
    _assert_modules_equal(student.bert.embeddings, teacher.bert.embeddings)
    _assert_modules_equal(student.bert.pooler, teacher.bert.pooler)
    _assert_modules_equal(student.classifier, teacher.classifier)
    assert _logits(student.eval()).shape == (3, 2)


def test_extract_student_with_all_layers_reproduces_the_teacher_logits(teacher):
    student = extract_student(teacher, [0, 1, 2, 3]).eval()
    torch.testing.assert_close(_logits(student), _logits(teacher))


def test_extract_student_distilbert_copies_chosen_layers_and_head():
    torch.manual_seed(0)
    config = DistilBertConfig(vocab_size=120, dim=16, n_layers=4, n_heads=2, hidden_dim=32,
                              max_position_embeddings=32, num_labels=3)
    teacher = DistilBertForSequenceClassification(config).eval()

    student = extract_student(teacher, [0, 3]).eval()

    assert student.config.n_layers == 2
    assert len(student.distilbert.transformer.layer) == 2
    _assert_modules_equal(student.distilbert.transformer.layer[0],
                          teacher.distilbert.transformer.layer[0])
    _assert_modules_equal(student.distilbert.transformer.layer[1],
                          teacher.distilbert.transformer.layer[3])
    _assert_modules_equal(student.distilbert.embeddings, teacher.distilbert.embeddings)
    _assert_modules_equal(student.pre_classifier, teacher.pre_classifier)
    _assert_modules_equal(student.classifier, teacher.classifier)
    ids = torch.randint(0, 120, (4, 7))
    with torch.inference_mode():
        assert student(input_ids=ids).logits.shape == (4, 3)


def test_extract_student_defaults_to_every_other_layer(teacher):
    assert extract_student(teacher).config.distillab_teacher_layers == [0, 2]


@pytest.mark.parametrize("layers", [[0, 4], [2, 1], [1, 1], [-1, 2], []])
def test_extract_student_rejects_bad_layers_naming_the_teacher_layer_count(teacher, layers):
    with pytest.raises(ModelError, match="teacher's 4 layers"):
        extract_student(teacher, layers)


@pytest.mark.parametrize("teacher_layers, expected", [
    (12, [0, 2, 4, 7, 9, 11]),
    (6, [0, 2, 4]),
    (4, [0, 2]),
    (2, [0]),
    (1, [0]),
    (24, [0, 2, 4, 6, 8, 10, 13, 15, 17, 19, 21, 23]),
])
def test_default_student_layers_follows_distilbert(teacher_layers, expected):
    assert default_student_layers(teacher_layers) == expected


def test_build_fresh_student_is_narrower_with_teacher_vocab_and_labels(teacher):
    student = build_fresh_student(teacher, num_layers=2, hidden_size=16, num_heads=2)

    assert type(student) is type(teacher)
    assert (student.config.num_hidden_layers, student.config.hidden_size) == (2, 16)
    assert student.config.intermediate_size == 64
    assert student.config.vocab_size == teacher.config.vocab_size
    assert student.config.id2label == teacher.config.id2label
    assert _logits(student.eval()).shape == (3, 2)
    with pytest.raises(ModelError, match="divisible"):
        build_fresh_student(teacher, num_layers=2, hidden_size=30, num_heads=4)


def test_load_classifier_bundled_minilm_gets_a_new_five_label_head():
    labels = ["business", "entertainment", "politics", "sport", "tech"]
    model, tokenizer, has_head = load_classifier("bundled:minilm", labels)

    assert has_head is False
    assert isinstance(model, BertForSequenceClassification)
    assert model.config.num_labels == 5
    assert model.config.id2label == dict(enumerate(labels))
    assert model.config.label2id["tech"] == 4
    assert len(tokenizer) == 30522
    assert model.config.hidden_size == 384


def test_resolve_model_ref_bundled_aliases_give_the_minilm_folder(minilm_path):
    for ref in ("bundled:minilm", "minilm", "bundled"):
        assert resolve_model_ref(ref) == minilm_path
    with pytest.raises(ModelError, match="unknown bundled model"):
        resolve_model_ref("bundled:nope")


def test_load_classifier_keeps_a_head_with_matching_labels(tiny_bert_dir, teacher):
    model, tokenizer, has_head = load_classifier(tiny_bert_dir, ["negative", "positive"])

    assert has_head is True
    _assert_modules_equal(model, teacher)
    assert tokenizer.get_vocab() == AutoTokenizer.from_pretrained(tiny_bert_dir).get_vocab()
    # label_names=None keeps the checkpoint's own head and labels
    _, _, has_head = load_classifier(tiny_bert_dir)
    assert has_head is True
    # label names that differ only in case are the same labels
    model, _, has_head = load_classifier(tiny_bert_dir, ["NEGATIVE", "Positive"])
    assert has_head is True
    assert model.config.id2label == {0: "NEGATIVE", 1: "Positive"}


def test_load_classifier_generic_labels_count_as_a_head_and_are_renamed(tmp_path, teacher,
                                                                        tokenizer):
    generic = BertForSequenceClassification(BertConfig(**{
        **teacher.config.to_dict(), "id2label": {0: "LABEL_0", 1: "LABEL_1"},
        "label2id": {"LABEL_0": 0, "LABEL_1": 1}}))
    save_model(generic, tokenizer, tmp_path / "generic")

    model, _, has_head = load_classifier(str(tmp_path / "generic"), ["neg", "pos"])

    assert has_head is True
    assert model.config.id2label == {0: "neg", 1: "pos"}
    assert torch.equal(model.classifier.weight, generic.classifier.weight)


def test_load_classifier_other_labels_get_a_new_head_and_keep_the_encoder(tiny_bert_dir,
                                                                          teacher):
    torch.manual_seed(1)
    model, _, has_head = load_classifier(tiny_bert_dir, ["cat", "dog"])
    assert has_head is False
    assert model.config.id2label == {0: "cat", 1: "dog"}
    assert not torch.equal(model.classifier.weight, teacher.classifier.weight)
    _assert_modules_equal(model.bert, teacher.bert)

    model, _ = load_pretrained_student(tiny_bert_dir, ["a", "b", "c"])
    assert model.classifier.out_features == 3
    _assert_modules_equal(model.bert, teacher.bert)


def test_load_classifier_hub_id_offline_fails_fast_saying_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.monotonic()
    with pytest.raises(ModelError, match="offline"):
        load_classifier("distillab-tests/no-such-model", ["a", "b"])
    assert time.monotonic() - start < 5


def test_load_classifier_folder_without_config_names_it(tmp_path):
    folder = tmp_path / "not_a_model"
    folder.mkdir()
    (folder / "notes.txt").write_text("hello")
    with pytest.raises(ModelError, match="not_a_model.*config.json"):
        load_classifier(str(folder), ["a", "b"])


def test_load_classifier_corrupted_weights_names_the_file(tmp_path, tiny_bert_dir):
    folder = tmp_path / "corrupt"
    shutil.copytree(tiny_bert_dir, folder)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ModelError, match="model.safetensors"):
        load_classifier(str(folder), ["negative", "positive"])


def test_load_classifier_rejects_a_decoder_architecture(tmp_path):
    GPT2Config(n_layer=1, n_embd=16, n_head=2).save_pretrained(tmp_path / "gpt2")
    with pytest.raises(ModelError, match="unsupported architecture 'gpt2'"):
        load_classifier(str(tmp_path / "gpt2"), ["a", "b"])


def test_load_tokenizer_folder_without_tokenizer_files_is_refused(tmp_path, teacher):
    teacher.save_pretrained(tmp_path / "weights_only")
    with pytest.raises(ModelError, match="no tokenizer files"):
        load_tokenizer(str(tmp_path / "weights_only"))


def test_resolve_model_ref_run_models_folders_and_hub_ids(tmp_path):
    (tmp_path / "run1" / "models" / "student").mkdir(parents=True)

    assert resolve_model_ref("run:run1/student", runs_dir=tmp_path) == str(
        tmp_path / "run1" / "models" / "student")
    with pytest.raises(ModelError, match=r"no 'teacher' model.*\['student'\]"):
        resolve_model_ref("run:run1/teacher", runs_dir=tmp_path)
    with pytest.raises(ModelError, match="not found"):
        resolve_model_ref("run:run2/student", runs_dir=tmp_path)
    assert resolve_model_ref(str(tmp_path)) == str(tmp_path)
    with pytest.raises(ModelError, match="folder not found"):
        resolve_model_ref(str(tmp_path / "missing"))
    assert resolve_model_ref("bert-base-uncased") == "bert-base-uncased"
    assert resolve_model_ref("org/model") == "org/model"


def test_save_model_resaves_over_an_existing_folder_and_reloads_equal(tmp_path, teacher,
                                                                      tokenizer):
    target = tmp_path / "models" / "student"
    first = extract_student(teacher, [0, 2]).eval()
    save_model(first, tokenizer, target)
    second = extract_student(teacher, [1, 3]).eval()

    size_mb = save_model(second, tokenizer, target)

    reloaded = AutoModelForSequenceClassification.from_pretrained(target).eval()
    torch.testing.assert_close(_logits(reloaded), _logits(second))
    assert reloaded.config.distillab_teacher_layers == [1, 3]
    assert size_mb == pytest.approx((target / "model.safetensors").stat().st_size / 1e6)
    assert (target / "tokenizer.json").exists()
    assert sorted(p.name for p in target.parent.iterdir()) == ["student"]  # no temp folders


def test_save_model_failure_leaves_the_old_model_complete(tmp_path, teacher, tokenizer):
    target = tmp_path / "teacher"
    save_model(teacher, tokenizer, target)
    before = {p.name: p.read_bytes() for p in target.iterdir()}

    class DiskFullTokenizer(type(tokenizer)):
        def save_pretrained(self, *args, **kwargs):
            raise OSError("No space left on device")

    failing = DiskFullTokenizer.from_pretrained(str(target))
    with pytest.raises(OSError, match="No space"):
        save_model(extract_student(teacher, [0, 1]), failing, target)

    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    assert sorted(os.listdir(tmp_path)) == ["teacher"]


def test_size_on_disk_mb_counts_weights_files_in_megabytes(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"x" * 1_500_000)
    (tmp_path / "pytorch_model.bin").write_bytes(b"x" * 500_000)
    (tmp_path / "tokenizer.json").write_bytes(b"x" * 9_000_000)
    assert size_on_disk_mb(tmp_path) == pytest.approx(2.0)


def test_count_parameters_matches_a_hand_count(teacher):
    c = teacher.config
    h, inter, n = c.hidden_size, c.intermediate_size, c.num_hidden_layers
    embedding = (c.vocab_size + c.max_position_embeddings + c.type_vocab_size) * h + 2 * h
    per_layer = 4 * (h * h + h) + (h * inter + inter) + (inter * h + h) + 2 * 2 * h
    pooler, head = h * h + h, h * c.num_labels + c.num_labels

    total, non_embedding = count_parameters(teacher)

    assert total == embedding + n * per_layer + pooler + head
    assert total == sum(p.numel() for p in teacher.parameters())
    assert non_embedding == total - embedding


def test_check_compatibility_accepts_an_extracted_student(teacher, tokenizer):
    student = extract_student(teacher, [0, 2])
    check_compatibility(teacher, tokenizer, student, tokenizer, needs_hidden_states=True)


def test_check_compatibility_rejects_a_different_vocabulary(tmp_path, teacher, tokenizer):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world"]))
    other = BertTokenizer(vocab=str(vocab))
    assert len(other) == 7
    with pytest.raises(ModelError, match=r"tokenizers differ: \d+ token"):
        check_compatibility(teacher, tokenizer, teacher, other, needs_hidden_states=False)


def test_check_compatibility_rejects_different_label_counts(teacher, tokenizer):
    three = BertForSequenceClassification(BertConfig(**{**teacher.config.to_dict(),
                                                        "num_labels": 3}))
    three.config.num_labels = 3
    with pytest.raises(ModelError, match="2 labels.*3"):
        check_compatibility(teacher, tokenizer, three, tokenizer, needs_hidden_states=False)


def test_check_compatibility_width_matters_only_for_hidden_state_recipes(teacher, tokenizer):
    narrow = build_fresh_student(teacher, num_layers=2, hidden_size=16, num_heads=2)
    check_compatibility(teacher, tokenizer, narrow, tokenizer, needs_hidden_states=False)
    with pytest.raises(ModelError, match="recipe 'logits' or a same-width student"):
        check_compatibility(teacher, tokenizer, narrow, tokenizer, needs_hidden_states=True)


def test_final_hidden_states_is_the_last_layer_output(teacher):
    with torch.inference_mode():
        outputs = teacher(input_ids=INPUT_IDS, attention_mask=ATTENTION_MASK,
                          output_hidden_states=True)
        plain = teacher(input_ids=INPUT_IDS, attention_mask=ATTENTION_MASK)
    hidden = final_hidden_states(outputs)
    assert hidden.shape == (3, 5, teacher.config.hidden_size)
    assert hidden is outputs.hidden_states[-1]
    with pytest.raises(ModelError, match="output_hidden_states=True"):
        final_hidden_states(plain)


def test_teacher_cache_key_is_stable_and_changes_with_its_inputs(tiny_bert_dir):
    key = teacher_cache_key(tiny_bert_dir, "data1", {"epochs": 2, "lr": 1e-4})

    assert len(key) == 16 and int(key, 16) >= 0
    assert key == teacher_cache_key(tiny_bert_dir, "data1", {"lr": 1e-4, "epochs": 2})
    assert key != teacher_cache_key(tiny_bert_dir, "data2", {"epochs": 2, "lr": 1e-4})
    assert key != teacher_cache_key(tiny_bert_dir, "data1", {"epochs": 3, "lr": 1e-4})
    assert key != teacher_cache_key("bert-base-uncased", "data1", {"epochs": 2, "lr": 1e-4})
    assert teacher_cache_key("minilm", "d", {}) == teacher_cache_key("bundled:minilm", "d", {})


def test_teacher_cache_key_changes_when_the_local_checkpoint_is_overwritten(tmp_path, teacher,
                                                                            tokenizer):
    folder = tmp_path / "teacher"
    save_model(teacher, tokenizer, folder)
    before = teacher_cache_key(str(folder), "d", {})
    save_model(extract_student(teacher, [0, 1]), tokenizer, folder)
    assert teacher_cache_key(str(folder), "d", {}) != before


def test_save_model_portable_two_rename_path_also_replaces(tmp_path, teacher, tokenizer,
                                                           monkeypatch):
    import core.saving

    monkeypatch.setattr(core.saving, "_exchange", lambda a, b: False)  # as without renameat2
    target = tmp_path / "student"
    save_model(teacher, tokenizer, target)
    student = extract_student(teacher, [3]).eval()
    save_model(student, tokenizer, target)
    reloaded = AutoModelForSequenceClassification.from_pretrained(target).eval()
    torch.testing.assert_close(_logits(reloaded), _logits(student))
    assert sorted(os.listdir(tmp_path)) == ["student"]
