"""Checks a job spec before it is queued: what can fail in well under a second, fails now.

:func:`check_job` reads ``config.json`` files and the local data, never model weights: the
teacher (and a pretrained student) must resolve to a folder with a config, weights and a
tokenizer, or to a Hub id that can be fetched (not while offline, unless cached); the
student's layers must exist in the teacher; ``train.max_length`` must fit the position
embeddings; a local dataset must load (columns, labels, validation file).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core.data import DataError, bundled_bbc_news_dir, load_data
from core.models import (
    _TOKENIZER_FILES,
    _WEIGHT_SUFFIXES,
    ModelError,
    _is_offline,
    resolve_model_ref,
)
from core.specs import JobSpec, SpecError
from core.tables import TABLE_EXTENSIONS

_BUNDLED_DATASET_NAMES = ("bbc_news", "bundled:bbc_news")
# Weight files a Hub checkpoint may have in the local cache (sharded ones by their index).
_HUB_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                     "pytorch_model.bin.index.json")
# RoBERTa-style position ids start after the padding index, so pad_token_id + 1 of the
# max_position_embeddings rows are never reached by a token (514 rows: 512 tokens).
_OFFSET_POSITION_TYPES = ("roberta", "xlm-roberta", "xlm-roberta-xl", "camembert",
                          "roberta-prelayernorm", "data2vec-text", "xmod")


def check_job(spec: JobSpec, runs_dir: Path | str | None = None) -> None:
    """Fail fast, before queueing, on what a job would otherwise fail on in the worker.

    Args:
        spec: the job to check (already type-checked by its own validation).
        runs_dir: the run registry for ``run:<run_id>/<role>`` models (default
            ``$DISTILLAB_RUNS_DIR`` or ``runs``).
    Raises:
        ModelError: a teacher or pretrained student that is missing, not a model folder,
            has no weights or tokenizer, or is a Hub id that cannot be fetched offline.
        SpecError: student layers the teacher does not have, or a ``train.max_length``
            beyond a model's position embeddings.
        DataError: a local dataset, validation or transfer file that is missing or bad.
    """
    teacher_config = model_config(spec.teacher, runs_dir, "teacher")
    if teacher_config is not None:
        _check_layers(spec, teacher_config)
        _check_max_length(spec, teacher_config, "teacher")
    if spec.student.kind == "pretrained" and spec.student.checkpoint:
        student_config = model_config(spec.student.checkpoint, runs_dir, "student.checkpoint")
        if student_config is not None:
            _check_max_length(spec, student_config, "student.checkpoint")
    _check_data(spec)


def model_config(ref: str, runs_dir: Path | str | None, role: str = "model"
                 ) -> dict[str, Any] | None:
    """The ``config.json`` of a model reference, checked as loading would check it.

    Args:
        ref: ``bundled:minilm``, ``run:<run_id>/<role>``, a local folder or a Hub id.
        runs_dir: the run registry for ``run:`` refs.
        role: how the message names the model (``teacher``, ``student.checkpoint``).
    Returns:
        The config as a dict, or None for a Hub id that is not in the local cache (and the
        Hub may be reached: the worker downloads it).
    Raises:
        ModelError: see :func:`check_job`.
    """
    try:
        folder = Path(resolve_model_ref(ref, runs_dir))
    except ModelError as err:
        raise ModelError(f"{role}: {err}") from None
    if folder.is_dir():
        _check_model_folder(folder, f"{role} {ref}")
        return _read_config(folder / "config.json", f"{role} {ref}")
    return _hub_config(ref, role)


def _check_model_folder(folder: Path, name: str) -> None:
    """A folder that :func:`core.models.load_classifier` can load: config, weights, tokenizer."""
    if not (folder / "config.json").is_file():
        raise ModelError(f"{name}: folder {folder} has no config.json, so it is not a model")
    files = {p.name for p in folder.iterdir() if p.is_file()}
    if not any(f.endswith(_WEIGHT_SUFFIXES) for f in files):
        raise ModelError(f"{name}: folder {folder} has no weights file "
                         f"(model.safetensors or pytorch_model.bin)")
    for index in sorted(f for f in files if f.endswith(".index.json")):
        try:
            shards = set(json.loads((folder / index).read_text())["weight_map"].values())
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            raise ModelError(f"{name}: cannot read the shard index {index}: {err}") from err
        missing = sorted(shards - files)
        if missing:
            raise ModelError(f"{name}: folder {folder} lacks weight shards named in {index}: "
                             f"{', '.join(missing)}")
    if not files & set(_TOKENIZER_FILES):
        raise ModelError(f"{name}: folder {folder} has no tokenizer files "
                         f"(expected one of {', '.join(_TOKENIZER_FILES)})")


def _read_config(path: Path, name: str) -> dict[str, Any]:
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ModelError(f"{name}: cannot read {path}: {err}") from err
    if not isinstance(config, dict):
        raise ModelError(f"{name}: {path} is not a JSON object")
    return config


def _hub_config(ref: str, role: str) -> dict[str, Any] | None:
    """A Hub id's cached config; offline, a Hub id not fully cached fails here."""
    from huggingface_hub import try_to_load_from_cache
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(ref)
    except HFValidationError as err:
        raise ModelError(f"{role} {ref!r} is not a local folder, a run model "
                         f"('run:<run_id>/<role>') or a valid Hub id: {err}") from None
    cached = try_to_load_from_cache(ref, "config.json")
    config_path = Path(cached) if isinstance(cached, str) else None
    weights_cached = config_path is not None and any(
        isinstance(try_to_load_from_cache(ref, f), str) for f in _HUB_WEIGHT_FILES)
    if _is_offline() and not weights_cached:
        raise ModelError(f"{role} {ref} is not a local folder and the Hugging Face Hub cannot "
                         "be reached (offline: HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE is set), "
                         "nor is it in the local Hub cache. Use a local folder, "
                         "'bundled:minilm' or a run's model")
    return _read_config(config_path, f"{role} {ref}") if config_path is not None else None


