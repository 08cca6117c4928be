"""Public mode through the HTTP API, as two hostile visitors (two gradio_client Clients).

The server has a finished run of its owner (private), one the owner shared as an example, and
a fake Hub token in its environment. No job trains here: the app serves without a job queue,
so launched runs stay queued, and every check is made before anything is queued.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import serve_app

gradio_client = pytest.importorskip("gradio_client")
AppError = gradio_client.exceptions.AppError

NOT_ALLOWED = "not allowed on this public server"


def fake_finished_run(runs_dir: Path, model_dir: str, name: str, shared: bool = False) -> str:
    """A done run of the server's owner with a teacher, a student and their predictions."""
    from core.access import set_shared
    from core.runs import create_run
    from core.scores import predictions_table

    run = create_run({"name": name, "teacher": model_dir,
                      "dataset": {"name": "/srv/secret/private.csv"}}, runs_dir)
    for role in ("teacher", "student"):
        shutil.copytree(model_dir, run.model_dir(role))
    texts = [f"private example {i}" for i in range(6)]
    rng = np.random.default_rng(0)
    probabilities = {role: rng.dirichlet([1, 1], size=6) for role in ("teacher", "student")}
    run.write_predictions(predictions_table(texts, [0, 1] * 3, probabilities,
                                            ["negative", "positive"]))
    run.write_metrics({"models": {"teacher": {"accuracy": 0.5}, "student": {"accuracy": 0.5}},
                       "label_names": ["negative", "positive"]})
    run.set_status("done", stage="done")
    if shared:
        set_shared(run, True)
    return run.id


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, tiny_bert_dir: str
           ) -> Iterator[dict]:
    """A public app without a job queue, its runs folder and its owner's two runs."""
    from core.limits import Limits

    runs_dir = tmp_path_factory.mktemp("public") / "runs"
    runs_dir.mkdir()
    private_run = fake_finished_run(runs_dir, tiny_bert_dir, "private")
    shared_run = fake_finished_run(runs_dir, tiny_bert_dir, "example", shared=True)
    (runs_dir.parent / "spec.json").write_text("{}")  # a parent that looks like a run
    (runs_dir.parent / "keep.txt").write_text("must survive")
    limits = Limits.for_mode(public=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_TOKEN", "hf_server_owner_secret")
        with serve_app(runs_dir, with_queue=False, public=True, limits=limits) as url:
            yield {"url": url, "runs_dir": runs_dir, "private": private_run,
                   "shared": shared_run, "model": tiny_bert_dir}


@pytest.fixture(scope="module")
def visitors(server: dict) -> Iterator[tuple[object, object]]:
    alice = gradio_client.Client(server["url"], verbose=False)
    bob = gradio_client.Client(server["url"], verbose=False)
    yield alice, bob
    alice.close()
    bob.close()


def error_of(client: object, *args: object, api_name: str) -> str:
    with pytest.raises(AppError) as caught:
        client.predict(*args, api_name=api_name)
    return str(caught.value)


def spec(**changes: object) -> str:
    """The bundled default job with some fields changed, as the API's JSON."""
    return json.dumps(changes)


# --- ownership ------------------------------------------------------------------------------
def test_visitors_see_and_manage_only_their_own_runs(server: dict, visitors: tuple) -> None:
    alice, bob = visitors
    run_id = alice.predict(spec(name="alice"), api_name="/launch")
    runs_of_alice = {r["run_id"]: r for r in alice.predict(False, api_name="/runs")}
    runs_of_bob = {r["run_id"] for r in bob.predict(False, api_name="/runs")}
    assert runs_of_alice[run_id]["mine"] is True
    assert runs_of_alice[server["shared"]]["mine"] is False
    assert run_id not in runs_of_bob and server["private"] not in runs_of_bob
    assert server["shared"] in runs_of_bob
    for endpoint in ("/status", "/cancel", "/resume", "/delete"):
        assert "no run" in error_of(bob, run_id, api_name=endpoint)
    assert "no run" in error_of(bob, run_id, "student", "bob/x", "hf_x", api_name="/export")
    assert alice.predict(run_id, api_name="/status")["state"] == "queued"
    assert alice.predict(run_id, api_name="/cancel")["state"] == "cancelled"
    assert alice.predict(run_id, api_name="/resume")["state"] == "queued"
    assert alice.predict(run_id, api_name="/cancel")["state"] == "cancelled"
    assert alice.predict(run_id, api_name="/delete")["deleted"] is True


def test_the_owners_private_run_is_invisible_and_a_shared_one_read_only(
        server: dict, visitors: tuple) -> None:
    _, bob = visitors
    private, shared = server["private"], server["shared"]
    message = error_of(bob, private, api_name="/status")
    assert message.endswith(f"no run {private!r} of yours (see the runs list)")
    unknown = error_of(bob, "20990101-000000-zz00", api_name="/status")
    assert unknown.replace("20990101-000000-zz00", private) == message  # same words
    assert "no run" in error_of(bob, f"run:{private}/teacher", f"run:{private}/student",
                                "all", api_name="/disagreements")
    assert "no run" in error_of(bob, ["hello"], [f"run:{private}/student"],
                                api_name="/compare")
    models = {p["model"] for p in bob.predict(api_name="/tradeoffs")}
    assert f"run:{shared}/student" in models and not any(private in m for m in models)
    board = {r["run_id"] for r in bob.predict(api_name="/runs")}
    assert board == {shared}
    rows = bob.predict(f"run:{shared}/teacher", f"run:{shared}/student", "all",
                       api_name="/disagreements")
    assert len(rows) == 6
    assert bob.predict(shared, api_name="/status")["state"] == "done"
    for endpoint in ("/cancel", "/resume", "/delete"):
        assert "shared example" in error_of(bob, shared, api_name=endpoint)
    assert (server["runs_dir"] / shared / "spec.json").exists()


def test_status_and_runs_show_no_server_paths(server: dict, visitors: tuple) -> None:
    _, bob = visitors
    status = bob.predict(server["shared"], api_name="/status")
    assert "pid" not in status
    rows = bob.predict(False, api_name="/runs")
    shown = json.dumps(rows) + json.dumps(status)
    assert "/srv/secret" not in shown and server["model"] not in shown
    assert str(server["runs_dir"]) not in shown


# --- server files ---------------------------------------------------------------------------
@pytest.mark.parametrize(("field", "value"), [
    ("dataset", "/etc/passwd"),
    ("dataset", "/etc/no-such-file.csv"),
    ("dataset", "../keep.txt"),
    ("dataset", "~/.bashrc"),
    ("dataset", "runs/../../etc/hosts.csv"),
    ("dataset", "/"),
    ("validation", "/etc/hosts"),
    ("transfer", "/etc/passwd"),
    ("teacher", "/tmp"),
    ("teacher", "../"),
    ("teacher", "~"),
    ("checkpoint", "/usr/lib"),
])
def test_server_paths_are_refused_before_anything_is_opened(visitors: tuple, field: str,
                                                            value: str) -> None:
    alice, _ = visitors
    job: dict = {"dataset": {"name": "bbc_news"}}
    if field == "dataset":
        job["dataset"]["name"] = value
    elif field in ("validation", "transfer"):
        job["dataset"] = {"name": "user/some-dataset", field: value}
    elif field == "teacher":
        job["teacher"] = value
    else:
        job["student"] = {"kind": "pretrained", "checkpoint": value}
    message = error_of(alice, json.dumps(job), api_name="/launch")
    assert NOT_ALLOWED in message
    assert "not found" not in message and "exist" not in message


def test_a_path_and_a_missing_path_get_the_same_answer(visitors: tuple) -> None:
    alice, _ = visitors
    answers = {error_of(alice, spec(dataset=path), api_name="/launch")
               for path in ("/etc/hosts", "/no/such/folder/hosts")}
    assert len(answers) == 1


def test_run_refs_with_paths_are_refused(server: dict, visitors: tuple) -> None:
    alice, _ = visitors
    for ref in ("run:../../etc/student", "run:_uploads/student", f"run:{server['private']}/x"):
        message = error_of(alice, spec(teacher=ref), api_name="/launch")
        assert "run" in message and "Traceback" not in message
    message = error_of(alice, ["hi"], ["/etc"], api_name="/compare")
    assert NOT_ALLOWED in message
    message = error_of(alice, ["bundled:minilm"], "/etc/passwd", api_name="/evaluate")
    assert NOT_ALLOWED in message


def test_delete_cannot_leave_the_runs_folder(server: dict, visitors: tuple) -> None:
    alice, _ = visitors
    for run_id in ("..", ".", "../runs", "/", "_uploads", "_cache", ""):
        assert "run" in error_of(alice, run_id, api_name="/delete")
    assert (server["runs_dir"].parent / "keep.txt").read_text() == "must survive"


def test_another_visitors_upload_is_refused(server: dict, visitors: tuple,
                                            tmp_path: Path) -> None:
    from core.uploads import store_upload
    from tests.conftest import write_sentiment_csvs

    alice, _ = visitors
    train, _ = write_sentiment_csvs(tmp_path)
    theirs = store_upload(train, server["runs_dir"], "v0123456789abcdef0123")
    message = error_of(alice, spec(dataset=theirs), api_name="/launch")
    assert "not one of your uploads" in message


# --- the owner's token ----------------------------------------------------------------------
def test_export_never_uses_the_servers_token(server: dict, visitors: tuple,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import core.export

    pushed: list = []
    monkeypatch.setattr(core.export, "push_to_hub", lambda *a, **k: pushed.append(k) or "url")
    alice, _ = visitors
    run_id = alice.predict(spec(name="export-me"), api_name="/launch")
    message = error_of(alice, run_id, "student", "alice/model", "", api_name="/export")
    assert "write token" in message and not pushed
    alice.predict(run_id, "student", "alice/model", "hf_alice_own", api_name="/export")
    assert pushed[-1]["token"] == "hf_alice_own" and pushed[-1]["use_saved_token"] is False
    monkeypatch.setenv("DISTILLAB_ALLOW_PUSH", "0")
    assert "turned off" in error_of(alice, run_id, "student", "alice/model", "hf_alice_own",
                                    api_name="/export")
    alice.predict(run_id, api_name="/cancel")
    alice.predict(run_id, api_name="/delete")


# --- limits ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("job", "message"), [
    ({"train": {"epochs": 10000}}, "train.student.epochs is 10,000, over this server's limit"),
    ({"train": {"batch_size": 10**6}}, "train.batch_size"),
    ({"train": {"max_length": 100000}}, "train.max_length"),
    ({"student": {"kind": "fresh", "num_layers": 1000}}, "student.num_layers"),
    ({"recipe": {"temperature": float("nan")}}, "finite"),
    ({"recipe": {"temperature": 1e9}}, "recipe.temperature"),
    ({"seed": 2**70}, "seed must be in 0.."),
    ({"seed": -1}, "seed must be in 0.."),
    ({"dataset": {"max_train_examples": 10**9}}, "dataset.max_train_examples"),
    ({"train": {"epochs": "two"}}, "train.epochs must be an integer"),
    ({"seed": "abc"}, "seed must be an integer"),
    ({"student": {"layers": "0,2,9"}}, "there is no layer 9"),
    ({"student": {"layers": [2, 0]}}, "strictly increasing"),
    ({"train": {"learning_rate": [1]}}, "train.learning_rate must be a number"),
    ({"train": {"epochs": None}}, "train.epochs must be an integer"),
    ({"teacher": "someone/model-not-cached"}, "cannot be reached"),
    ({"device": "cuda:0; rm -rf /"}, "device must be"),
])
def test_out_of_limit_and_malformed_jobs_are_refused_at_launch(visitors: tuple, job: dict,
                                                               message: str) -> None:
    alice, _ = visitors
    answer = error_of(alice, json.dumps(job), api_name="/launch")
    assert message in answer, answer
    assert "Traceback" not in answer


