"""One ``build_<tab>_tab(runs_dir)`` per module: layout and wiring only."""
