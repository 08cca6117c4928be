#!/usr/bin/env bash
# Replay the Dockerfile's install steps in a fresh virtual environment (no Docker engine here),
# then check what the image's command needs: `import core, app`, `distillab --help`, and
# `python -m app` importable from the image's working directory.
#
# The replay reads the Dockerfile itself, so a step changed there is the step run here:
#   ARG          exported with its default (an environment variable of the same name wins)
#   ENV/WORKDIR  exported / entered, with container paths moved under a scratch root
#   COPY         copied from this repository (a missing or git-ignored source fails, as it
#                would in a clean clone)
#   RUN          run in the venv, except user and system-package set-up (useradd, apt-get)
# TORCH_INDEX defaults to empty here: torch then comes from this machine's pip configuration
# and the PyTorch index line of requirements.txt is dropped (that index is not reachable).
# Usage: scripts/check_docker_install.sh   (about 1-3 minutes; prints its duration)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
started=$(date +%s)
# A RAM disk when there is room: deleting a ~2 GB venv from a disk mounted with `discard`
# takes longer than installing it.
base="${TMPDIR:-/tmp}"
if [ -d /dev/shm ] && [ "$(df -Pk /dev/shm | awk 'NR==2 {print $4}')" -gt 6000000 ]; then
  base=/dev/shm
fi
scratch="$(mktemp -d -p "$base")"
trap 'rm -rf "$scratch"' EXIT
export TORCH_INDEX="${TORCH_INDEX-}" PIP_DISABLE_PIP_VERSION_CHECK=1

python3 -m venv "$scratch/venv"
export PATH="$scratch/venv/bin:$PATH"
unset PYTHONPATH PYTHONHOME

python3 - "$repo" "$scratch" > "$scratch/steps.sh" <<'PY'
import json, re, shlex, subprocess, sys
from pathlib import Path

repo, scratch = Path(sys.argv[1]), Path(sys.argv[2])
root = scratch / "image"
text = re.sub(r"\\\n", " ", (repo / "Dockerfile").read_text())
skip_run = ("useradd", "groupadd", "adduser", "apt-get", "apt ", "chown")


def local(path: str) -> str:
    # A container path under the scratch root; $VAR references are left to the shell.
    return str(root) + path if path.startswith("/") else path


out = ["set -euo pipefail", f"mkdir -p {shlex.quote(str(root))}", "cd " + shlex.quote(str(root))]
for line in text.splitlines():
    line = line.strip()
    if not line or line.startswith("#"):
        continue
    word, _, rest = line.partition(" ")
    word, rest = word.upper(), rest.strip()
    if word == "FROM":
        version = re.search(r"python:(\d+\.\d+)", rest)
        out.append(f"echo 'base image {rest}; venv python:' $(python -V)")
        if version:
            out.append(f"python -c 'import sys; v = \"%d.%d\" % sys.version_info[:2]; "
                       f"v == \"{version[1]}\" or print(\"note: image has python "
                       f"{version[1]}, this venv\", v)'")
    elif word == "ARG":
        name, _, default = rest.partition("=")
        out.append(f'export {name}="${{{name}-{default}}}"')
    elif word == "ENV":
        for pair in shlex.split(rest):
            name, _, value = pair.partition("=")
            value = ":".join(local(p) for p in value.split(":"))
            out.append(f"export {name}={shlex.quote(value)}")
    elif word == "WORKDIR":
        out.append(f"mkdir -p {shlex.quote(local(rest))} && cd {shlex.quote(local(rest))}")
    elif word == "COPY":
        args = [a for a in shlex.split(rest) if not a.startswith("--")]
        *sources, dest = args
        for source in sources:
            ignored = subprocess.run(["git", "-C", str(repo), "check-ignore", "-q", source])
            if not (repo / source).exists() or ignored.returncode == 0:
                sys.exit(f"Dockerfile copies {source!r}, which a clean clone lacks")
            out.append(f"cp -r {shlex.quote(str(repo / source))} {shlex.quote(local(dest))}")
        if any(Path(s).name == "requirements.txt" for s in sources):
            out.append('[ -n "$TORCH_INDEX" ] || sed -i "/^--.*index-url/d" requirements.txt')
    elif word == "RUN":
        if rest.startswith("["):
            rest = shlex.join(json.loads(rest))
        rest = re.sub(r"--mount=\S+\s*", "", rest)
        if rest.lstrip().startswith(skip_run):
            out.append(f"echo {shlex.quote('skipped: RUN ' + rest)}")
            continue
        out.append(f"echo {shlex.quote('+ RUN ' + rest)}")
        out.append(rest.replace("/home/", f"{root}/home/"))
    elif word == "CMD":
        cmd = json.loads(rest)
        if cmd[:2] == ["python", "-m"]:
            out.append(f"python -c 'import importlib.util, sys; "
                       f"sys.exit(importlib.util.find_spec(\"{cmd[2]}.__main__\") is None)' "
                       f"|| {{ echo 'CMD module {cmd[2]} has no __main__'; exit 1; }}")
print("\n".join(out))
PY

echo "replaying the Dockerfile (steps in $scratch/steps.sh)"
bash "$scratch/steps.sh"
# The installed package, away from the source tree (the job queue's workers run elsewhere).
(cd / && python -c "import core, app, core.cli; print('import core, app: ok')")
(cd / && distillab --help > /dev/null && echo "distillab --help: ok")
(cd / && DISTILLAB_RUNS_DIR="$scratch/runs" distillab runs)
rm -rf "$scratch"
echo "check_docker_install: ok in $(( $(date +%s) - started )) s (clean-up included)"