def test_a_huge_spec_is_refused(visitors: tuple) -> None:
    alice, _ = visitors
    assert "too long" in error_of(alice, json.dumps({"name": "x" * 200_000}),
                                  api_name="/launch")


def test_compare_limits_texts_length_and_models(server: dict, visitors: tuple) -> None:
    alice, _ = visitors
    shared = f"run:{server['shared']}/student"
    assert "characters" in error_of(alice, ["x" * 10_000_000], [shared], api_name="/compare")
    assert "number of texts" in error_of(alice, ["t"] * 33, [shared], api_name="/compare")
    assert "max_length" in error_of(alice, ["t"], [shared], 100000, api_name="/compare")
    assert "number of models" in error_of(alice, ["t"], [shared] * 5, api_name="/compare")
    rows = alice.predict(["a fine film"], [shared], api_name="/compare")
    assert len(rows) == 1 and rows[0]["model"] == shared


def test_queue_caps_and_a_double_click(server: dict, visitors: tuple) -> None:
    alice, _ = visitors
    first = alice.predict(spec(name="one"), api_name="/launch")
    assert alice.predict(spec(name="one"), api_name="/launch") == first  # a double click
    second = alice.predict(spec(name="two"), api_name="/launch")
    message = error_of(alice, spec(name="three"), api_name="/launch")
    assert "you already have 2 jobs queued or running" in message
    alice.predict(first, api_name="/cancel")
    third = alice.predict(spec(name="three"), api_name="/launch")
    assert "you already have 2" in error_of(alice, first, api_name="/resume")
    for run_id in (first, second, third):
        if alice.predict(run_id, api_name="/status")["state"] == "queued":
            alice.predict(run_id, api_name="/cancel")
        alice.predict(run_id, api_name="/delete")


