"""Export a run's model: a folder with a generated model card, a zip, or a Hub repository.

The model card (``README.md``) is written by ``core.model_card``.

Pushing needs a token (the argument, ``$HF_TOKEN`` or a saved ``hf auth login``) and the
network; without either it fails at once with an :class:`ExportError` that says which.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path

from core.model_card import write_model_card
from core.runs import Run, RunError, open_run

__all__ = ["ExportError", "export_model", "push_allowed", "push_to_hub", "write_model_card",
           "zip_model"]

log = logging.getLogger(__name__)


def push_allowed(env: Mapping[str, str] | None = None) -> bool:
    """Whether this server pushes to the Hub at all (``DISTILLAB_ALLOW_PUSH=0`` turns it off)."""
    env = os.environ if env is None else env
    return env.get("DISTILLAB_ALLOW_PUSH", "1").strip().lower() not in ("0", "false", "no")


class ExportError(ValueError):
    """An export or push that cannot go ahead, with a message saying why and what to do."""


def _open_model(run_id: str, role: str, runs_dir: str | os.PathLike | None) -> Run:
    try:
        run = open_run(run_id, runs_dir)
    except RunError as error:
        raise ExportError(str(error)) from None
    if role not in run.models():
        raise ExportError(f"run {run_id} has no saved {role!r} model; saved: "
                          f"{', '.join(run.models()) or 'none yet'}")
    return run


def export_model(run_id: str, role: str, out_dir: str | os.PathLike,
                 runs_dir: str | os.PathLike | None = None, repo_id: str | None = None) -> Path:
    """Copy a run's model into ``out_dir`` with its model card as ``README.md``.

    Args:
        run_id: the run; role: the model (``student``, ``teacher``, ``baseline``).
        out_dir: the folder to write (created; files of the same names are replaced).
        runs_dir: the runs folder (default ``$DISTILLAB_RUNS_DIR`` or ``runs``).
        repo_id: the Hub repository named in the card's loading snippet, if any.
    Returns:
        ``out_dir``, loadable by ``AutoModelForSequenceClassification.from_pretrained``.
    Raises:
        ExportError: no such run or model, or ``out_dir`` is the run's own model folder.
    """
    run = _open_model(run_id, role, runs_dir)
    source, target = run.model_dir(role), Path(out_dir)
    if target.resolve() == source.resolve():
        raise ExportError(f"{target} is the run's own model folder: export somewhere else")
    target.mkdir(parents=True, exist_ok=True)
    for path in source.iterdir():
        if path.is_file():
            shutil.copy2(path, target / path.name)
    (target / "README.md").write_text(write_model_card(run, role, repo_id=repo_id))
    log.info("exported %s/%s to %s", run_id, role, target)
    return target


def zip_model(run_id: str, role: str, runs_dir: str | os.PathLike | None = None,
              out_path: str | os.PathLike | None = None) -> Path:
    """A zip of the exported model folder (files under ``<run_id>-<role>/``).

    Args:
        run_id, role, runs_dir: as for :func:`export_model`.
        out_path: the zip file to write; default ``<run_id>-<role>.zip`` in a new
            temporary folder (where a web app may serve it from).
    Returns:
        The zip file's path.
    """
    name = f"{run_id}-{role}"
    zip_path = Path(out_path) if out_path else Path(tempfile.mkdtemp(prefix="distillab-")) / (
        f"{name}.zip")
    with tempfile.TemporaryDirectory(prefix="distillab-export-") as tmp:
        folder = export_model(run_id, role, Path(tmp) / name, runs_dir)
        zip_path.parent.mkdir(parents=True, exist_ok=True)
        partial = zip_path.with_name(f".{zip_path.name}.tmp")
        # Weights barely compress; deflate only helps the tokenizer and card.
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(folder.iterdir()):
                archive.write(path, f"{name}/{path.name}")
        os.replace(partial, zip_path)
    return zip_path


def _hub_offline() -> bool:
    import huggingface_hub.constants as hub_constants

    flag = os.environ.get("HF_HUB_OFFLINE", "").strip().upper()
    return bool(hub_constants.HF_HUB_OFFLINE) or flag in ("1", "ON", "YES", "TRUE")


def push_to_hub(run_id: str, role: str, repo_id: str, token: str | None = None,
                private: bool = True, runs_dir: str | os.PathLike | None = None,
                commit_message: str | None = None, use_saved_token: bool = True) -> str:
    """Push a run's model with its model card to a Hub model repository.

    Args:
        run_id, role, runs_dir: as for :func:`export_model`.
        repo_id: ``user/name`` or ``org/name`` (created if missing).
        token: a write token; default ``$HF_TOKEN`` or the token of ``hf auth login``.
        private: create the repository private (an existing one keeps its visibility).
        commit_message: default "Upload <role> from DistilLab run <run_id>".
        use_saved_token: without ``token``, use ``$HF_TOKEN`` or the saved login; False (a
            public server's visitors) pushes with the given token only.
    Returns:
        The repository's URL.
    Raises:
        ExportError: bad repo id, no model, no token, offline (``HF_HUB_OFFLINE``), Hub
            unreachable, token refused, or the upload failed; each says what to do.
    """
    from huggingface_hub import HfApi, get_token
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError
    from huggingface_hub.utils import validate_repo_id

    from core.models import _hub_reachable

    try:
        validate_repo_id(repo_id)
    except HFValidationError as error:
        raise ExportError(f"{repo_id!r} is not a Hub repository id (e.g. 'your-name/"
                          f"distilled-sst2'): {error}") from None
    _open_model(run_id, role, runs_dir)
    if not token and not use_saved_token:
        raise ExportError("no Hugging Face token: paste a write token for this push "
                          "(https://huggingface.co/settings/tokens)")
    token = token or get_token()
    if not token:
        raise ExportError("no Hugging Face token: set HF_TOKEN to a write token "
                          "(https://huggingface.co/settings/tokens), paste one in the app, or "
                          "run `hf auth login`; or download the model as a zip instead")
    if _hub_offline():
        raise ExportError("offline mode is on (HF_HUB_OFFLINE=1): unset HF_HUB_OFFLINE on a "
                          "machine with internet to push, or download the model as a zip")
    import huggingface_hub.constants as hub_constants

    # Without this probe an unreachable Hub costs ~20 s of client retries before failing.
    if not _hub_reachable():
        raise ExportError(f"cannot reach the Hugging Face Hub at {hub_constants.ENDPOINT} "
                          "(no network, or blocked): connect and retry, or download the "
                          "model as a zip")
    api = HfApi(token=token)
    with tempfile.TemporaryDirectory(prefix="distillab-push-") as tmp:
        folder = export_model(run_id, role, Path(tmp) / "model", runs_dir, repo_id=repo_id)
        try:
            url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
            api.upload_folder(repo_id=url.repo_id, folder_path=folder, repo_type="model",
                              commit_message=commit_message
                              or f"Upload {role} from DistilLab run {run_id}")
        except HfHubHTTPError as error:
            status = getattr(error.response, "status_code", None)
            if status in (401, 403):
                raise ExportError(f"the Hub refused the token for {repo_id} (HTTP {status}): "
                                  "use a token with write access to that namespace") from None
            raise ExportError(f"push to {repo_id} failed: {error}") from None
        except OSError as error:  # connection reset, DNS failure, timeouts
            raise ExportError(f"push to {repo_id} failed, the Hub could not be reached: "
                              f"{error}") from None
    log.info("pushed %s/%s to %s", run_id, role, url)
    return str(url)
