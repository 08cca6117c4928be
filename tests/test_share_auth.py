"""Share links and login: a share link that cannot be made is one line and the app keeps
serving locally, within a time bound; ``--auth`` refuses strangers and lets the user in."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.settings import ServeSettings, parse_auth, resolve_settings
from app.share import SHARE_HINT, serve, share_server_problem
from tests.conftest import free_port

gradio_client = pytest.importorskip("gradio_client")

REPO = Path(__file__).resolve().parents[1]
SHARE_LINE = "Public share link not created:"
# The app's start (imports, build, launch) plus the share probe; a hang would blow it.
SHARE_DEADLINE_S = 60


def test_share_and_auth_come_from_flags_or_the_environment() -> None:
    from app.main import parse_args

    args = parse_args(["--share", "--auth", "alice:pa:ss", "--host", "127.0.0.1", "--port",
                       "7001", "--runs-dir", "/tmp/r"])
    settings = resolve_settings({}, host=args.host, port=args.port, share=args.share,
                                auth=args.auth, runs_dir=args.runs_dir)
    assert (settings.share, settings.auth, settings.port) == (True, ("alice", "pa:ss"), 7001)
    assert settings.runs_dir == Path("/tmp/r")
    from_env = resolve_settings({"DISTILLAB_SHARE": "1", "DISTILLAB_AUTH": "bob:secret"})
    assert (from_env.share, from_env.auth) == (True, ("bob", "secret"))
    assert not resolve_settings({"DISTILLAB_SHARE": "0"}).share
    assert resolve_settings({"DISTILLAB_AUTH": "bob:env"}, auth="alice:flag").auth == (
        "alice", "flag")


@pytest.mark.parametrize("text", ["alice", ":secret", "alice:"])
def test_malformed_auth_is_refused_with_the_expected_form(text: str) -> None:
    with pytest.raises(ValueError, match="give user:password"):
        parse_auth(text)
    assert parse_auth("  ") is None


def test_help_and_bad_arguments_answer_before_gradio_and_torch_load() -> None:
    code = ("import runpy, sys\nsys.argv = ['app', {arg!r}]\ntry:\n"
            "    runpy.run_module('app', run_name='__main__', alter_sys=True)\n"
            "except SystemExit as done:\n    print('exit', done.code)\n"
            "print('gradio' in sys.modules, 'torch' in sys.modules)")
    for arg, code_expected in (("--help", 0), ("--port=x", 2)):
        done = subprocess.run([sys.executable, "-c", code.format(arg=arg)], cwd=REPO,
                              capture_output=True, text=True, timeout=60)
        assert done.stdout.splitlines()[-2:] == [f"exit {code_expected}", "False False"], (
            done.stdout, done.stderr)


class RecordedLaunch:
    """A stand-in for ``gr.Blocks``: records ``launch()``'s arguments and serves nothing."""

    local_url = "http://127.0.0.1:7860/"

    def __init__(self, share_url: str | None = None) -> None:
        self.share_url = share_url
        self.options: dict[str, object] = {}

    def launch(self, **options: object) -> None:
        self.options = options


@pytest.mark.parametrize(("space_id", "quiet"), [(None, False), ("me/space", False),
                                                 (None, True)])
def test_without_a_share_link_the_hint_names_the_apps_switch_not_gradios(
        space_id: str | None, quiet: bool, capsys: pytest.CaptureFixture[str]) -> None:
    demo = RecordedLaunch()
    serve(demo, ServeSettings(space_id=space_id), block=False, quiet=quiet)
    # Gradio's own lines would say "set `share=True` in `launch()`".
    assert demo.options["quiet"] is True and demo.options["share"] is False
    out = capsys.readouterr().out
    assert "share=True" not in out
    assert ("--share" in out and SHARE_HINT in out) == (space_id is None and not quiet)
    assert (demo.local_url in out) == (not quiet)


def test_a_share_link_leaves_gradio_its_own_lines(capsys: pytest.CaptureFixture[str]) -> None:
    demo = RecordedLaunch(share_url="https://abc.gradio.live")
    with socket.socket() as listener:  # a share server that answers the probe
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        env = {"GRADIO_SHARE_SERVER_ADDRESS": f"127.0.0.1:{listener.getsockname()[1]}"}
        serve(demo, ServeSettings(share=True, auth=("a", "b")), block=False, env=env)
    assert demo.options["quiet"] is False and demo.options["share"] is True
    assert SHARE_HINT not in capsys.readouterr().out


def test_share_probe_names_an_unreachable_share_server_and_passes_a_listening_one() -> None:
    port = free_port()  # nothing listens there
    problem = share_server_problem({"GRADIO_SHARE_SERVER_ADDRESS": f"127.0.0.1:{port}"},
                                   timeout_s=3)
    assert problem and f"cannot reach 127.0.0.1:{port}" in problem
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        address = f"127.0.0.1:{listener.getsockname()[1]}"
        assert share_server_problem({"GRADIO_SHARE_SERVER_ADDRESS": address}) is None


@pytest.mark.slow  # starts the app in a process of its own
def test_share_that_cannot_work_is_one_line_and_the_app_serves_locally(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    # The share server is a closed local port: as offline as this machine, on any machine.
    env.update(GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1",
               GRADIO_SHARE_SERVER_ADDRESS=f"127.0.0.1:{free_port()}")
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "--share", "--host", "127.0.0.1", "--port", str(port),
         "--runs-dir", str(tmp_path / "runs")], cwd=REPO, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        while time.monotonic() - started < SHARE_DEADLINE_S:
            line = process.stdout.readline()
            if not line:
                break  # the app exited
            lines.append(line)
            if SHARE_LINE in line:
                break
        output = "".join(lines)
        notice = [line for line in lines if SHARE_LINE in line]
        assert len(notice) == 1, f"no share notice within {SHARE_DEADLINE_S} s:\n{output}"
        assert "cannot reach" in notice[0]
        assert f"Serving locally only at http://127.0.0.1:{port}" in notice[0]
        assert "Traceback" not in output
        assert process.poll() is None  # still serving
        answer = httpx.get(f"http://127.0.0.1:{port}/", timeout=10)
        assert answer.status_code == 200
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        process.stdout.close()


@pytest.fixture(scope="module")
def protected(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app behind a login, served the way ``python -m app --auth`` serves it."""
    from app.main import build_app, launch_options
    from app.share import serve

    demo = build_app(tmp_path_factory.mktemp("auth") / "runs")
    settings = ServeSettings(host="127.0.0.1", port=free_port(), auth=("alice", "s3cret"))
    serve(demo, settings, block=False, quiet=True, **launch_options())
    try:
        yield demo.local_url
    finally:
        demo.close()


def test_auth_refuses_api_calls_without_a_login(protected: str) -> None:
    config = httpx.get(f"{protected}config", timeout=10)
    assert config.status_code == 401
    call = httpx.post(f"{protected}gradio_api/call/runs", json={"data": [True]}, timeout=10)
    assert call.status_code == 401
    with pytest.raises(Exception, match="(?i)login|auth|401"):
        gradio_client.Client(protected, verbose=False)
    with pytest.raises(ValueError, match="(?i)could not login"):
        gradio_client.Client(protected, auth=("alice", "wrong"), verbose=False)


def test_auth_lets_the_user_in_through_gradio_client(protected: str) -> None:
    client = gradio_client.Client(protected, auth=("alice", "s3cret"), verbose=False)
    try:
        assert client.predict(api_name="/runs") == []
    finally:
        client.close()
