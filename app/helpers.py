"""Small helpers shared by the tabs and the API: error messages, choices, table formatting."""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable
from typing import Any, TypeVar

import gradio as gr
import pandas as pd

from core.access import scrub_paths
from core.runs import ACTIVE_STATES, FINISHED_STATES, ModelRef, Run, RunState

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])
TERMINAL_STATES = FINISHED_STATES


def user_errors(fn: F | None = None, *, public: bool = False) -> Any:
    """Turn exceptions into ``gr.Error`` toasts with a readable message, never a traceback.

    Spec, data, model and run errors from ``core`` are ``ValueError``s whose message says
    what to fix; anything else is logged with its traceback and shown by type and message.
    Use as ``@user_errors`` or, in public mode, ``@user_errors(public=True)``: messages then
    carry no server paths and unexpected errors show no details.
    """
    if fn is None:
        return functools.partial(user_errors, public=public)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except (ValueError, FileNotFoundError, KeyError) as error:
            message = str(error.args[0] if isinstance(error, KeyError) and error.args
                          else error)
            if public:
                message = scrub_paths(message)
            raise gr.Error(message, print_exception=False) from error
        except Exception as error:
            logger.exception("%s failed", fn.__name__)
            message = (f"{type(error).__name__}: {error}" if not public else
                       f"{fn.__name__} failed on the server ({type(error).__name__}); "
                       "it is logged for the server's owner")
            raise gr.Error(message, print_exception=False) from error

    return wrapper


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


def run_choices(runs: list[Run]) -> list[tuple[str, str]]:
    """(label, run id) for each of ``runs`` (oldest first), newest first; the label adds
    the run's name."""
    choices = []
    for run in reversed(runs):
        name = run.spec.get("name") or ""
        label = f"{run.id} · {name}" if name and name.lower() not in run.id else run.id
        choices.append((label, run.id))
    return choices


def latest_run_id(runs: list[Run]) -> str | None:
    """The run to watch by default: the newest running or queued one, else the newest."""
    newest_first = list(reversed(runs))
    for run in newest_first:
        if run.status().get("state") in ACTIVE_STATES:
            return run.id
    return newest_first[0].id if newest_first else None


def model_choices(runs: list[Run], done_only: bool = True) -> list[str]:
    """``run:<id>/<role>`` of every saved model of ``runs``, newest run first."""
    refs = []
    for run in reversed(runs):
        if done_only and run.status().get("state") != RunState.DONE:
            continue
        refs.extend(str(ModelRef(run.id, role)) for role in run.models())
    return refs


def default_pair(runs: list[Run]) -> list[str]:
    """The newest done run's teacher and student (what a first comparison looks at)."""
    for run in reversed(runs):
        if run.status().get("state") == RunState.DONE:
            roles = [r for r in ("teacher", "student") if r in run.models()] or run.models()
            return [str(ModelRef(run.id, role)) for role in roles[:2]]
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