def teacher_depth(teacher: str, runs_dir: Path | str | None) -> int:
    """The teacher's layer count, from its ``config.json`` (no weights loaded).

    Raises:
        ModelError / SpecError: a teacher that cannot be found, or whose config (a Hub id not
            cached here) or layer count cannot be read.
    """
    config = model_config(teacher, runs_dir, "teacher")
    depth = _depth(config) if config is not None else None
    if depth is None:
        raise SpecError(f"cannot read the layer count of {teacher} here: give the student's "
                        "layers explicitly (--student-layers, or custom layers)")
    return depth


def _depth(config: dict[str, Any]) -> int | None:
    depth = config.get("num_hidden_layers", config.get("n_layers"))
    return depth if isinstance(depth, int) and not isinstance(depth, bool) else None


def _check_layers(spec: JobSpec, teacher_config: dict[str, Any]) -> None:
    layers = spec.student.layers
    depth = _depth(teacher_config)
    if spec.student.kind != "extract" or layers is None or depth is None:
        return
    beyond = [i for i in layers if i >= depth]
    if beyond:
        missing = ", ".join(str(i) for i in beyond)
        raise SpecError(f"student.layers {list(layers)}: the teacher {spec.teacher} has "
                        f"{depth} layers (0..{depth - 1}); there is no layer {missing}")


def _check_max_length(spec: JobSpec, config: dict[str, Any], role: str) -> None:
    positions = config.get("max_position_embeddings")
    # DeBERTa without absolute positions takes longer inputs than this table.
    if not isinstance(positions, int) or config.get("position_biased_input") is False:
        return
    if config.get("model_type") in _OFFSET_POSITION_TYPES:
        pad = config.get("pad_token_id")
        positions -= (pad if isinstance(pad, int) else 1) + 1
    if spec.train.max_length > positions:
        ref = spec.teacher if role == "teacher" else spec.student.checkpoint
        raise SpecError(f"train.max_length {spec.train.max_length} is more than the {role} "
                        f"{ref} takes: at most {positions} tokens (max_position_embeddings in "
                        f"its config.json); lower train.max_length")


def _looks_like_file(name: str) -> bool:
    return (name.startswith((".", "/", "~"))
            or Path(name).suffix.lower() in (*TABLE_EXTENSIONS, ".txt", ".json"))


def _check_data(spec: JobSpec) -> None:
    """Load a local dataset as the worker will; check the files a Hub dataset names."""
    dataset = spec.dataset
    name = dataset.name.strip()
    if spec.kind == "general":  # unlabelled texts: read them as the general job will
        from core.general import load_general_texts

        load_general_texts(name, text_column=dataset.text_column)
        return
    if name.lower() in _BUNDLED_DATASET_NAMES:
        bundled_bbc_news_dir()
        return
    if Path(name).expanduser().exists():
        load_data(dataset, seed=spec.seed)  # also reads the validation and transfer files
        return
    if _looks_like_file(name):
        raise DataError(f"dataset file not found: {name}")
    validation = (dataset.validation or "").strip()
    if validation and _looks_like_file(validation):
        if not Path(validation).expanduser().exists():
            raise DataError(f"validation file not found: {validation}")
        raise DataError(f"dataset.validation {validation!r} is a file, but dataset {name!r} "
                        f"is a Hub id, whose validation names a split; give the training "
                        f"data as a local file too")
    transfer = (dataset.transfer or "").strip()
    if transfer and transfer != "rest" and not Path(transfer).expanduser().exists():
        raise DataError(f"transfer file not found: {transfer}")
