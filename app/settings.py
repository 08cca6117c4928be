"""Where and how the app serves: Hugging Face Spaces, ZeroGPU, runs folder, share link, login.

Pure functions over an environment mapping (and, for the runs folder, a look at the disk), so
tests pass a fake environment and temporary folders instead of changing the process's.

On a Space (``SYSTEM=spaces`` with ``SPACE_ID``, the variables Spaces sets) the app listens on
``0.0.0.0:7860`` and keeps runs under ``/data/distillab-runs`` when persistent storage is
attached (``/data`` exists and is writable), else under ``~/distillab-runs``.
``DISTILLAB_RUNS_DIR`` (or ``--runs-dir``) overrides either.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

SPACE_PORT = 7860
SPACE_DATA_DIR = Path("/data")
RUNS_FOLDER_NAME = "distillab-runs"
TRUE_WORDS = ("1", "true", "yes", "on")
ZERO_GPU_MESSAGE = (
    "Training is off on ZeroGPU hardware: ZeroGPU lends a GPU for a few minutes per call, "
    "too short for a distillation job. In the Space's Settings → Hardware pick a dedicated GPU "
    "(Nvidia T4, L4 or A10G) or CPU upgrade to train here, or train elsewhere and compare and "
    "evaluate the models on this Space."
)


class TrainingRefused(ValueError):
    """A training job asked for where this hardware cannot run one; the message says why."""


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in TRUE_WORDS


def space_id(env: Mapping[str, str]) -> str | None:
    """The Space's id (``owner/name``) when running on a Hugging Face Space, else None."""
    if env.get("SYSTEM") == "spaces" or env.get("SPACE_ID"):
        return env.get("SPACE_ID") or "unknown-space"
    return None


def on_zero_gpu(env: Mapping[str, str]) -> bool:
    """True on ZeroGPU hardware (Spaces set ``SPACES_ZERO_GPU=true`` there)."""
    return _flag(env.get("SPACES_ZERO_GPU"))


def check_training_allowed(env: Mapping[str, str]) -> None:
    """Refuse a training job on ZeroGPU hardware.

    Raises:
        TrainingRefused: on ZeroGPU, with the hardware to choose instead.
    """
    if on_zero_gpu(env):
        raise TrainingRefused(ZERO_GPU_MESSAGE)


def _writable_dir(path: Path) -> bool:
    return path.is_dir() and os.access(path, os.W_OK | os.X_OK)


def resolve_runs_dir(env: Mapping[str, str], runs_dir: str | os.PathLike | None = None,
                     data_dir: Path = SPACE_DATA_DIR, home: Path | None = None) -> Path | None:
    """The runs folder the app uses.

    Args:
        env: the environment (``DISTILLAB_RUNS_DIR``, ``SYSTEM``, ``SPACE_ID``, ``HOME``).
        runs_dir: an explicit folder (``--runs-dir``); it wins.
        data_dir: a Space's persistent storage mount.
        home: the home folder (default ``$HOME``, else the user's home).
    Returns:
        The folder, or None for the engine's default (``./runs``) off a Space.
    """
    chosen = runs_dir or env.get("DISTILLAB_RUNS_DIR")
    if chosen:
        return Path(chosen).expanduser()
    if space_id(env) is None:
        return None
    if _writable_dir(data_dir):
        return data_dir / RUNS_FOLDER_NAME
    # Without persistent storage the Space's disk is wiped on restart; the home folder is
    # at least writable (the app folder may not be).
    return Path(home or env.get("HOME") or Path.home()) / RUNS_FOLDER_NAME


def parse_auth(text: str | None) -> tuple[str, str] | None:
    """``"user:password"`` as Gradio's ``auth`` pair; blank means no login.

    Raises:
        ValueError: no colon, or an empty user name or password.
    """
    if text is None or not text.strip():
        return None
    user, colon, password = text.strip().partition(":")
    if not colon or not user or not password:
        raise ValueError("auth: give user:password (e.g. --auth alice:s3cret or "
                         "DISTILLAB_AUTH=alice:s3cret)")
    return user, password


@dataclass(frozen=True)
class ServeSettings:
    """How ``python -m app`` serves: address, share link, login and runs folder."""

    host: str | None = None
    port: int | None = None
    share: bool = False
    auth: tuple[str, str] | None = None
    runs_dir: Path | None = None
    space_id: str | None = None
    zero_gpu: bool = False
    public: bool = False


def resolve_public(env: Mapping[str, str], public: bool | None, share: bool,
                   auth: tuple[str, str] | None, space: str | None) -> bool:
    """Whether strangers can reach the app, so public mode rules (docs/SECURITY.md).

    On by default on a Space and for a share link without a login; ``--public`` or
    ``DISTILLAB_PUBLIC=1`` turns it on anywhere. It can be turned off (``--no-public``,
    ``DISTILLAB_PUBLIC=0``) only together with ``--auth``, which makes every signed-in user
    the owner.

    Raises:
        ValueError: public mode turned off where strangers reach the app without a login.
    """
    if public is None and env.get("DISTILLAB_PUBLIC", "").strip():
        public = _flag(env.get("DISTILLAB_PUBLIC"))
    exposed = space is not None or share
    if public is None:
        return exposed and auth is None
    if not public and exposed and auth is None:
        where = "a Space" if space else "a share link"
        raise ValueError(f"public mode stays on for {where} without a login: add --auth "
                         "user:password (DISTILLAB_AUTH) to turn it off")
    return public


def resolve_settings(env: Mapping[str, str], *, host: str | None = None,
                     port: int | None = None, share: bool = False, auth: str | None = None,
                     runs_dir: str | os.PathLike | None = None, public: bool | None = None,
                     data_dir: Path = SPACE_DATA_DIR, home: Path | None = None
                     ) -> ServeSettings:
    """Command-line values merged with the environment (flags win).

    Args:
        env: the environment: ``GRADIO_SERVER_NAME``, ``GRADIO_SERVER_PORT``,
            ``DISTILLAB_SHARE``, ``DISTILLAB_AUTH``, ``DISTILLAB_RUNS_DIR`` and the Space's.
        host, port, share, auth, runs_dir, public: the flags (None/False: not given).
        data_dir, home: see :func:`resolve_runs_dir`.
    Returns:
        The settings; host and port None let Gradio choose (127.0.0.1, 7860 or the next free).
    Raises:
        ValueError: a malformed ``auth`` or port, or public mode off where it must stay on.
    """
    space = space_id(env)
    host = host or env.get("GRADIO_SERVER_NAME") or ("0.0.0.0" if space else None)
    raw_port = port or env.get("GRADIO_SERVER_PORT") or (SPACE_PORT if space else None)
    try:
        port = int(raw_port) if raw_port else None
    except ValueError:
        raise ValueError(f"port: give a number, got {raw_port!r}") from None
    share = share or _flag(env.get("DISTILLAB_SHARE"))
    login = parse_auth(auth if auth is not None else env.get("DISTILLAB_AUTH"))
    return ServeSettings(
        host=host, port=port, share=share, auth=login,
        runs_dir=resolve_runs_dir(env, runs_dir, data_dir, home), space_id=space,
        zero_gpu=on_zero_gpu(env), public=resolve_public(env, public, share, login, space))
