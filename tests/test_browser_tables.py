"""Results tables at 1280 px: the key columns of every table are on screen, in Chromium.

No training: a finished run (teacher, student, baseline and an int8 student, five news
topics, long article texts) is written by hand, with a newer failed run beside it, and the
app serves without a job queue. Screenshots of each tab go to the test's temporary folder
and to ``/tmp/dl-screens`` for a person to look at.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import serve_app
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.browser

WIDTH, HEIGHT = 1280, 900
SCREENS = Path("/tmp/dl-screens")
TOPICS = ["business", "entertainment", "politics", "sport", "tech"]
ROLE_SPEED = {  # role: (accuracy, latency p50 ms, size MB, params)
    "teacher": (0.9624, 9.1, 90.9, 22_713_989),
    "student": (0.9576, 4.8, 72.9, 18_177_797),
    "student_int8": (0.9553, 3.1, 42.1, 18_177_797),
    "baseline": (0.9153, 4.7, 72.9, 18_177_797),
}


def news_article(index: int, topic: str) -> str:
    """A long, multi-paragraph text like a BBC News article."""
    lead = f"Story {index}: the {topic} desk reports a remarkable week"
    body = " ".join(f"sentence {k} about {topic} matters and what happened next."
                    for k in range(60))
    return f"{lead}\n\n{body}\n\nMore {topic} news follows."


def fabricate_finished_run(runs_dir: Path, model_dir: str, name: str, device: str,
                           int8: bool = True) -> str:
    """A done run with scored roles (``student_int8`` too when ``int8``), predictions and
    one epoch of history, made without training."""
    from core.runs import create_run
    from core.scores import predictions_table

    run = create_run({"name": name, "teacher": "bundled:minilm",
                      "dataset": {"name": "bbc_news"}, "train": {"epochs": 1}}, runs_dir)
    for role in ("teacher", "student", "baseline"):
        shutil.copytree(model_dir, run.model_dir(role))
    roles = [role for role in ROLE_SPEED if int8 or role != "student_int8"]
    if int8:  # weights and marker only, no config.json: as core/quantize.py saves them
        folder = run.model_dir("student_int8")
        folder.mkdir(parents=True)
        (folder / "model_int8.pt").write_bytes(b"\0" * 16)
        (folder / "quantization.json").write_text(json.dumps({"source_role": "student"}))
    count = 40
    labels = np.arange(count) % len(TOPICS)
    texts = [news_article(i, TOPICS[y]) for i, y in enumerate(labels)]
    rng = np.random.default_rng(0)
    probabilities = {role: rng.dirichlet(np.ones(len(TOPICS)), size=count) for role in roles}
    run.write_predictions(predictions_table(texts, labels, probabilities, TOPICS))
    matrix = (np.eye(len(TOPICS), dtype=int) * 80 + 2).tolist()
    models = {}
    for role in roles:
        accuracy, latency, size, params = ROLE_SPEED[role]
        latency *= 0.3 if device.startswith("cuda") else 1.0
        models[role] = {
            "accuracy": accuracy, "macro_f1": accuracy - 0.002, "params": params,
            "params_non_embedding": params // 2, "size_mb": size, "latency_ms_p50": latency,
            "latency_ms_p95": latency * 1.2, "throughput_per_s": 4000.0 / latency,
            "device": device, "precision": "int8-dynamic" if role.endswith("int8") else "fp32",
            "confusion_matrix": matrix,
            "per_class": {t: {"precision": 0.96, "recall": 0.95, "f1": 0.955} for t in TOPICS},
        }
    run.write_metrics({"models": models, "label_names": TOPICS, "max_length": 128,
                       "dataset": "bbc_news: 1,700 train / 425 validation texts, 5 labels"})
    for stage, accuracy in (("teacher", 0.96241), ("student", 0.96236), ("baseline", 0.96246)):
        run.append_history({"stage": stage, "epoch": 1, "train_loss": 0.3,
                            "val_accuracy": accuracy, "val_macro_f1": accuracy - 0.00003})
    run.set_status("done", stage="done")
    return run.id


def fabricate_failed_run(runs_dir: Path) -> str:
    """A newer run that failed before scoring anything."""
    from core.runs import create_run

    run = create_run({"name": "retry", "teacher": "bundled:minilm"}, runs_dir)
    run.set_status("failed", stage="data", error="no such dataset")
    return run.id


@pytest.fixture(scope="module")
def news_model_dir(tmp_path_factory: pytest.TempPathFactory, minilm_path: str) -> str:
    """A 2-layer, 32-wide random BERT classifier over the five news topics."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    path = tmp_path_factory.mktemp("news_bert")
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64,
                        max_position_embeddings=128, num_labels=len(TOPICS),
                        id2label=dict(enumerate(TOPICS)),
                        label2id={t: i for i, t in enumerate(TOPICS)})
    BertForSequenceClassification(config).save_pretrained(path)
    AutoTokenizer.from_pretrained(minilm_path).save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, news_model_dir: str) -> Iterator[dict]:
    """The app over two finished runs and a newer failed one, and a 1280 x 900 page."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    runs_dir = tmp_path_factory.mktemp("tables") / "runs"
    runs_dir.mkdir()
    # Oldest first (same-second ids sort by name): a GPU run, the int8 one, a failed one.
    other = fabricate_finished_run(runs_dir, news_model_dir, "base", "cuda:0 (NVIDIA H200)",
                                   int8=False)
    done = fabricate_finished_run(runs_dir, news_model_dir, "news",
                                  "cpu (AMD EPYC 7B13, 2 threads)")
    failed = fabricate_failed_run(runs_dir)
    with serve_app(runs_dir, with_queue=False) as url, \
            sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                             args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
        page.set_default_timeout(60_000)
        page.goto(url, wait_until="load")
        page.locator("#launch").wait_for()
        try:
            yield {"page": page, "done": done, "other": other, "failed": failed}
        finally:
            browser.close()


def screenshot(page: object, name: str, tmp_path: Path) -> None:
    """A full-page screenshot into ``tmp_path``, copied to ``/tmp/dl-screens``."""
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=True)
    SCREENS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, SCREENS / name)


def header_boxes(page: object, elem_id: str) -> dict[str, tuple[float, float]]:
    """Each column header of table ``elem_id``: its text -> (left, right) in page pixels."""
    return {text: (left, right) for text, left, right in page.evaluate(
        """(id) => [...document.querySelectorAll(`#${id} thead th`)].map(th => {
               const box = th.getBoundingClientRect();
               return [th.innerText.trim(), box.left, box.right]; })""", elem_id)}


def assert_columns_on_screen(page: object, elem_id: str, headers: list[str]) -> None:
    """``headers`` are columns of ``elem_id``, left to right in that order, all within the
    viewport's width (a partly hidden header counts as off screen)."""
    boxes = header_boxes(page, elem_id)
    missing = [h for h in headers if h not in boxes]
    assert not missing, f"{elem_id}: no columns {missing}; columns: {list(boxes)}"
    off = {h: boxes[h] for h in headers if boxes[h][0] < 0 or boxes[h][1] > WIDTH}
    assert not off, f"{elem_id}: off screen at {WIDTH} px: {off}"
    lefts = [boxes[h][0] for h in headers]
    assert lefts == sorted(lefts), f"{elem_id}: columns out of order: {boxes}"


