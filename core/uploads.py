"""Uploaded data files: stored per visitor, named by content, referred to as ``upload:`` refs.

An upload is copied to ``<runs>/_uploads/<owner>/<sha12>-<name>`` and named in specs as
``upload:<owner>/<sha12>-<name>``, so queued and resumed jobs find it, a spec shows no server
path, and :mod:`core.access` can tell whose upload a reference is. The pipeline and the
scoring entry points turn refs back into paths with :func:`resolve_dataset`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import shutil
from pathlib import Path

from core.specs import DatasetSpec
from core.tables import TABLE_EXTENSIONS, DataError, max_upload_bytes

UPLOAD_PREFIX = "upload:"
UPLOAD_EXTENSIONS = (".csv", ".tsv", ".jsonl")
_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")
_STORED_NAME = re.compile(r"^[0-9a-f]{12}-(.+)$")  # <sha12>-<original name>


def uploads_dir(runs_dir: str | os.PathLike) -> Path:
    return Path(runs_dir) / "_uploads"


def store_upload(path: str | os.PathLike, runs_dir: str | os.PathLike, owner: str,
                 max_bytes: float | None = None) -> str:
    """Copy an uploaded data file into the owner's upload folder.

    Args:
        path: the uploaded file (Gradio's temporary copy).
        runs_dir: the runs folder.
        owner: the caller's id (:attr:`core.access.Caller.id`).
        max_bytes: the size limit (default ``DISTILLAB_MAX_UPLOAD_MB``, see core.tables).
    Returns:
        The ``upload:<owner>/<sha12>-<name>`` reference to put in a spec.
    Raises:
        DataError: a type other than CSV/TSV/JSONL, an empty file, or one over the limit.
    """
    source = Path(path)
    suffix = source.suffix.lower()
    if suffix not in UPLOAD_EXTENSIONS:
        raise DataError(f"{source.name}: upload a {', '.join(UPLOAD_EXTENSIONS)} file "
                        f"(Parquet works from a local path: {', '.join(TABLE_EXTENSIONS)})")
    size = source.stat().st_size
    limit = max_upload_bytes() if max_bytes is None else max_bytes
    if size == 0:
        raise DataError(f"{source.name}: the file is empty")
    if size > limit:
        raise DataError(f"{source.name}: {size / 2**20:,.1f} MB is over the upload limit of "
                        f"{limit / 2**20:,.0f} MB")
    digest = hashlib.sha256()
    with open(source, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    safe_name = re.sub(r"[^A-Za-z0-9._-]+", "_", source.name).lstrip("._-") or "data"
    file_name = f"{digest.hexdigest()[:12]}-{safe_name}"
    target = uploads_dir(runs_dir) / owner / file_name
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        tmp = target.with_name(f".{target.name}.tmp")
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)
    else:
        target.touch()  # recently used: cleanup keeps it
    return f"{UPLOAD_PREFIX}{owner}/{file_name}"


def display_name(path: Path) -> str:
    """A data file's name as its user knows it: a stored upload without its content hash."""
    match = _STORED_NAME.match(path.name)
    return match.group(1) if match and path.parent.parent.name == "_uploads" else path.name


def parse_upload_ref(ref: str) -> tuple[str, str] | None:
    """``(owner, file name)`` of an ``upload:`` reference, None for any other name.

    Raises:
        DataError: an ``upload:`` reference that is malformed (no owner, a path, ``..``).
    """
    if not ref.startswith(UPLOAD_PREFIX):
        return None
    owner, slash, name = ref[len(UPLOAD_PREFIX):].partition("/")
    if not slash or not _PART.match(owner) or not _PART.match(name) or ".." in name:
        raise DataError(f"{ref!r} is not an upload reference (upload:<owner>/<file>)")
    return owner, name


def resolve_upload(ref: str, runs_dir: str | os.PathLike) -> str:
    """The stored file of an ``upload:`` reference; any other name is returned unchanged.

    Raises:
        DataError: a malformed reference, or an upload that is no longer stored.
    """
    parsed = parse_upload_ref(ref)
    if parsed is None:
        return ref
    owner, name = parsed
    path = uploads_dir(runs_dir) / owner / name
    if not path.is_file():
        raise DataError(f"upload {name.partition('-')[2] or name} is no longer stored "
                        "(uploads are kept a day when no run needs them): upload it again")
    return str(path)


def resolve_dataset(spec: DatasetSpec, runs_dir: str | os.PathLike) -> DatasetSpec:
    """``spec`` with its ``upload:`` references (data, validation, transfer) made paths."""
    changes = {attr: resolve_upload(value, runs_dir) for attr in ("name", "validation",
                                                                  "transfer")
               if (value := getattr(spec, attr)) and value.startswith(UPLOAD_PREFIX)}
    return dataclasses.replace(spec, **changes) if changes else spec


def describe_dataset(dataset: DatasetSpec, runs_dir: str | os.PathLike) -> str:
    """One line on a job's data (rows, labels), read the way a job reads it; ``upload:``
    references resolve within ``runs_dir``.

    Raises:
        ValueError: data that cannot be read (the message says why).
    """
    from core.data import load_data

    return load_data(resolve_dataset(dataset, runs_dir)).description
