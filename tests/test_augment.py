"""Augmented transfer sets (core.augment): Tang et al.'s rules, TinyBERT's MLM replacement,
pairs, determinism and the on-disk cache."""

from __future__ import annotations

import pytest

from core.augment import AugmentConfig, augment_texts, cached_augmentation, vary_words

TEXTS = ["the film was a quiet and moving portrait of grief",
         "an utterly tedious plot with wooden acting throughout",
         "great music"]


def test_variants_are_new_distinct_and_reproducible():
    first = augment_texts(TEXTS, 4, seed=1)
    assert first == augment_texts(TEXTS, 4, seed=1)
    assert first != augment_texts(TEXTS, 4, seed=2)
    assert len(first) == len(set(first)) and not set(first) & set(TEXTS)
    assert 8 <= len(first) <= 12  # "great music" has few distinct variants
    assert any("[MASK]" in t for t in augment_texts(TEXTS, 8, seed=0))


def test_each_rule_does_what_it_says():
    import random

    words = ["a", "b", "c", "d", "e", "f", "g", "h"]
    masked = vary_words(words, random.Random(0), AugmentConfig(p_mask=1.0, p_ngram=0,
                                                               p_drop=0, p_swap=0), "<m>")
    assert masked == ["<m>"] * 8
    cut = vary_words(words, random.Random(0), AugmentConfig(p_mask=0, p_ngram=1.0, p_drop=0,
                                                            p_swap=0), "<m>")
    assert 1 <= len(cut) <= 5 and " ".join(cut) in " ".join(words)
    swapped = vary_words(words, random.Random(0), AugmentConfig(p_mask=0, p_ngram=0, p_drop=0,
                                                                p_swap=1.0), "<m>")
    assert swapped == ["b", "a", "d", "c", "f", "e", "h", "g"]
    dropped = vary_words(words, random.Random(0), AugmentConfig(p_mask=0, p_ngram=0,
                                                                p_drop=1.0, p_swap=0), "<m>")
    assert dropped == ["a"]  # never empty


def test_pairs_are_varied_side_by_side():
    pairs = [("a man is playing a guitar on stage", "someone plays an instrument"),
             ("the cat sleeps on the warm mat", "a dog runs in the park")]
    out = augment_texts(pairs, 3, seed=0)
    assert out and all(isinstance(p, tuple) and len(p) == 2 and all(p) for p in out)


def test_bad_settings_are_refused_clearly():
    with pytest.raises(ValueError, match="1 to 32"):
        augment_texts(TEXTS, 0)
    with pytest.raises(ValueError, match="probability"):
        AugmentConfig(p_mask=1.5)
    with pytest.raises(ValueError, match="masked-language model"):
        augment_texts(TEXTS, 2, config=AugmentConfig(method="mlm"))


def test_mlm_replacement_takes_words_from_the_models_candidates(tiny_bert_dir):
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    torch.manual_seed(0)
    mlm = BertForMaskedLM(BertConfig(vocab_size=len(tokenizer), hidden_size=32,
                                     num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=64))
    config = AugmentConfig(method="mlm", p_replace=1.0, p_mask=0, p_ngram=0, p_drop=0,
                           p_swap=0, top_k=5)
    out = augment_texts(["the film was good"], 2, config=config, seed=0, mlm=mlm,
                        mlm_tokenizer=tokenizer)
    assert out and all(t != "the film was good" for t in out)
    vocab = set(tokenizer.get_vocab())
    assert all(word in vocab for t in out for word in t.split())


def test_the_cache_reuses_an_augmentation(tmp_path, monkeypatch):
    import core.augment as augment

    config = AugmentConfig()
    first = cached_augmentation(tmp_path, TEXTS, 2, config=config, seed=0, mask_token="[MASK]")
    monkeypatch.setattr(augment, "augment_texts", lambda *a, **k: pytest.fail("recomputed"))
    again = cached_augmentation(tmp_path, TEXTS, 2, config=config, seed=0, mask_token="[MASK]")
    assert again == first and len(list(tmp_path.iterdir())) == 1


