"""A training stage's resumable state: :class:`TrainState` and the checkpoint file around it.

``state.pt`` holds the model, optimizer and scheduler state dicts, the RNG states and the
loop's own :class:`TrainState` (where it is, its history, its best epoch, the running loss),
written atomically; ``best.pt`` holds the best epoch's weights. Resuming restores all of it,
so a stopped stage ends as an uninterrupted one would.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch


@dataclass
class TrainState:
    """Where a training stage is and what it has found so far.

    Attributes:
        epoch: the epoch being run (0-based); after the last one, the number of epochs.
        batch: the next batch of that epoch.
        history: one row per finished epoch (train loss, validation scores).
        best_score: the best epoch's main validation score (accuracy, Spearman, or minus
            general distillation's held-out loss); -1 before any epoch.
        best_epoch: that epoch, 1-based; -1 before any epoch.
        epoch_loss_sum, epoch_rows: the running training loss of the epoch in progress.
    """

    epoch: int = 0
    batch: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    best_score: float = -1.0
    best_epoch: int = -1
    epoch_loss_sum: float = 0.0
    epoch_rows: int = 0

    def to_dict(self) -> dict[str, Any]:
        # best_accuracy: the key checkpoints have always used for the best score.
        return {"epoch": self.epoch, "batch": self.batch, "history": self.history,
                "best_accuracy": self.best_score, "best_epoch": self.best_epoch,
                "epoch_loss_sum": self.epoch_loss_sum, "epoch_rows": self.epoch_rows}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainState:
        return cls(epoch=data["epoch"], batch=data["batch"], history=list(data["history"]),
                   best_score=data["best_accuracy"], best_epoch=data["best_epoch"],
                   epoch_loss_sum=float(data.get("epoch_loss_sum", 0.0)),
                   epoch_rows=int(data.get("epoch_rows", 0)))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(),
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def atomic_torch_save(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file, then renamed: a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def save_checkpoint(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    scheduler: Any, state: TrainState) -> None:
    """Everything a stage needs to resume, with the RNG states, atomically."""
    atomic_torch_save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                       "scheduler": scheduler.state_dict(), **state.to_dict(),
                       "rng": rng_state()}, path)


def load_checkpoint(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    scheduler: Any) -> TrainState:
    """Load a checkpoint into the model, optimizer, scheduler and the RNGs; its state."""
    saved = torch.load(path, map_location="cpu", weights_only=False)
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    set_rng_state(saved["rng"])
    return TrainState.from_dict(saved)
