"""The Dockerfile's promises, read from the file (no Docker engine here), and its health check
run for real; scripts/check_docker_install.sh replays the install steps themselves (CI)."""

from __future__ import annotations

import http.server
import json
import re
import shlex
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", (REPO / "Dockerfile").read_text())
    steps = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            steps.append((word.upper(), rest.strip()))
    return steps


def _all(word: str) -> list[str]:
    return [rest for w, rest in _instructions() if w == word]


def _env() -> dict[str, str]:
    return dict(pair.split("=", 1) for rest in _all("ENV") for pair in shlex.split(rest))


def _args() -> dict[str, str]:
    return dict(rest.split("=", 1) for rest in _all("ARG"))


def _requirements() -> list[str]:
    lines = (REPO / "requirements.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~ \[;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_base_is_slim_python():
    assert re.fullmatch(r"python:3\.1[0-9]-slim(@sha256:\w+)?", _all("FROM")[0])


def test_runs_as_a_non_root_user_with_uid_1000():
    user_added = " ".join(r for r in _all("RUN") if "useradd" in r)
    assert re.search(r"(--uid|-u) 1000 user\b", user_added)
    steps = _instructions()
    last_user = max(i for i, (w, _) in enumerate(steps) if w == "USER")
    assert steps[last_user][1] in ("user", "1000")
    assert last_user < next(i for i, (w, _) in enumerate(steps) if w == "CMD")


def test_environment_points_home_hub_cache_runs_and_server():
    env = _env()
    assert env["HOME"] == "/home/user"
    assert env["HF_HOME"].startswith(env["HOME"] + "/")
    assert env["DISTILLAB_RUNS_DIR"].startswith((env["HOME"] + "/", "/data"))
    assert env["GRADIO_SERVER_NAME"] == "0.0.0.0"
    assert env["GRADIO_SERVER_PORT"] == "7860"
    # The user creates the folders it writes to, so a named volume mounted there is its own.
    assert any("$DISTILLAB_RUNS_DIR" in r and "$HF_HOME" in r for r in _all("RUN"))


def test_torch_is_installed_first_from_a_cpu_index_a_build_argument_can_change():
    args = _args()
    assert args["TORCH_INDEX"].endswith("/whl/cpu")
    runs = _all("RUN")
    first_pip = next(r for r in runs if "pip install" in r)
    assert '"torch==${TORCH_VERSION}"' in first_pip and "$TORCH_INDEX" in first_pip
    readme_pin = re.search(r"pip install torch==([\d.]+)", (REPO / "README.md").read_text())
    assert readme_pin and args["TORCH_VERSION"] == readme_pin[1]
    assert f"torch=={args['TORCH_VERSION']}" in _requirements()
    assert f"--extra-index-url {args['TORCH_INDEX']}" in _requirements()


def test_the_project_is_installed_and_checked_at_build_time():
    runs = " && ".join(_all("RUN"))
    assert "pip install -r requirements.txt" in runs
    assert "pip install --no-deps ." in runs
    assert 'python -c "import core, app"' in runs and "distillab --help" in runs


def test_copied_paths_exist_and_are_not_docker_ignored():
    ignored = {line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert {".git", "runs", "tests"} <= ignored
    for rest in _all("COPY"):
        *sources, _ = [a for a in shlex.split(rest) if not a.startswith("--")]
        for source in sources:
            assert (REPO / source).exists(), f"COPY {source}: missing"
            assert source not in ignored, f"COPY {source}: excluded by .dockerignore"


def test_requirements_match_pyproject_and_pin_gradio():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = {_name(d): d for d in pyproject["dependencies"]}
    required = {_name(r): r for r in _requirements() if not r.startswith("-")}
    assert set(required) == set(declared)
    assert required["gradio"] == declared["gradio"] == "gradio==6.31.0"
    for name, requirement in declared.items():
        if name != "torch":
            assert required[name].replace(" ", "") == requirement.replace(" ", "")


def test_app_is_the_command_and_port_7860_is_exposed():
    assert json.loads(_all("CMD")[-1]) == ["python", "-m", "app"]
    assert (REPO / "app" / "__main__.py").exists()
    assert "7860" in _all("EXPOSE")[0].split()


def _healthcheck() -> list[str]:
    line = _all("HEALTHCHECK")[0]
    options, _, command = line.partition("CMD ")
    assert "--interval" in options and "--timeout" in options
    command = json.loads(command)
    assert command[:2] == ["python", "-c"] and "127.0.0.1" in command[2]
    assert "curl" not in line and "wget" not in line  # neither is in the slim image
    return [sys.executable, *command[1:]]


class _Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (the handler API's name)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def local_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_healthcheck_passes_while_the_app_answers(local_server):
    done = subprocess.run(_healthcheck(), env={"GRADIO_SERVER_PORT": str(local_server)},
                          capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr


def test_healthcheck_fails_when_nothing_listens():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    done = subprocess.run(_healthcheck(), env={"GRADIO_SERVER_PORT": str(port)},
                          capture_output=True, timeout=30)
    assert done.returncode != 0


def test_ci_runs_the_readmes_test_command_verbatim() -> None:
    readme = (REPO / "README.md").read_text()
    commands = re.findall(r"```bash\n(pip install -q torch[^\n]*pytest[^\n]*)\n```", readme)
    assert len(commands) == 1, "the README's set-up has one test command"
    ci_lines = (REPO / ".ci" / "run").read_text().splitlines()
    assert ci_lines[-1] == commands[0], "CI's last line must be the README's test command"
