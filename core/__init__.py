"""DistilLab engine: data, models, the training loop, evaluation, speed and the run registry.

Nothing here imports gradio; heavy imports (torch, transformers) stay inside the modules
that need them so ``python -m core --help`` is quick.
"""

__version__ = "0.1.0"