def test_the_spec_checks_augmentation_settings():
    from core.specs import DatasetSpec, SpecError

    assert DatasetSpec(augment=4).augment == 4
    with pytest.raises(SpecError, match="0 \\(none\\) to 32"):
        DatasetSpec(augment=40)
    with pytest.raises(SpecError, match="augment_method"):
        DatasetSpec(augment=2, augment_method="backtranslate")
    with pytest.raises(SpecError, match="augment_mlm"):
        DatasetSpec(augment=2, augment_method="mlm")


def test_cli_flags_reach_the_spec():
    from core.cli import build_parser, spec_from_args

    args = build_parser().parse_args(["run", "--augment", "3", "--augment-method", "mlm",
                                      "--augment-mlm", "bert-base-uncased"])
    dataset = spec_from_args(args).dataset
    assert (dataset.augment, dataset.augment_method, dataset.augment_mlm) == (
        3, "mlm", "bert-base-uncased")


def test_a_job_distils_on_the_augmented_transfer_set(tiny_bert_dir, tmp_path):
    from core.pipeline import run_job
    from core.runs import create_run
    from tests.conftest import make_sentiment_rows
    from tests.test_pipeline import tiny_spec

    paths = []
    for name, n, seed in (("train.csv", 64, 0), ("dev.csv", 24, 1)):
        lines = ["text,label"] + [f"{t},{y}" for t, y in make_sentiment_rows(n, seed)]
        (tmp_path / name).write_text("\n".join(lines) + "\n")
        paths.append(str(tmp_path / name))
    spec = tiny_spec(tiny_bert_dir, *paths, epochs=1, teacher_epochs=1).to_dict()
    spec["dataset"]["augment"] = 2
    spec["baseline"] = False  # the augmentation is the student's alone
    spec["timing"] = "off"  # nor is the speed the point here
    run = create_run(spec, tmp_path / "runs")
    events = []
    metrics = run_job(run, on_event=events.append)
    added = metrics["augmentation"]["added"]
    assert 64 <= added <= 128 and metrics["transfer_size"] == added
    assert len(metrics["augmentation"]["examples"]) == 5
    assert (run.path / "augmentation.json").is_file()
    assert any(e.get("stage") == "augment" for e in events)
    assert list((tmp_path / "runs" / "_cache" / "augment").glob("*.json"))
    assert all("latency_ms_p50" not in m for m in metrics["models"].values())  # timing off
    assert any("timing is off" in str(e.get("message")) for e in events)


def test_the_baseline_is_the_same_whatever_the_student_was_given(tiny_bert_dir, tmp_path):
    # The baseline (no teacher, no transfer set) of two jobs that differ only in the
    # student's augmentation must be the same model: its new head's initialisation used to
    # follow however many random numbers the student's stage had drawn.
    import torch
    from transformers import AutoModelForSequenceClassification

    from core.pipeline import run_job
    from core.runs import create_run
    from tests.conftest import make_sentiment_rows
    from tests.test_pipeline import tiny_spec

    # "neg"/"pos" are not the tiny model's label names: every model gets a new head.
    rows = ["text,label"] + [f"{t},{y[:3]}" for t, y in make_sentiment_rows(48, 0)]
    (tmp_path / "train.csv").write_text("\n".join(rows) + "\n")
    baselines = []
    for augment in (0, 2):
        spec = tiny_spec(tiny_bert_dir, str(tmp_path / "train.csv"), str(tmp_path / "train.csv"),
                         epochs=1, teacher_epochs=1).to_dict()
        spec["dataset"]["augment"] = augment
        spec["timing"] = "off"
        run = create_run(spec, tmp_path / "runs")
        run_job(run)
        baselines.append(AutoModelForSequenceClassification.from_pretrained(
            run.model_dir("baseline")).state_dict())
    assert all(torch.equal(baselines[0][k], baselines[1][k]) for k in baselines[0])
