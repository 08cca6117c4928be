"""Small helpers shared by the tabs and the API: error messages, choices, table formatting."""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import gradio as gr
import pandas as pd

from core.runs import list_run_objects

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])
TERMINAL_STATES = ("done", "failed", "cancelled", "interrupted")


def user_errors(fn: F) -> F:
    """Turn exceptions into ``gr.Error`` toasts with a readable message, never a traceback.

    Spec, data, model and run errors from ``core`` are ``ValueError``s whose message says
    what to fix; anything else is logged with its traceback and shown by type and message.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except (ValueError, FileNotFoundError, KeyError) as error:
            message = error.args[0] if isinstance(error, KeyError) and error.args else error
            raise gr.Error(str(message), print_exception=False) from error
        except Exception as error:
            logger.exception("%s failed", fn.__name__)
            raise gr.Error(f"{type(error).__name__}: {error}", print_exception=False) from error

    return wrapper  # type: ignore[return-value]


def to_records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """A DataFrame as JSON-safe records (NaN -> None, numpy scalars -> Python)."""
    records = []
    for row in table.to_dict(orient="records"):
        records.append({str(k): json_safe(v) for k, v in row.items()})
    return records


def json_safe(value: Any) -> Any:
    """A value made JSON-safe: numpy scalars to Python, NaN to None, recursively."""
    if hasattr(value, "item") and not isinstance(value, (list, dict, str)):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def run_choices(runs_dir: Path) -> list[tuple[str, str]]:
    """(label, run id) for every run, newest first; the label adds the run's name."""
    choices = []
    for run in reversed(list_run_objects(runs_dir)):
        name = run.spec.get("name") or ""
        label = f"{run.id} · {name}" if name and name.lower() not in run.id else run.id
        choices.append((label, run.id))
    return choices


def latest_run_id(runs_dir: Path) -> str | None:
    """The run to watch by default: the newest running or queued one, else the newest."""
    runs = list(reversed(list_run_objects(runs_dir)))
    for run in runs:
        if run.status().get("state") in ("running", "queued"):
            return run.id
    return runs[0].id if runs else None


def model_choices(runs_dir: Path, done_only: bool = True) -> list[str]:
    """``run:<id>/<role>`` of every saved model, newest run first."""
    refs = []
    for run in reversed(list_run_objects(runs_dir)):
        if done_only and run.status().get("state") != "done":
            continue
        refs.extend(f"run:{run.id}/{role}" for role in run.models())
    return refs


def default_pair(runs_dir: Path) -> list[str]:
    """The newest done run's teacher and student (what a first comparison looks at)."""
    for run in reversed(list_run_objects(runs_dir)):
        if run.status().get("state") == "done":
            roles = [r for r in ("teacher", "student") if r in run.models()] or run.models()
            return [f"run:{run.id}/{role}" for role in roles[:2]]
    return []


def round_table(table: pd.DataFrame, digits: dict[str, int]) -> pd.DataFrame:
    """Round the named numeric columns (others untouched); numbers stay sortable."""
    table = table.copy()
    for column, places in digits.items():
        if column in table.columns:
            table[column] = pd.to_numeric(table[column], errors="coerce").round(places)
    return table


def parse_int_list(text: str | None, what: str) -> list[int] | None:
    """``"0, 2,4"`` -> ``[0, 2, 4]``; blank -> None."""
    if text is None or not str(text).strip():
        return None
    try:
        return [int(v) for v in str(text).replace(" ", "").split(",") if v]
    except ValueError as error:
        raise ValueError(f"{what}: give comma-separated integers like 0,2,4; got {text!r}"
                         ) from error


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = int(round(seconds))
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {secs:02d}s"
