"""Running as a Hugging Face Space: settings from the environment, the README's front matter,
the entry file, ZeroGPU (the spaces.GPU decorator, training refused), and export from the app."""

from __future__ import annotations

import importlib
import json
import re
import shutil
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from app.settings import (
    RUNS_FOLDER_NAME,
    ZERO_GPU_MESSAGE,
    TrainingRefused,
    check_training_allowed,
    resolve_runs_dir,
    resolve_settings,
)
from tests.conftest import app_client, write_sentiment_csvs
from tests.test_app_api import tiny_spec

gradio_client = pytest.importorskip("gradio_client")
AppError = gradio_client.exceptions.AppError

REPO = Path(__file__).resolve().parents[1]
SPACE_ENV = {"SYSTEM": "spaces", "SPACE_ID": "someone/distillab", "HOME": "/home/user"}
SPACE_COLORS = {"red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray"}


# --- settings -----------------------------------------------------------------------


def test_on_a_space_the_app_listens_on_all_interfaces_port_7860(tmp_path: Path) -> None:
    settings = resolve_settings(SPACE_ENV, data_dir=tmp_path / "absent")
    assert (settings.host, settings.port, settings.space_id) == ("0.0.0.0", 7860,
                                                                 "someone/distillab")
    assert not settings.share and settings.auth is None and not settings.zero_gpu


def test_off_a_space_gradio_picks_the_address_and_runs_stay_in_dot_runs() -> None:
    settings = resolve_settings({})
    assert (settings.host, settings.port, settings.runs_dir, settings.space_id) == (
        None, None, None, None)
    env = {"GRADIO_SERVER_NAME": "0.0.0.0", "GRADIO_SERVER_PORT": "8000"}
    assert (resolve_settings(env).host, resolve_settings(env).port) == ("0.0.0.0", 8000)
    assert resolve_settings(env, host="127.0.0.1", port=9000).port == 9000


