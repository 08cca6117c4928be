"""DistilLab's Gradio app: launch distillation jobs, watch them, compare models, plot trade-offs.

``python -m app`` serves it; :func:`app.main.build_app` builds the ``gr.Blocks``. The run
folder is the contract: every callback reads or writes ``runs/<id>/`` through ``core``.
"""