def open_tab(page: object, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def test_leaderboard_key_columns_fit_and_the_tab_opens_on_the_newest_done_run(
        app: dict, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    page = app["page"]
    open_tab(page, "Runs")
    details = page.locator("#run-details")
    expect(details).to_contain_text(f"{app['done']} · done")  # not the newer failed run
    expect(details).to_contain_text("student_int8")
    board = page.locator("#leaderboard")
    expect(board).to_contain_text(app["done"])
    expect(board).to_contain_text("student_int8")
    assert_columns_on_screen(page, "leaderboard", [
        "role", "accuracy", "macro-F1", "speed-up", "retained", "p50 ms", "texts/s", "MB",
        "params M", "device", "run"])
    assert_columns_on_screen(page, "confusion", ["true ↓ predicted →", *TOPICS])
    assert_columns_on_screen(page, "runs-list", ["name", "state", "teacher acc", "run"])
    expect(page.locator("#run-curves .vega-embed")).to_be_visible()
    screenshot(page, "runs.png", tmp_path)


def test_disagreement_browser_shows_labels_first_and_a_click_compares_the_whole_text(
        app: dict, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    page = app["page"]
    open_tab(page, "Compare")
    models = page.locator("#compare-models")
    expect(models).to_contain_text(f"run:{app['done']}/teacher")
    expect(page.locator("#disagreement-summary")).to_contain_text("examples (models disagree)")
    assert_columns_on_screen(page, "disagreements", [
        "A says", "B says", "true", "A conf", "B conf", "A ✓", "B ✓",
        "text (click to compare)", "#"])

    page.locator('#disagreements [data-testid="cell-0-7"]').click()  # row 0, its text
    texts = page.locator("#compare-texts textarea")
    expect(texts).to_have_value(re.compile(r"^Story \d+: .* news follows\.$"))  # in full
    expect(page.locator("#compare-result")).to_contain_text("teacher")
    assert_columns_on_screen(page, "compare-result", ["#", "text", "agree", "teacher",
                                                      "student"])
    screenshot(page, "compare.png", tmp_path)


def test_tradeoff_tables_show_role_metric_accuracy_frontier_and_run(
        app: dict, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    page = app["page"]
    open_tab(page, "Trade-offs")
    expect(page.locator("#plot-latency .vega-embed")).to_be_visible()
    expect(page.locator("#table-latency")).to_contain_text("student_int8")
    for key, metric in (("latency", "p50 ms"), ("size_mb", "MB"), ("params", "params M"),
                        ("throughput", "texts/s")):
        assert_columns_on_screen(page, f"table-{key}",
                                 ["role", metric, "accuracy", "frontier", "run"])
    screenshot(page, "tradeoffs.png", tmp_path)


def test_int8_student_is_browsable_but_not_offered_for_side_by_side_compare(
        app: dict) -> None:
    from playwright.sync_api import expect

    page = app["page"]
    open_tab(page, "Compare")
    int8 = f"run:{app['done']}/student_int8"
    page.locator("#compare-models input").click()
    options = page.get_by_role("option")
    expect(options.first).to_be_visible()
    assert int8 not in options.all_inner_texts()  # no config.json: Predictor cannot load it
    page.keyboard.press("Escape")
    model_b = page.locator("#model-b input")
    model_b.click()
    expect(page.get_by_role("option", name=int8, exact=True)).to_be_visible()
    page.get_by_role("option", name=int8, exact=True).click()
    page.locator("#find-examples").click()
    expect(page.locator("#disagreement-summary")).to_contain_text("examples")
    page.locator('#disagreements [data-testid="cell-0-0"]').click()
    result = page.locator("#compare-result")
    expect(result).to_contain_text("teacher")  # model A alone: B's prediction is in the row
    expect(page.locator("#compare-summary")).to_contain_text("One model on 1 text.")