def test_runs_go_to_persistent_storage_when_data_is_writable(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    assert resolve_runs_dir(SPACE_ENV, data_dir=data) == data / RUNS_FOLDER_NAME


def test_without_persistent_storage_runs_go_to_the_home_folder(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert resolve_runs_dir(SPACE_ENV, data_dir=tmp_path / "absent", home=home) == (
        home / RUNS_FOLDER_NAME)
    (tmp_path / "not-a-folder").write_text("x")
    assert resolve_runs_dir(SPACE_ENV, data_dir=tmp_path / "not-a-folder") == Path(
        "/home/user") / RUNS_FOLDER_NAME


def test_runs_dir_variable_and_flag_override_the_space_default(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    env = {**SPACE_ENV, "DISTILLAB_RUNS_DIR": str(tmp_path / "mine")}
    assert resolve_runs_dir(env, data_dir=data) == tmp_path / "mine"
    assert resolve_runs_dir(env, tmp_path / "flag", data_dir=data) == tmp_path / "flag"


def test_zero_gpu_is_read_from_spaces_zero_gpu() -> None:
    assert resolve_settings({**SPACE_ENV, "SPACES_ZERO_GPU": "true"}).zero_gpu
    assert not resolve_settings({**SPACE_ENV, "SPACES_ZERO_GPU": "false"}).zero_gpu
    check_training_allowed(SPACE_ENV)  # other hardware trains
    with pytest.raises(TrainingRefused, match="Nvidia T4, L4 or A10G"):
        check_training_allowed({"SPACES_ZERO_GPU": "true"})


# --- the Space's configuration ----------------------------------------------------------


def front_matter() -> dict:
    text = (REPO / "README.md").read_text()
    assert text.startswith("---\n"), "README.md must open with the Space's YAML front matter"
    return yaml.safe_load(text.split("---\n", 2)[1])


def test_front_matter_declares_a_gradio_space_at_the_pinned_version() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pin = next(d for d in project["dependencies"] if d.startswith("gradio"))
    meta = front_matter()
    assert meta["sdk"] == "gradio"
    assert pin == f"gradio=={meta['sdk_version']}"
    assert f"gradio=={meta['sdk_version']}" in (REPO / "requirements.txt").read_text().split()
    assert isinstance(meta["python_version"], str)  # YAML would read 3.10 as 3.1
    low = tuple(int(v) for v in re.findall(r"\d+", project["requires-python"])[:2])
    assert tuple(int(v) for v in meta["python_version"].split(".")[:2]) >= low
    assert meta["license"] == project["license"].lower()
    assert {meta["colorFrom"], meta["colorTo"]} <= SPACE_COLORS
    assert meta["suggested_hardware"] and meta["title"] and meta["emoji"]
    assert len(meta["short_description"]) <= 60


def test_app_file_exists_and_serves_the_app() -> None:
    app_file = REPO / front_matter()["app_file"]
    assert app_file.parent == REPO and app_file.is_file()
    module = importlib.import_module(app_file.stem)  # importing must not serve
    from app.main import main

    assert module.main is main
    done = subprocess.run([sys.executable, app_file.name, "--help"], cwd=REPO, timeout=60,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "--share" in done.stdout and "--auth" in done.stdout


# --- ZeroGPU: spaces.GPU ----------------------------------------------------------------


def test_gpu_task_leaves_functions_alone_without_spaces(monkeypatch) -> None:
    from app import gpu

    monkeypatch.setitem(sys.modules, "spaces", None)  # makes `import spaces` fail

    def work() -> int:
        return 1

    assert gpu.gpu_task(30)(work) is work


def fake_spaces(calls: list[tuple[str, int]]) -> types.ModuleType:
    """A stand-in for the ``spaces`` package: its ``GPU(duration=...)`` records the wrap."""
    module = types.ModuleType("spaces")

    def GPU(task=None, *, duration=60):  # noqa: N802 (the package's name)
        def wrap(fn):
            calls.append((fn.__name__, duration))

            def on_gpu(*args, **kwargs):
                return ("on gpu", fn(*args, **kwargs))

            return on_gpu

        return wrap(task) if task is not None else wrap

    module.GPU = GPU
    return module


def test_gpu_task_wraps_with_spaces_gpu_when_present(monkeypatch) -> None:
    from app import gpu

    calls: list[tuple[str, int]] = []
    monkeypatch.setitem(sys.modules, "spaces", fake_spaces(calls))
    assert gpu.gpu_task(42)(lambda: 7)() == ("on gpu", 7)
    try:
        importlib.reload(gpu)  # the module's own GPU work is decorated at import
        assert ("compare_models", gpu.COMPARE_GPU_S) in calls
        assert ("evaluate_models", gpu.EVALUATE_GPU_S) in calls
    finally:
        monkeypatch.delitem(sys.modules, "spaces")
        importlib.reload(gpu)
    assert gpu.gpu_task(1)(len) is len  # back to the plain functions


# --- the served app: ZeroGPU and export ----------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, Path]]:
    runs_dir = tmp_path_factory.mktemp("space") / "runs"
    with app_client(runs_dir, with_queue=False) as client:
        yield client, runs_dir


def test_zero_gpu_refuses_training_but_compares_and_evaluates(
        served: tuple[object, Path], monkeypatch, tmp_path: Path, tiny_bert_dir: str) -> None:
    client, runs_dir = served
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    train, dev = write_sentiment_csvs(tmp_path, train=20, dev=30)
    before = set(runs_dir.iterdir())
    with pytest.raises(AppError) as refused:
        client.predict(json.dumps(tiny_spec(tiny_bert_dir, train, dev)), api_name="/launch")
    assert ZERO_GPU_MESSAGE in str(refused.value)
    assert set(runs_dir.iterdir()) == before  # no run folder was made

    rows = client.predict(["the film was wonderful"], [tiny_bert_dir], api_name="/compare")
    assert len(rows) == 1 and set(rows[0]["probabilities"]) == {"negative", "positive"}
    scored = client.predict([tiny_bert_dir], train, dev, api_name="/evaluate")
    assert "30" in scored["dataset"]
    assert scored["models"][0]["model"] == tiny_bert_dir
    assert 0 <= scored["models"][0]["accuracy"] <= 1


def test_resume_is_refused_on_zero_gpu(served: tuple[object, Path], monkeypatch,
                                       tiny_bert_dir: str) -> None:
    from core.runs import create_run

    client, runs_dir = served
    run = create_run(tiny_spec(tiny_bert_dir, "/no/train.csv", "/no/dev.csv"), runs_dir)
    run.set_status("cancelled")
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    with pytest.raises(AppError, match="dedicated GPU"):
        client.predict(run.id, api_name="/resume")
    assert run.status()["state"] == "cancelled"


@pytest.fixture()
def saved_run(served: tuple[object, Path], tiny_bert_dir: str) -> Iterator[str]:
    """A run holding a saved student (the tiny classifier), as a finished job leaves it."""
    from core.runs import create_run

    _, runs_dir = served
    run = create_run(tiny_spec(tiny_bert_dir, "train.csv", "dev.csv"), runs_dir)
    shutil.copytree(tiny_bert_dir, run.model_dir("student"))
    run.set_status("done")
    yield run.id
    shutil.rmtree(run.path)


@pytest.mark.parametrize(("token_env", "args", "message"), [
    (None, ("student", "someone/tiny", ""), "no Hugging Face token: set HF_TOKEN"),
    (None, ("student", "someone/tiny", "hf_typed"), "offline mode is on (HF_HUB_OFFLINE=1)"),
    ("hf_secret", ("student", "someone/tiny", ""), "offline mode is on (HF_HUB_OFFLINE=1)"),
    ("hf_secret", ("student", "not a repo!", ""), "is not a Hub repository id"),
    ("hf_secret", ("baseline", "someone/tiny", ""), "has no saved 'baseline' model"),
    ("hf_secret", ("student", "", ""), "give the Hub repository id"),
])
def test_export_fails_with_a_clear_message_offline_or_without_token(
        served: tuple[object, Path], saved_run: str, monkeypatch, tmp_path: Path,
        token_env: str | None, args: tuple, message: str) -> None:
    import huggingface_hub.constants as hub_constants

    client, _ = served
    # No token from the environment or a saved login, unless the case sets HF_TOKEN.
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.setattr(hub_constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    if token_env:
        monkeypatch.setenv("HF_TOKEN", token_env)
    else:
        monkeypatch.delenv("HF_TOKEN", raising=False)
    with pytest.raises(AppError) as error:
        client.predict(saved_run, *args, api_name="/export")
    assert message in str(error.value)
    assert "Traceback" not in str(error.value) and "hf_typed" not in str(error.value)