# --- Gradio's file references ---------------------------------------------------------------
@pytest.mark.parametrize("path", ["/etc/passwd", "/tmp", "/dev/zero",
                                  "http://169.254.169.254/latest/meta-data"])
def test_file_references_to_server_files_are_refused_before_gradio_reads_them(
        server: dict, path: str) -> None:
    import httpx

    shared = f"run:{server['shared']}/student"
    file_ref = {"path": path, "meta": {"_type": "gradio.FileData"}}
    for body in ({"data": [[file_ref], [shared], 128]}, {"data": [file_ref]}):
        answer = httpx.post(f"{server['url'].rstrip('/')}/gradio_api/call/compare",
                            json=body, timeout=10)
        assert answer.status_code == 403, answer.text
        # No content type at all: FastAPI would still read the body as JSON.
        answer = httpx.post(f"{server['url'].rstrip('/')}/gradio_api/call/status",
                            content=json.dumps(body).encode(), timeout=10)
        assert answer.status_code == 403, answer.text


def test_a_real_upload_still_passes_the_file_guard(server: dict, tmp_path: Path) -> None:
    from gradio_client import handle_file

    from app.guard import foreign_file_refs, upload_folder

    (tmp_path / "notes.txt").write_text("hello")
    client = gradio_client.Client(server["url"], verbose=False)
    # Uploaded first (into Gradio's upload folder), then referred to: the guard lets it
    # through and the endpoint refuses it for its own reasons (a run id must be a string).
    message = error_of(client, handle_file(str(tmp_path / "notes.txt")), api_name="/status")
    assert "403" not in message
    inside = {"path": str(upload_folder() / "abc" / "x.csv"), "meta": {"_type": "gradio.FileData"}}
    assert foreign_file_refs({"data": [inside]}, upload_folder()) == []
    client.close()
