"""GLUE on the Hub: configs map their columns, splits (MNLI's validation_matched) and task,
tested on a local copy laid out as the Hub's parquet export (``load_dataset`` reads it the
same way)."""

from __future__ import annotations

import pytest

from core.data import load_data
from core.hub_layouts import apply_layout, is_glue
from core.specs import DatasetSpec
from core.tables import DataError

NLI = ["entailment", "neutral", "contradiction"]


@pytest.fixture(scope="module")
def glue_copy(tmp_path_factory):
    """``<tmp>/glue``: mnli (premise, hypothesis, ClassLabel; validation_matched and
    _mismatched, an unlabelled test_matched) and stsb (float scores, an unlabelled test)."""
    from datasets import ClassLabel, Dataset, Features, Value

    root = tmp_path_factory.mktemp("hub") / "glue"
    nli = Features({"premise": Value("string"), "hypothesis": Value("string"),
                    "label": ClassLabel(names=NLI), "idx": Value("int32")})
    sts = Features({"sentence1": Value("string"), "sentence2": Value("string"),
                    "label": Value("float32"), "idx": Value("int32")})

    def write(config, split, features, rows):
        (root / config).mkdir(parents=True, exist_ok=True)
        Dataset.from_dict(rows, features=features).to_parquet(
            root / config / f"{split}-00000-of-00001.parquet")

    def nli_rows(n, tag, labelled=True):
        return {"premise": [f"{tag} premise {i}" for i in range(n)],
                "hypothesis": [f"{tag} hypothesis {i}" for i in range(n)],
                "label": [i % 3 if labelled else -1 for i in range(n)],
                "idx": list(range(n))}

    def sts_rows(n, tag, labelled=True):
        return {"sentence1": [f"{tag} a {i}" for i in range(n)],
                "sentence2": [f"{tag} b {i}" for i in range(n)],
                "label": [(i % 11) / 2.0 if labelled else -1.0 for i in range(n)],
                "idx": list(range(n))}

    write("mnli", "train", nli, nli_rows(30, "train"))
    write("mnli", "validation_matched", nli, nli_rows(9, "matched"))
    write("mnli", "validation_mismatched", nli, nli_rows(6, "mismatched"))
    write("mnli", "test_matched", nli, nli_rows(4, "test", labelled=False))
    write("stsb", "train", sts, sts_rows(22, "train"))
    write("stsb", "validation", sts, sts_rows(11, "dev"))
    write("stsb", "test", sts, sts_rows(5, "test", labelled=False))
    files = {"mnli": ["train", "validation_matched", "validation_mismatched", "test_matched"],
             "stsb": ["train", "validation", "test"]}
    lines = ["---", "configs:"]
    for config, splits in files.items():
        lines += [f"- config_name: {config}", "  data_files:"]
        for split in splits:
            lines += [f"  - split: {split}", f"    path: {config}/{split}-*.parquet"]
    (root / "README.md").write_text("\n".join(lines + ["---", "", "A GLUE copy."]) + "\n")
    return root


def test_mnli_reads_premise_hypothesis_and_validation_matched(glue_copy):
    from core.hub_data import load_hub

    loaded = load_hub(DatasetSpec(name=str(glue_copy), config="mnli"), seed=0)
    assert loaded.label_names == NLI and loaded.columns == ("premise", "hypothesis")
    assert len(loaded.train_texts) == 30 and len(loaded.validation_texts) == 9
    assert loaded.validation_texts[0] == ("matched premise 0", "matched hypothesis 0")
    assert loaded.source.endswith("(Hub, mnli)") and loaded.task == "classification"
    # The caller's own split wins over the layout's.
    other = load_hub(DatasetSpec(name=str(glue_copy), config="mnli",
                                  validation="validation_mismatched"), seed=0)
    assert other.validation_texts[0][0] == "mismatched premise 0"


def test_stsb_is_a_regression_on_its_float_label(glue_copy):
    from core.hub_data import load_hub

    loaded = load_hub(DatasetSpec(name=str(glue_copy), config="stsb"), seed=0)
    assert loaded.task == "regression" and loaded.label_names == ["label"]
    assert loaded.validation_labels[:3] == [0.0, 0.5, 1.0]
    assert loaded.validation_texts[0] == ("dev a 0", "dev b 0")


def test_layout_names_and_errors():
    assert is_glue("glue") and is_glue("nyu-mll/glue") and is_glue("/data/copies/glue/")
    assert not is_glue("stanfordnlp/sst2")
    assert apply_layout(DatasetSpec(name="stanfordnlp/sst2")) == DatasetSpec(
        name="stanfordnlp/sst2")
    spec = apply_layout(DatasetSpec(name="glue", config="QQP"))
    assert (spec.text_column, spec.text_pair_column, spec.validation) == (
        "question1", "question2", "validation")
    kept = apply_layout(DatasetSpec(name="glue", config="rte", text_column="sentence1"))
    assert kept.text_pair_column is None  # named columns are the caller's
    with pytest.raises(DataError, match="needs a config"):
        apply_layout(DatasetSpec(name="glue"))
    with pytest.raises(DataError, match="no config 'squad'"):
        load_data(DatasetSpec(name="glue", config="squad"))
