"""Who may do what: callers, run ownership, and the references a caller may use.

A :class:`Caller` is either the server's owner (the CLI, a local ``python -m app``, or a
login through ``--auth``) or an anonymous visitor of a public app (a Space or a share link),
identified by a secret only their browser or API client holds.

- **Ownership.** A run a visitor launches records its owner in ``owner.json``; runs without
  one belong to the server's owner. A visitor reads their own runs and the runs the owner
  marks as shared examples, and manages (cancel, resume, delete, export) only their own.
- **References in public mode.** Data and models come only from the bundled names, the
  visitor's own uploads (``upload:<owner>/<file>``), Hub ids, and ``run:<id>/<role>`` of runs
  the visitor may read. Anything else (a path, ``~``, ``..``, a folder) is refused before it is
  opened, with one message that does not say whether it exists.
- **Messages in public mode** carry no server paths (:func:`scrub_paths`).
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from core.runs import (
    RUN_ID_PATTERN,
    ModelRef,
    Run,
    RunError,
    atomic_write_json,
    list_run_objects,
    open_run,
    read_json,
    runs_root,
)
from core.specs import BUNDLED_DATASET, JobSpec
from core.uploads import UPLOAD_PREFIX, parse_upload_ref, uploads_dir

OWNER = "owner"  # the server's owner, and the owner of runs without an owner.json
OWNER_FILE = "owner.json"
# owner/name or name: letters, digits, '.', '_' and '-', as the Hub allows (no '..').
HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}(/[A-Za-z0-9][A-Za-z0-9_.-]{0,95})?$")
BUNDLED_DATASETS = (BUNDLED_DATASET, f"bundled:{BUNDLED_DATASET}")
BUNDLED_MODEL_NAMES = ("bundled:minilm", "bundled", "minilm")


class AccessError(RunError):
    """A request for something this caller may not use or see; says what is allowed."""


@dataclass(frozen=True)
class Caller:
    """Who is asking.

    Attributes:
        id: ``"owner"`` for the server's owner, else ``"v"`` + a hash of the visitor's secret.
        admin: sees and manages every run.
        public: public-mode rules apply to the references it gives and to Hub pushes.
    """

    id: str = OWNER
    admin: bool = True
    public: bool = False

    @classmethod
    def visitor(cls, secret: str, public: bool = True) -> Caller:
        """An anonymous visitor known by ``secret`` (a browser token or an API session)."""
        if not secret:
            raise AccessError("no visitor identity: reload the page")
        digest = hashlib.sha256(f"distillab-visitor:{secret}".encode()).hexdigest()[:20]
        return cls(id=f"v{digest}", admin=False, public=public)


# ownership -----------------------------------------------------------------------------
def run_owner(run: Run) -> str:
    return str(read_json(run.path / OWNER_FILE, {}).get("owner") or OWNER)


def is_shared(run: Run) -> bool:
    """Whether the owner shared this run as a read-only example for every visitor."""
    return bool(read_json(run.path / OWNER_FILE, {}).get("shared"))


def set_owner(run: Run, caller: Caller) -> None:
    if caller.id != OWNER:
        atomic_write_json(run.path / OWNER_FILE, {"owner": caller.id, "shared": False})


def set_shared(run: Run, shared: bool) -> None:
    """Mark (or unmark) a run as a shared example every visitor may read."""
    atomic_write_json(run.path / OWNER_FILE, {"owner": run_owner(run), "shared": shared})


def can_read(run: Run, caller: Caller) -> bool:
    return caller.admin or run_owner(run) == caller.id or is_shared(run)


def can_manage(run: Run, caller: Caller) -> bool:
    return caller.admin or run_owner(run) == caller.id


def visible_runs(runs_dir: str | os.PathLike | None, caller: Caller) -> list[Run]:
    """The runs this caller may read, oldest first."""
    return [run for run in list_run_objects(runs_dir) if can_read(run, caller)]


def owned_runs(runs_dir: str | os.PathLike | None, caller: Caller) -> list[Run]:
    """The runs this caller owns (every run for the owner), oldest first."""
    return [run for run in list_run_objects(runs_dir) if run_owner(run) == caller.id]


def open_run_for(run_id: str, caller: Caller, runs_dir: str | os.PathLike | None,
                 manage: bool = False) -> Run:
    """A run this caller may read (or, with ``manage``, act on).

    Raises:
        AccessError: a malformed id, or a run that does not exist or is not the caller's;
            the message is the same for both, so it tells nothing about others' runs.
    """
    if not isinstance(run_id, str):
        raise AccessError("a run id is a string, e.g. 20261204-101500-ab12")
    run_id = run_id.strip()
    missing = AccessError(f"no run {run_id!r} of yours (see the runs list)")
    try:
        run = open_run(run_id, runs_dir)
    except RunError as error:  # a malformed id says so; a missing run reads like others'
        raise (missing if RUN_ID_PATTERN.match(run_id) else AccessError(str(error))) from None
    if not can_read(run, caller):
        raise missing
    if manage and not can_manage(run, caller):
        raise AccessError(f"run {run_id} is a shared example: you can look at it, not change "
                          "it; launch your own job to train one")
    return run


# references ----------------------------------------------------------------------------
def _refused(what: str, ref: str, allowed: str) -> AccessError:
    return AccessError(f"{what}: {ref!r} is not allowed on this public server; use {allowed}")


def _is_hub_id(ref: str) -> bool:
    # A Hub-shaped name that is also a path relative to the server's folder would be read
    # from disk by the loaders, so it is refused as a path (docs/SECURITY.md).
    return bool(HUB_ID.match(ref)) and ".." not in ref and not Path(ref).exists()


def check_model_ref(ref: str, caller: Caller, runs_dir: str | os.PathLike | None,
                    what: str = "model") -> str:
    """A model reference this caller may load, stripped.

    Args:
        ref: ``bundled:minilm``, ``run:<id>/<role>``, a Hub id, or (not public) a folder.
        caller: who asks.
        runs_dir: the runs folder.
        what: the field, for the message.
    Raises:
        AccessError: a reference the caller may not use.
    """
    if not isinstance(ref, str):
        raise AccessError(f"{what}: a model reference is a string")
    ref = ref.strip()
    if ModelRef.is_run_ref(ref):
        try:
            model = ModelRef.parse(ref)
        except RunError as error:
            raise AccessError(f"{what}: {error}") from None
        open_run_for(model.run_id, caller, runs_dir)
        return ref
    if not caller.public or ref in BUNDLED_MODEL_NAMES or (
            ref.startswith("bundled:") and RUN_ID_PATTERN.match(ref[8:])):
        return ref
    if _is_hub_id(ref):
        return ref
    raise _refused(what, ref, "bundled:minilm, run:<id>/<role> of your runs, or a Hub id "
                              "(owner/name)")


def check_data_ref(name: str, caller: Caller, runs_dir: str | os.PathLike | None,
                   what: str = "dataset") -> str:
    """A dataset reference this caller may read, stripped (see :func:`check_model_ref`).

    Raises:
        AccessError: another visitor's upload, or (public) a server path.
    """
    if not isinstance(name, str):
        raise AccessError(f"{what}: a dataset reference is a string")
    name = name.strip()
    parsed = parse_upload_ref(name) if name.startswith(UPLOAD_PREFIX) else None
    if parsed is not None:
        owner, file_name = parsed
        if owner != caller.id and not caller.admin:
            raise AccessError(f"{what}: {name!r} is not one of your uploads: upload the file")
        if not (uploads_dir(runs_root(runs_dir)) / owner / file_name).is_file():
            raise AccessError(f"{what}: upload {file_name} is no longer stored: upload it again")
        return name
    if not caller.public or name.lower() in BUNDLED_DATASETS or _is_hub_id(name):
        return name
    raise _refused(what, name, "bbc_news, a file you upload, or a Hub dataset id")


def check_spec_refs(spec: JobSpec, caller: Caller, runs_dir: str | os.PathLike | None) -> None:
    """Check every reference of a job spec (teacher, student checkpoint, data files).

    Raises:
        AccessError: the first reference the caller may not use.
    """
    check_model_ref(spec.teacher, caller, runs_dir, "teacher")
    if spec.student.checkpoint:
        check_model_ref(spec.student.checkpoint, caller, runs_dir, "student.checkpoint")
    data = spec.dataset
    if data.augment_mlm:
        check_model_ref(data.augment_mlm, caller, runs_dir, "dataset.augment_mlm")
    check_data_ref(data.name, caller, runs_dir)
    hub_data = not data.name.startswith(UPLOAD_PREFIX) and data.name.lower() not in \
        BUNDLED_DATASETS
    for attr in ("validation", "transfer"):
        value = getattr(data, attr)
        if not value or (attr == "transfer" and value == "rest"):
            continue
        # For a Hub dataset the validation field is a split name, as Hub-shaped as an id.
        check_data_ref(value, caller, runs_dir, f"dataset.{attr}")
        if caller.public and attr == "transfer" and hub_data and not value.startswith(
                UPLOAD_PREFIX):
            raise _refused(f"dataset.{attr}", value, "a file you upload, or 'rest'")


def redacted_spec(spec: dict, caller: Caller) -> dict:
    """A run's spec as a caller may see it: public callers see no path-like values."""
    if not caller.public:
        return spec
    return {key: redacted_spec(value, caller) if isinstance(value, dict) else
            scrub_paths(value) if isinstance(value, str) else value
            for key, value in spec.items()}


# An absolute or home path starts a message or follows a space, a quote, a bracket or '='.
_ABSOLUTE_PATH = re.compile(r"(?:^|(?<=[\s'\"`(\[{=,]))(?:~|/)[^\s'\"`,;()\[\]{}<>]*")


def scrub_paths(message: str) -> str:
    """``message`` with every absolute or home path cut to its last part (``.../name``)."""
    def last_part(match: re.Match[str]) -> str:
        text = match.group(0)
        path = text.rstrip(".:")
        name = Path(path).name
        return (f".../{name}" if name else "...") + text[len(path):]
    return _ABSOLUTE_PATH.sub(last_part, message)
