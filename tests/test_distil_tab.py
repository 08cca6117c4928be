"""The Distil tab's components by name: the form's fields are the names the spec is built
from and relaunched into, and the progress panel shows exactly what ``watch`` fills."""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import pytest

from app import forms
from app.components import Components
from app.context import AppContext
from app.progress import form_values
from core.actions import Actions
from core.specs import JobSpec


@pytest.fixture()
def ctx(tmp_path: Path) -> AppContext:
    return AppContext(Actions(tmp_path / "runs"))


def test_registry_reads_and_writes_by_name_and_refuses_a_name_twice() -> None:
    with gr.Blocks():
        registry = Components()
        registry["a"] = gr.Textbox()
        registry["b"] = gr.Number()
        with pytest.raises(KeyError, match="'a' is registered twice"):
            registry["a"] = gr.Textbox()
    a, b = registry.pick("a", "b")
    assert registry.pick() == [a, b] and registry.inputs() == {a, b}
    # Gradio hands a set-input callback one dict keyed by component, in no set order.
    assert registry.read({b: 2, a: "x"}) == {"a": "x", "b": 2}
    assert registry.write({"b": 3}) == {b: 3}
    with pytest.raises(KeyError):
        registry.write({"c": 1})
    with pytest.raises(KeyError):
        registry.merged(Components(b=b))


def test_form_fields_are_the_names_a_spec_is_built_from_and_relaunched_into(
        ctx: AppContext) -> None:
    from app.tabs.distil_form import build_form

    with gr.Blocks():
        fields, parts = build_form(ctx)
    # Edit and relaunch fills every field; Launch reads every field into build_spec.
    assert set(fields) == set(form_values(JobSpec().to_dict()))
    assert not set(fields) & set(parts)
    assert set(forms.recipe_values("distilbert")) <= set(fields)
    assert set(forms.preset_values("quick")) <= set(fields)
    # The widgets' initial values make the default job's training settings.
    assert {name: fields[name].value for name in forms.preset_values("quick")} == \
        forms.preset_values("quick")


def test_progress_panel_shows_what_watch_fills(ctx: AppContext) -> None:
    from app.tabs.distil_watch import build_progress_panel, watch

    with gr.Blocks():
        controls, shown = build_progress_panel()
    assert set(watch(None, ctx, None)) == set(shown)
    assert not set(controls) & set(shown)


def test_the_whole_app_builds_with_the_tab_wired_by_name(tmp_path: Path) -> None:
    from app.main import build_app

    demo = build_app(tmp_path / "runs")
    ids = {block.elem_id for block in demo.blocks.values()}
    assert {"launch", "launch-default", "setup", "watch-run", "run-status", "edit-relaunch",
            "action-error", "upload-train", "recipe", "preset"} <= ids


def test_picking_a_recipe_or_a_size_preset_fills_its_own_fields(tmp_path: Path) -> None:
    from app.main import build_app

    demo = build_app(tmp_path / "runs")
    handlers = {fn.name: fn for fn in demo.fns.values()}
    recipe = handlers["set_recipe"]
    filled = recipe.fn("logits")
    assert set(filled) == set(recipe.outputs)  # every output, each by its component
    assert {c.label: v for c, v in filled.items() if c.label} == {
        "Temperature T": 2.0, "α soft targets": 0.5, "α hard labels": 0.5,
        "α hidden cosine": 0.0}
    preset = handlers["set_preset"]
    filled = preset.fn("full")
    assert set(filled) == set(preset.outputs)
    assert {c.label: v for c, v in filled.items() if c.label} == {
        "Epochs": 4, "Teacher epochs": 3, "Learning rate": 5e-5, "Teacher learning rate": 5e-5,
        "Batch size": 32, "Max length": 256}
