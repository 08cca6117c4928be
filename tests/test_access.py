"""Callers, ownership, limits and the action façade, without a server (core.access,
core.limits, core.actions) — and the CLI twins of the app's actions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.access import Caller, check_data_ref, check_model_ref, scrub_paths
from core.actions import Actions
from core.limits import LimitError, Limits
from core.runs import create_run
from core.specs import JobSpec


def test_a_visitor_is_known_by_a_hash_of_their_secret() -> None:
    alice, again, bob = (Caller.visitor("secret-a"), Caller.visitor("secret-a"),
                         Caller.visitor("secret-b"))
    assert alice == again and alice != bob
    assert not alice.admin and alice.public and "secret" not in alice.id
    with pytest.raises(ValueError, match="no visitor identity"):
        Caller.visitor("")


def test_local_callers_keep_todays_paths(tmp_path: Path) -> None:
    owner = Caller()
    assert check_model_ref(str(tmp_path), owner, tmp_path) == str(tmp_path)
    assert check_data_ref("/some/file.csv", owner, tmp_path) == "/some/file.csv"
    visitor = Caller.visitor("x")
    assert check_model_ref("bert-base-uncased", visitor, tmp_path) == "bert-base-uncased"
    assert check_data_ref("glue", visitor, tmp_path) == "glue"
    for ref in (str(tmp_path), "./x", "a/../b", "~root", "a/b/c"):
        with pytest.raises(ValueError, match="not allowed"):
            check_model_ref(ref, visitor, tmp_path)


def test_a_hub_shaped_name_that_is_a_local_folder_is_refused(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "org" / "model").mkdir(parents=True)
    with pytest.raises(ValueError, match="not allowed"):
        check_model_ref("org/model", Caller.visitor("x"), tmp_path)


def test_scrub_paths_keeps_only_the_last_part() -> None:
    message = "/srv/runs/_uploads/v1/abc-train.csv: row 3: no label; see ~/notes.txt"
    assert scrub_paths(message) == ".../abc-train.csv: row 3: no label; see .../notes.txt"
    assert scrub_paths("run:abc/student and bbc_news") == "run:abc/student and bbc_news"


def test_limits_come_from_the_mode_and_the_environment() -> None:
    assert Limits.for_mode(False, {}).max_epochs == 100
    assert Limits.for_mode(True, {}).max_epochs == 10
    changed = Limits.for_mode(True, {"DISTILLAB_LIMIT_MAX_EPOCHS": "40",
                                     "DISTILLAB_LIMIT_VISITOR_DISK_GB": "0.5"})
    assert (changed.max_epochs, changed.visitor_disk_gb) == (40, 0.5)
    with pytest.raises(ValueError, match="DISTILLAB_LIMIT_MAX_EPOCHS"):
        Limits.for_mode(False, {"DISTILLAB_LIMIT_MAX_EPOCHS": "many"})


def test_public_jobs_read_at_most_the_example_caps(tmp_path: Path) -> None:
    actions = Actions(tmp_path, Limits.for_mode(True, {}))
    run_id = actions.submit(JobSpec(), Caller.visitor("a"))
    saved = json.loads((tmp_path / run_id / "spec.json").read_text())["dataset"]
    assert saved["max_train_examples"] == 50_000 and saved["max_eval_examples"] == 5_000
    local = Actions(tmp_path / "local").submit(JobSpec(), Caller())
    assert json.loads((tmp_path / "local" / local / "spec.json").read_text())[
        "dataset"]["max_train_examples"] is None


def test_a_visitors_oldest_finished_runs_make_room_within_the_disk_budget(tmp_path: Path
                                                                          ) -> None:
    from core.access import set_owner

    limits = Limits(visitor_disk_gb=3 * 2**20 / 2**30, max_queued_per_visitor=10)
    actions = Actions(tmp_path, limits)
    alice, bob = Caller.visitor("a"), Caller.visitor("b")
    runs = []
    for i, (owner, state) in enumerate([(alice, "done"), (bob, "done"), (alice, "failed"),
                                        (alice, "running")]):
        run = create_run({"name": f"r{i}"}, tmp_path)
        set_owner(run, owner)
        (run.path / "weights.bin").write_bytes(b"\0" * 2**20)
        run.set_status(state)
        runs.append(run)
    actions.submit(JobSpec(), alice)  # alice holds 3 MB: her oldest finished run goes
    assert not runs[0].path.exists()
    assert runs[1].path.exists() and runs[2].path.exists() and runs[3].path.exists()


def test_a_full_disk_budget_of_unfinished_runs_refuses_a_new_job(tmp_path: Path) -> None:
    from core.access import set_owner

    actions = Actions(tmp_path, Limits(visitor_disk_gb=2**20 / 2**30,
                                       max_queued_per_visitor=10))
    alice = Caller.visitor("a")
    run = create_run({"name": "big"}, tmp_path)
    set_owner(run, alice)
    (run.path / "weights.bin").write_bytes(b"\0" * 2**20)
    with pytest.raises(LimitError, match="none of them is finished"):
        actions.submit(JobSpec(), alice)
    assert run.path.exists()


def test_the_global_queue_cap_says_the_queue_is_full(tmp_path: Path) -> None:
    actions = Actions(tmp_path, Limits(max_queued_total=1))
    actions.submit(JobSpec(name="one"), Caller())
    with pytest.raises(LimitError, match="the queue is full"):
        actions.submit(JobSpec(name="two"), Caller())


def test_only_the_owner_shares_runs(tmp_path: Path) -> None:
    actions = Actions(tmp_path)
    run_id = actions.submit(JobSpec(), Caller())
    with pytest.raises(ValueError, match="only the server's owner"):
        actions.share(run_id, True, Caller.visitor("a"))
    actions.share(run_id, True, Caller())
    assert [r.id for r in actions.visible_runs(Caller.visitor("a"))] == [run_id]


# --- the CLI's twins ------------------------------------------------------------------------
def cli(*argv: str) -> int:
    from core.cli import main

    return main(list(argv))


def test_cli_cancel_drops_a_queued_run_and_refuses_a_finished_one(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = str(tmp_path)
    queued = create_run(JobSpec().to_dict(), tmp_path)
    assert cli("--runs-dir", runs, "cancel", queued.id) == 0
    assert queued.status()["state"] == "cancelled"
    assert "cancelled" in capsys.readouterr().out
    done = create_run(JobSpec().to_dict(), tmp_path)
    done.set_status("done")
    assert cli("--runs-dir", runs, "cancel", done.id) == 1
    assert "nothing to cancel" in capsys.readouterr().err


def test_cli_delete_and_share_stay_in_the_runs_folder(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    runs_dir = tmp_path / "runs"
    run = create_run(JobSpec().to_dict(), runs_dir)
    (tmp_path / "spec.json").write_text("{}")
    assert cli("--runs-dir", str(runs_dir), "delete", "..") == 2
    assert "not a run id" in capsys.readouterr().err
    assert (tmp_path / "spec.json").exists()
    assert cli("--runs-dir", str(runs_dir), "share", run.id) == 0
    assert cli("--runs-dir", str(runs_dir), "delete", run.id) == 0
    assert not run.path.exists()


def test_cli_run_checks_limits_and_types_before_making_a_run(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    spec_file = tmp_path / "job.json"
    spec_file.write_text(json.dumps({"train": {"epochs": "two"}}))
    runs = str(tmp_path / "runs")
    assert cli("--runs-dir", runs, "run", "--spec", str(spec_file)) == 2
    assert "train.epochs must be an integer, got 'two'" in capsys.readouterr().err
    monkeypatch.setenv("DISTILLAB_LIMIT_MAX_EPOCHS", "3")
    assert cli("--runs-dir", runs, "run", "--epochs", "5") == 2
    assert "over this server's limit of 3" in capsys.readouterr().err
    assert not any((tmp_path / "runs").iterdir())


# --- when public mode is on -----------------------------------------------------------------
def test_public_mode_is_on_where_strangers_reach_the_app() -> None:
    from app.settings import resolve_settings

    space = {"SYSTEM": "spaces", "SPACE_ID": "me/distillab"}
    assert not resolve_settings({}).public  # a local app, as before
    assert resolve_settings(space).public
    assert resolve_settings({}, share=True).public
    assert not resolve_settings({}, share=True, auth="me:pw").public
    assert resolve_settings({"DISTILLAB_PUBLIC": "1"}).public
    assert resolve_settings({}, public=True).public
    assert not resolve_settings({**space, "DISTILLAB_AUTH": "me:pw"}, public=False).public
    with pytest.raises(ValueError, match="only together with|add --auth"):
        resolve_settings({**space, "DISTILLAB_PUBLIC": "0"})


def test_a_login_is_the_owner_and_a_session_a_visitor(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from app.context import AppContext

    ctx = AppContext(Actions(tmp_path), public=True, auth=True)
    assert ctx.caller(SimpleNamespace(username="me", session_hash="s1")).admin
    api = ctx.caller(SimpleNamespace(username=None, session_hash="s1"))
    assert not api.admin and api == Caller.visitor("s1")
    token = ctx.register_browser(None, SimpleNamespace(session_hash="s2"))
    assert ctx.register_browser(token, SimpleNamespace(session_hash="s3")) == token
    assert ctx.caller(SimpleNamespace(username=None, session_hash="s3")) == \
        ctx.caller(SimpleNamespace(username=None, session_hash="s2"))
    assert ctx.register_browser("../not-a-token", SimpleNamespace(session_hash="s4")) != \
        "../not-a-token"
    assert AppContext(Actions(tmp_path), public=False).caller(None) == Caller()


def test_cli_resume_follows_the_queues_rules_and_claims_the_run(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = str(tmp_path)
    queued = create_run(JobSpec().to_dict(), tmp_path)
    assert cli("--runs-dir", runs, "run", "--resume", queued.id) == 2
    assert "only interrupted, cancelled, failed runs resume" in capsys.readouterr().err
    running = create_run(JobSpec().to_dict(), tmp_path)
    running.set_status("running")  # this live process is its worker
    assert cli("--runs-dir", runs, "run", "--resume", running.id) == 2
    assert "is running" in capsys.readouterr().err
    assert not (running.path / "claimed").exists()


def test_a_queued_runs_claim_by_a_dead_server_is_released(tmp_path: Path) -> None:
    from core.jobs import JobQueue

    run = create_run(JobSpec().to_dict(), tmp_path)
    (run.path / "claimed").write_text("999999999")  # no such process
    queue = JobQueue(tmp_path, max_workers=0, clean_every_s=None)
    queue.tick()
    assert not (run.path / "claimed").exists()
    held = create_run(JobSpec().to_dict(), tmp_path)
    (held.path / "claimed").touch()  # an empty claim holds a run back (tests use this)
    queue.tick()
    assert (held.path / "claimed").exists()


def test_a_queued_run_cancelled_after_the_queue_claimed_it_never_starts(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from core.jobs import cancel

    run = create_run(JobSpec().to_dict(), tmp_path)
    (run.path / "claimed").write_text("1")  # a queue has just claimed it
    assert cancel(run.id, tmp_path) == "cancelled"
    assert run.cancel_requested()  # a worker already past its check stops at its first step
    assert cli("--runs-dir", str(tmp_path), "worker", run.id) == 0
    assert "no longer queued: not started" in capsys.readouterr().err
    assert run.status()["state"] == "cancelled" and not run.events()


def test_a_visitors_augmentation_model_is_checked_like_a_teacher(tmp_path: Path) -> None:
    from core.access import check_spec_refs

    visitor = Caller.visitor("x")
    spec = JobSpec.from_dict({"dataset": {"name": "bbc_news", "augment": 2,
                                          "augment_method": "mlm", "augment_mlm": "/etc"}})
    with pytest.raises(ValueError, match="not allowed"):
        check_spec_refs(spec, visitor, tmp_path)
    hub = JobSpec.from_dict({"dataset": {"name": "bbc_news", "augment": 2,
                                         "augment_method": "mlm",
                                         "augment_mlm": "bert-base-uncased"}})
    check_spec_refs(hub, visitor, tmp_path)  # a Hub id is fine
