"""Gradio components by name, so callbacks read and write them by name, never by position.

A callback whose inputs are :meth:`Components.inputs` (a set) gets one dict of values keyed
by component; :meth:`Components.read` turns it into values by name. A callback returns
:meth:`Components.write` (updates keyed by component), which Gradio matches to its outputs
whatever their order; an output left out keeps its value. Adding a field therefore cannot
shift what another field receives.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class Components(dict[str, Any]):
    """A registry of components by name (``registry["teacher"] = gr.Dropdown(...)``)."""

    def __setitem__(self, name: str, component: Any) -> None:
        if name in self:  # two components under one name: the first would go unread
            raise KeyError(f"component {name!r} is registered twice")
        super().__setitem__(name, component)

    def pick(self, *names: str) -> list[Any]:
        """The components ``names`` in that order, or all of them when none is named."""
        return [self[name] for name in names] if names else list(self.values())

    def inputs(self, *names: str) -> set[Any]:
        """The components ``names`` (all when none is named) as a set: Gradio then passes the
        callback one dict of values keyed by component (read it with :meth:`read`)."""
        return set(self.pick(*names))

    def read(self, values: Mapping[Any, Any]) -> dict[str, Any]:
        """Values by name from a set-input callback's dict (the components found in it)."""
        return {name: values[component] for name, component in self.items()
                if component in values}

    def write(self, values: Mapping[str, Any]) -> dict[Any, Any]:
        """Updates keyed by component from values by name (an unknown name raises KeyError)."""
        return {self[name]: value for name, value in values.items()}

    def merged(self, *others: Components) -> Components:
        """One registry of these and ``others``' components (a name in two raises KeyError)."""
        merged = Components(self)
        for other in others:
            for name, component in other.items():
                merged[name] = component
        return merged
